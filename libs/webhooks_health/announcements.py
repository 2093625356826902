"""Operator events: the platform's own events about a webhook, as events of the catalogue's
Webhook entity, published on EVENTS like any other (the router delivers them to the
organisation's subscriptions of that entity; loop rules in docs/operations.md).

Their data is one shape for every trigger (every key present, "" or 0 when it does not
apply), so a receiver reads them all alike. Nothing secret goes in: the URL is shown without
user info, query or fragment, and errors are the attempts' own words.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue import WEBHOOK_ENTITY
from webhooks_health.record import STATE_NAMES, moment, timestamp
from webhooks_health.rules import Notice
from webhooks_messaging.subjects import events_subject
from webhooks_secrets import shown_url

HS = common_pb2.HealthState

# The data's keys, each with its value when it does not apply.
DATA_DEFAULTS: dict[str, str | int] = {
    "SubscriptionId": "",
    "SubscriptionName": "",
    "Entity": "",
    "Url": "",
    "State": "",
    "Reason": "",
    "ConsecutiveFailures": 0,
    "FailingSince": "",
    "LastError": "",
    "DeliveryId": "",
    "EventId": "",
    "CertificateId": "",
    "CertificateName": "",
    "CertificateNotAfter": "",
}


def rfc3339(at: datetime | None) -> str:
    """RFC 3339 in UTC with milliseconds and Z (the delivered envelope's shape), or ""."""
    if at is None:
        return ""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def operator_event(
    trigger: str,
    *,
    tenant: str,
    subscription: messages_pb2.SubscriptionState,
    health: common_pb2.Health | None,
    event_id: str,
    occurred_at: datetime,
    **extra: str | int,
) -> messages_pb2.PlatformEvent:
    """The Webhook event ``trigger`` about ``subscription``; ``extra`` sets data keys that
    the health does not give (DeliveryId, EventId, CertificateId, CertificateName,
    CertificateNotAfter)."""
    shown = health if health is not None else common_pb2.Health(state=HS.HEALTH_STATE_HEALTHY)
    data: dict[str, Any] = dict(DATA_DEFAULTS)
    data.update(
        SubscriptionId=subscription.id,
        SubscriptionName=subscription.name,
        Entity=subscription.entity,
        Url=shown_url(subscription.webhook.url),
        State=STATE_NAMES.get(shown.state, "healthy"),
        Reason=shown.reason,
        ConsecutiveFailures=shown.consecutive_failures,
        FailingSince=rfc3339(moment(shown.failing_since)),
        LastError=shown.last_error,
    )
    for key, value in extra.items():
        if key not in DATA_DEFAULTS:
            raise ValueError(f"{key}: not a key of a Webhook event's data")
        if type(value) is not type(DATA_DEFAULTS[key]):
            raise ValueError(f"{key}: a {type(DATA_DEFAULTS[key]).__name__}, not {value!r}")
        data[key] = value
    return messages_pb2.PlatformEvent(
        event_id=event_id,
        tenant=tenant,
        entity=WEBHOOK_ENTITY,
        trigger=trigger,
        occurred_at=timestamp(occurred_at),
        data_json=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
    )


def notice_event(
    notice: Notice,
    *,
    tenant: str,
    subscription: messages_pb2.SubscriptionState,
    occurred_at: datetime,
) -> messages_pb2.PlatformEvent:
    """The operator event of one notice of ``after_attempt``'s change."""
    extra: dict[str, str | int] = {}
    if notice.delivery_id:
        extra.update(DeliveryId=notice.delivery_id, EventId=notice.delivered_event_id)
    return operator_event(
        notice.trigger,
        tenant=tenant,
        subscription=subscription,
        health=notice.health,
        event_id=notice.event_id,
        occurred_at=occurred_at,
        **extra,
    )


async def announce(js: JetStreamContext, event: messages_pb2.PlatformEvent) -> None:
    """Publish the event on EVENTS (the standard lane); its id deduplicates a repeat."""
    subject = events_subject(event.tenant, event.entity, event.trigger)
    await js.publish(subject, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})


async def announce_notices(
    js: JetStreamContext,
    notices: Iterable[Notice],
    *,
    tenant: str,
    subscription: messages_pb2.SubscriptionState,
    occurred_at: datetime,
) -> None:
    """Publish the operator events of a change, in order."""
    for notice in notices:
        event = notice_event(
            notice, tenant=tenant, subscription=subscription, occurred_at=occurred_at
        )
        await announce(js, event)
