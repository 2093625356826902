"""Which fields an update may change, and the rule its update mask obeys.

Pure: the mask a caller sent becomes the fields to apply, each once and in the order given,
or InvalidField on ``update_mask``.
"""

from __future__ import annotations

from collections.abc import Iterable

from webhooks_catalogue import limits
from webhooks_subscriptions.domain.errors import InvalidField

UPDATABLE_FIELDS = (
    "name",
    "entity",
    "triggers",
    "include_complete_data",
    "webhook",
    "authentication",
    "retry_policy",
)


def validate_update_mask(mask: Iterable[str]) -> list[str]:
    paths = list(mask)
    if len(paths) > len(UPDATABLE_FIELDS):
        # Each updatable field once: a longer mask can only repeat or invent fields.
        limit = len(UPDATABLE_FIELDS)
        raise InvalidField("update_mask", f"at most {limit} paths, got {len(paths)}")
    fields = list(dict.fromkeys(paths))
    if not fields:
        raise InvalidField("update_mask", "name at least one field to update")
    for field in fields:
        if field not in UPDATABLE_FIELDS:
            if len(field) > limits.CATALOGUE_NAME_LENGTH:
                raise InvalidField("update_mask", "unknown field (longer than any field)")
            raise InvalidField("update_mask", f"unknown field {field!r}")
    return fields
