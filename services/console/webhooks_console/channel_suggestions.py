"""What the form suggests for a trigger's WhatsApp channel ids: the ids the organisation's
other subscriptions already use, from ListSubscriptions of the entities whose triggers take
WhatsApp channels. Bounded for a large organisation: at most SUGGESTIONS ids, read from at
most SCANNED subscriptions (the most recently changed first)."""

from __future__ import annotations

from webhooks.v1.common_pb2 import Catalogue
from webhooks.v1.subscriptions_pb2 import ListSubscriptionsRequest, SubscriptionOrder
from webhooks_console.pages import call

COMPONENT = "whatsapp_channels"
SUGGESTIONS = 200
SCANNED = 1000
PAGE_SIZE = 250


def channel_entities(catalogue: Catalogue) -> list[str]:
    """The entities with a trigger that takes WhatsApp channel ids."""
    return [
        e.name for e in catalogue.entities if any(COMPONENT in t.components for t in e.triggers)
    ]


def whatsapp_suggestions(catalogue: Catalogue, editing: str = "") -> list[str]:
    """The WhatsApp channel ids other subscriptions than ``editing`` (an id, "" for a new
    one) listen to, each once, sorted; at most SUGGESTIONS."""
    found: dict[str, None] = {}
    for entity in channel_entities(catalogue):
        token, scanned = "", 0
        while scanned < SCANNED and len(found) < SUGGESTIONS:
            response = call(
                "subscriptions",
                "ListSubscriptions",
                ListSubscriptionsRequest(
                    entity=entity,
                    page_size=PAGE_SIZE,
                    page_token=token,
                    order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_UPDATED_DESC,
                    exclude_ids=[editing] if editing else [],
                ),
            )
            for sub in response.subscriptions:
                for trigger in sub.triggers:
                    found.update(dict.fromkeys(trigger.whatsapp_channels))
            scanned += len(response.subscriptions)
            token = response.next_page_token
            if not token:
                break
    return sorted(list(found)[:SUGGESTIONS])
