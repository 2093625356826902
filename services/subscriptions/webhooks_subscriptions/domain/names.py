"""Subscription names, reserved for ever within an organisation.

The user guide asks for "a unique identifier name not previously used". A reservation is
an aggregate whose id is derived from (tenant, normalised name): saving it together with
the subscription makes two creates with one name conflict in the event store itself, so
exactly one wins however many run at once. Reservations are never released.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


class SubscriptionName(Aggregate):
    @staticmethod
    def create_id(tenant: str, normalised_name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/webhooks/subscription-names/{tenant}/{normalised_name}")

    @event("Reserved")
    def __init__(self, tenant: str, normalised_name: str, subscription_id: UUID) -> None:
        self.tenant = tenant
        self.normalised_name = normalised_name
        self.subscription_id = subscription_id
