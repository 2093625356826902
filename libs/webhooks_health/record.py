"""The health record of one webhook: its key, its state names, and what the API shows of it.

The record (``EndpointHealth``) lives in the KV bucket WEBHOOK_HEALTH under
``<tenant>.<subscription id>``; no key means healthy, so the common case stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1 import common_pb2, messages_pb2

HEALTH_BUCKET = "WEBHOOK_HEALTH"
NOTICES_BUCKET = "WEBHOOK_NOTICES"
RATE_BUCKET = "WEBHOOK_RATE_SLOTS"

HS = common_pb2.HealthState

STATE_NAMES: Mapping[int, str] = {
    HS.HEALTH_STATE_UNSPECIFIED: "healthy",
    HS.HEALTH_STATE_HEALTHY: "healthy",
    HS.HEALTH_STATE_FAILING: "failing",
    HS.HEALTH_STATE_CIRCUIT_OPEN: "circuit_open",
    HS.HEALTH_STATE_THROTTLED: "throttled",
    HS.HEALTH_STATE_DISABLED: "disabled",
}


def health_key(tenant: str, subscription_id: str) -> str:
    """The record's key; both parts are single KV tokens (no dots), so the key splits back."""
    if not tenant or "." in tenant or not subscription_id or "." in subscription_id:
        given = f"{tenant!r}, {subscription_id!r}"
        raise ValueError(f"health key: not a tenant and a subscription id: {given}")
    return f"{tenant}.{subscription_id}"


def subscription_of_key(key: str) -> str:
    """The subscription id of a record's key."""
    return key.rpartition(".")[2]


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def moment(stamp: Timestamp) -> datetime | None:
    """The timestamp as an aware datetime, or None when unset (zero)."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def shown_health(record: messages_pb2.EndpointHealth | None, now: datetime) -> common_pb2.Health:
    """The health the API shows: the record's, except a throttle already over.

    A throttle ends by itself when its ``until`` passes (no write marks it), so it is shown as
    what the endpoint was before it: failing when a failing streak had been announced.
    """
    if record is None:
        return common_pb2.Health(state=HS.HEALTH_STATE_HEALTHY)
    shown = common_pb2.Health()
    shown.CopyFrom(record.health)
    if shown.state == HS.HEALTH_STATE_UNSPECIFIED:
        shown.state = HS.HEALTH_STATE_HEALTHY
    if shown.state == HS.HEALTH_STATE_THROTTLED:
        until = moment(shown.until)
        if until is None or until <= now:
            failing = shown.consecutive_failures >= 1 and record.failing_announced
            shown.state = HS.HEALTH_STATE_FAILING if failing else HS.HEALTH_STATE_HEALTHY
            shown.ClearField("until")
            if not failing:
                shown.reason = ""
    return shown
