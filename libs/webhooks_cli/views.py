"""The table rows of subscriptions, history entries and certificates in a terminal; how a
subscription reads (shared with the console) is ``webhooks_client.subscription_text``."""

from __future__ import annotations

import json
from typing import Any

from webhooks.v1.common_pb2 import StatusChange, TriggerSpec
from webhooks.v1.failures_pb2 import SubscriptionFailureCount
from webhooks.v1.subscriptions_pb2 import (
    Certificate,
    ListSubscriptionsResponse,
    Subscription,
    SubscriptionHistoryEntry,
)
from webhooks_catalogue.vocabulary import (
    activity_type_label,
    channel_label,
    entity_label,
    object_status_label,
    trigger_label,
    whatsapp_status_label,
)
from webhooks_cli.output import json_data
from webhooks_client.health_text import DISABLED_BY_PLATFORM, disabled_text, health_name
from webhooks_client.protos import message_dict, timestamp_text
from webhooks_client.subscription_text import whole_numbers, yes_no

SUBSCRIPTION_HEADERS = (
    *("NAME", "ENTITY", "TRIGGERS", "URL"),
    *("CREATED", "MODIFIED", "ACTIVE", "HEALTH", "FAILURES", "ID"),
)
HISTORY_HEADERS = ("VERSION", "TIME", "EVENT", "ACTOR", "CHANGES")
CERTIFICATE_HEADERS = ("ID", "NAME", "SUBJECT", "EXPIRES")


def failures_text(count: SubscriptionFailureCount | None) -> str:
    """The guide's warning and number: failed attempts (and the events they belong to);
    "-" when the failures service could not say."""
    if count is None:
        return "-"
    if count.failed_attempts == 0:
        return "0"
    events = "event" if count.failed_events == 1 else "events"
    return f"! {count.failed_attempts} ({count.failed_events} {events})"


def subscription_row(
    sub: Subscription, failures: SubscriptionFailureCount | None = None
) -> tuple[str, ...]:
    return (
        sub.name,
        entity_label(sub.entity),
        " | ".join(trigger_text(t) for t in sub.triggers),
        sub.webhook.url,
        timestamp_text(sub.created_at),
        timestamp_text(sub.updated_at),
        yes_no(sub.active),
        health_name(sub.health),
        failures_text(failures),
        sub.id,
    )


def trigger_text(trigger: TriggerSpec) -> str:
    """A trigger as a table shows it, in display names: ``On New Activity (activity types:
    Status Change, Remark; status changes: any → Archive)``; options take these names too."""

    def change(sc: StatusChange) -> str:
        source = object_status_label(sc.from_status) if sc.from_status else "any"
        return f"{source} → {object_status_label(sc.to_status)}"

    parts = [
        ("channels", [channel_label(c) for c in trigger.channels]),
        ("activity types", [activity_type_label(a) for a in trigger.activity_types]),
        ("status changes", [change(sc) for sc in trigger.status_changes]),
        ("WhatsApp channels", list(trigger.whatsapp_channels)),
        ("WhatsApp statuses", [whatsapp_status_label(w) for w in trigger.whatsapp_statuses]),
    ]
    shown = "; ".join(f"{name}: {', '.join(values)}" for name, values in parts if values)
    label = trigger_label(trigger.trigger)
    return f"{label} ({shown})" if shown else label


def subscriptions_data(
    listing: ListSubscriptionsResponse, counts: dict[str, SubscriptionFailureCount] | None
) -> dict[str, Any]:
    """The listing for --json, with the table's FAILURES column as ``failures`` on each
    subscription: its failed attempts and events, or null where the table shows "-"."""
    data = json_data(listing)
    for shown, sub in zip(data["subscriptions"], listing.subscriptions, strict=True):
        count = counts.get(sub.id) if counts is not None else None
        shown["failures"] = None if count is None else failures_data(count)
    return data


def failures_data(count: SubscriptionFailureCount) -> dict[str, int]:
    return {"failed_attempts": count.failed_attempts, "failed_events": count.failed_events}


def history_row(entry: SubscriptionHistoryEntry) -> tuple[str, ...]:
    changes = whole_numbers(message_dict(entry)["changes"])
    event = entry.event_type
    if event == DISABLED_BY_PLATFORM:
        event = disabled_text(str(changes.get("reason") or ""))
    return (
        str(entry.version),
        timestamp_text(entry.occurred_at),
        event,
        entry.actor,
        json.dumps(changes, sort_keys=True, separators=(",", ":")),
    )


def certificate_row(cert: Certificate) -> tuple[str, ...]:
    return (cert.id, cert.name, cert.subject, timestamp_text(cert.not_after))
