"""The catalogue as the ``webhooks.v1.Catalogue`` message GetCatalogue returns.

Kept apart from the package root so that reading the catalogue needs no protobuf.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhooks.v1 import common_pb2
from webhooks_catalogue.data import (
    ACTIVITY_TYPES,
    CHANNELS,
    ENTITIES,
    OBJECT_STATUSES,
    TAG_TYPES,
    WHATSAPP_STATUSES,
)


def catalogue_message() -> common_pb2.Catalogue:
    return common_pb2.Catalogue(
        entities=[
            common_pb2.CatalogueEntity(
                name=entity.name,
                description=entity.description,
                triggers=[
                    common_pb2.CatalogueTrigger(
                        name=trigger.name,
                        fires_when=trigger.fires_when,
                        components=[str(c) for c in trigger.components],
                    )
                    for trigger in entity.triggers
                ],
            )
            for entity in ENTITIES
        ],
        channels=_values(CHANNELS),
        activity_types=_values(ACTIVITY_TYPES),
        object_statuses=_values(OBJECT_STATUSES),
        tag_types=_values(TAG_TYPES),
        whatsapp_statuses=WHATSAPP_STATUSES,
    )


def _values(values: Mapping[int, str]) -> list[common_pb2.CatalogueValue]:
    return [common_pb2.CatalogueValue(id=i, name=name) for i, name in values.items()]
