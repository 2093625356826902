"""``webhooks catalogue``: what a subscription can listen to, as the service knows it
(entities, their triggers and components; with --values, the enumerations)."""

from __future__ import annotations

import argparse

from webhooks.v1.common_pb2 import CatalogueValue
from webhooks.v1.subscriptions_pb2 import GetCatalogueRequest
from webhooks_cli.client import Client
from webhooks_cli.output import print_json, print_table


def _values(title: str, values: list[CatalogueValue]) -> None:
    print(f"\n{title}")
    print_table(("ID", "NAME"), [(str(v.id), v.name) for v in values])


def show(args: argparse.Namespace, client: Client) -> int:
    catalogue = client.call("GetCatalogue", GetCatalogueRequest())
    if args.json:
        print_json(catalogue)
        return 0
    rows = [
        (entity.name, trigger.name, trigger.fires_when, ", ".join(trigger.components) or "-")
        for entity in catalogue.entities
        for trigger in entity.triggers
    ]
    print_table(("ENTITY", "TRIGGER", "FIRES WHEN", "COMPONENTS"), rows)
    if args.values:
        _values("Channels", list(catalogue.channels))
        _values("Activity types", list(catalogue.activity_types))
        _values("Object statuses", list(catalogue.object_statuses))
        _values("Tag types", list(catalogue.tag_types))
        print("\nWhatsApp statuses")
        print(", ".join(catalogue.whatsapp_statuses))
    return 0
