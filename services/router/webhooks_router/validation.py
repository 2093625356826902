"""Whether one platform event fits the catalogue, and its data parsed.

Owns the rules an event must meet before it is stored on EVENTS or routed: the same
rules for events taken over gRPC (PublishEvents) and straight off the NATS subject.
Pure: no I/O; the gRPC layer maps ``InvalidEvent`` to a rejected result with its field,
the NATS consumer terminates the message and dead-letters it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from webhooks.v1 import messages_pb2
from webhooks_catalogue import (
    ACTIVITY_STATUS_CHANGE,
    ACTIVITY_TYPES,
    ANY_STATUS,
    CHANNELS,
    ENTITIES,
    OBJECT_STATUSES,
    WHATSAPP_CHANNEL_ID,
    WHATSAPP_STATUSES,
    Component,
    Trigger,
    limits,
)
from webhooks_catalogue.event_data import EventDataError, parse_event_data
from webhooks_messaging import events_subject, is_valid_tenant

# Bounds, with why each is that number, live in webhooks_catalogue.limits.
MAX_DATA_BYTES = limits.EVENT_DATA_BYTES
MAX_EVENT_ID = limits.EVENT_ID_LENGTH
MAX_SUBCHANNEL = limits.SUBCHANNEL_LENGTH
MAX_NAME = limits.CATALOGUE_NAME_LENGTH  # entity and trigger
MAX_WHATSAPP_STATUS = limits.WHATSAPP_STATUS_LENGTH

# Clocks of publishers drift and queues hold events back, but an event dated a day ahead
# or before the platform existed is a bug upstream (seconds sent as milliseconds, an
# unset date): it would sit outside every replay window, so it is refused here.
MAX_FUTURE_SECONDS = 24 * 60 * 60
EARLIEST_SECONDS = 946_684_800  # 2000-01-01T00:00:00Z

# Printable ASCII without spaces: the id becomes a Nats-Msg-Id header value and part of
# job ids, where whitespace and control characters would break or smuggle headers.
_EVENT_ID = re.compile(r"[!-~]+")
# Shown in the failures view and logs: no control characters (line breaks forge logs).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Exact canonical names: the subject and every stored copy carry the name as given, and
# routing compares names exactly, so "object" would silently match no subscription.
_TRIGGERS: Mapping[str, Mapping[str, Trigger]] = {
    e.name: {t.name: t for t in e.triggers} for e in ENTITIES
}
_CASEFOLDED_ENTITIES = {name.casefold(): name for name in _TRIGGERS}


class InvalidEvent(ValueError):
    """An event does not meet the rules; ``field`` names the offending PlatformEvent field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _reject(field: str, reason: str) -> NoReturn:
    raise InvalidEvent(field, reason)


def validate_event(
    event: messages_pb2.PlatformEvent, *, subject: str | None = None, now: float | None = None
) -> dict[str, Any]:
    """The event's data as a JSON object, or InvalidEvent naming the first bad field.

    ``subject``: where the event was found on NATS, which must be its own subject (field
    "subject"); None when it came over gRPC and the router picks the subject.
    ``now`` (seconds since the epoch) is the clock for the occurred-at check; tests set it.
    """
    _check_event_id(event.event_id)
    if not event.tenant:
        _reject("tenant", "is required")
    if not is_valid_tenant(event.tenant):
        # Quoted short: the reason goes back to the caller and into logs.
        _reject("tenant", f"not a valid tenant id: {event.tenant[:80]!r}")
    trigger = _trigger(event.entity, event.trigger)
    # The entity and trigger are the catalogue's and the tenant is valid: the subject is
    # well formed without events_subject's checks. Its first token is either lane's (EVENTS
    # stores no other).
    if subject is not None and subject.partition(".")[2] != (
        f"{event.tenant}.{event.entity}.{event.trigger}"
    ):
        # Replay reads a tenant's events by subject: an event stored under another
        # tenant's subject would leak into that tenant's replays, or be missed by its own.
        _reject("subject", f"published on {subject!r}; expected {event_subject(event)!r}")
    _check_occurred_at(event, time.time() if now is None else now)
    _check_channel(event, trigger)
    _check_activity(event, trigger)
    _check_whatsapp(event, trigger)
    return _data(event.data_json)


def event_subject(event: messages_pb2.PlatformEvent) -> str:
    """Where the event is stored on EVENTS: ``events.<tenant>.<entity>.<trigger>``."""
    return events_subject(event.tenant, event.entity, event.trigger)


def _check_event_id(event_id: str) -> None:
    if not event_id:
        _reject("event_id", "is required")
    if len(event_id) > MAX_EVENT_ID:
        _reject("event_id", f"is {len(event_id)} characters; at most {MAX_EVENT_ID}")
    if not _EVENT_ID.fullmatch(event_id):
        _reject("event_id", "must be printable ASCII without spaces")


def _trigger(entity_name: str, trigger_name: str) -> Trigger:
    if not entity_name:
        _reject("entity", "is required")
    # Checked before the lookup, so an unknown name is short enough to quote back.
    if len(entity_name) > MAX_NAME:
        _reject("entity", f"is {len(entity_name)} characters; at most {MAX_NAME}")
    if len(trigger_name) > MAX_NAME:
        _reject("trigger", f"is {len(trigger_name)} characters; at most {MAX_NAME}")
    triggers = _TRIGGERS.get(entity_name)
    if triggers is None:
        expected = ", ".join(_TRIGGERS)
        hint = _CASEFOLDED_ENTITIES.get(entity_name.casefold())
        did_you_mean = f" (names are case-sensitive: {hint!r})" if hint else ""
        _reject(
            "entity", f"unknown entity {entity_name!r}{did_you_mean}; expected one of {expected}"
        )
    if not trigger_name:
        _reject("trigger", "is required")
    found = triggers.get(trigger_name)
    if found is None:
        expected = ", ".join(triggers)
        _reject(
            "trigger",
            f"{trigger_name!r} is not a trigger of {entity_name}; expected one of {expected}",
        )
    return found


def _check_occurred_at(event: messages_pb2.PlatformEvent, now: float) -> None:
    if not event.HasField("occurred_at"):
        _reject("occurred_at", "is required")
    stamp = event.occurred_at
    # Compared as integers: converting an absurd timestamp to a datetime would raise.
    if not 0 <= stamp.nanos <= 999_999_999:
        _reject("occurred_at", f"nanos {stamp.nanos} out of range")
    if stamp.seconds < EARLIEST_SECONDS:
        _reject("occurred_at", "is before 2000-01-01T00:00:00Z")
    if stamp.seconds > now + MAX_FUTURE_SECONDS:
        _reject("occurred_at", "is more than one day in the future")


def _check_channel(event: messages_pb2.PlatformEvent, trigger: Trigger) -> None:
    has_channels = Component.CHANNELS in trigger.components
    if event.HasField("channel"):
        if not has_channels:
            _reject("channel", f"not allowed: {event.entity} {trigger.name} has no channels")
        if event.channel not in CHANNELS:
            expected = ", ".join(f"{i} {n}" for i, n in CHANNELS.items())
            _reject("channel", f"unknown channel id {event.channel}; expected one of {expected}")
    if event.subchannel:
        if not has_channels:
            _reject("subchannel", f"not allowed: {event.entity} {trigger.name} has no channels")
        if len(event.subchannel) > MAX_SUBCHANNEL:
            _reject(
                "subchannel", f"is {len(event.subchannel)} characters; at most {MAX_SUBCHANNEL}"
            )
        if _CONTROL.search(event.subchannel):
            _reject("subchannel", "must not contain control characters")


def _check_activity(event: messages_pb2.PlatformEvent, trigger: Trigger) -> None:
    has_status_change = event.HasField("status_change")
    if Component.ACTIVITY_TYPES not in trigger.components:
        if event.HasField("activity_type"):
            _reject("activity_type", f"not allowed: {event.entity} {trigger.name} has none")
        if has_status_change:
            _reject("status_change", f"not allowed: {event.entity} {trigger.name} has none")
        return
    if not event.HasField("activity_type"):
        _reject("activity_type", f"is required for {event.entity} {trigger.name}")
    if event.activity_type not in ACTIVITY_TYPES:
        expected = ", ".join(f"{i} {n}" for i, n in ACTIVITY_TYPES.items())
        _reject(
            "activity_type",
            f"unknown activity type {event.activity_type}; expected one of {expected}",
        )
    if event.activity_type != ACTIVITY_STATUS_CHANGE:
        if has_status_change:
            _reject("status_change", "only allowed with activity type 2 StatusChange")
        return
    if not has_status_change:
        _reject("status_change", "is required with activity type 2 StatusChange")
    change = event.status_change
    if change.to_status not in OBJECT_STATUSES:
        _reject("status_change.to_status", _unknown_status(change.to_status))
    if change.from_status != ANY_STATUS and change.from_status not in OBJECT_STATUSES:
        _reject("status_change.from_status", _unknown_status(change.from_status) + " or 0")


def _unknown_status(status: int) -> str:
    expected = ", ".join(f"{i} {n}" for i, n in OBJECT_STATUSES.items())
    return f"unknown object status {status}; expected one of {expected}"


def _check_whatsapp(event: messages_pb2.PlatformEvent, trigger: Trigger) -> None:
    checks = (
        ("whatsapp_channel", event.whatsapp_channel, Component.WHATSAPP_CHANNELS),
        ("whatsapp_status", event.whatsapp_status, Component.WHATSAPP_STATUSES),
    )
    for field, value, component in checks:
        if component not in trigger.components:
            if value:
                _reject(field, f"not allowed: {event.entity} {trigger.name} has none")
        elif not value:
            _reject(field, f"is required for {event.entity} {trigger.name}")
    if event.whatsapp_channel and not WHATSAPP_CHANNEL_ID.fullmatch(event.whatsapp_channel):
        _reject(
            "whatsapp_channel",
            f"must be 1-{limits.WHATSAPP_CHANNEL_ID_LENGTH} characters of A-Z a-z 0-9 _ . : -",
        )
    if len(event.whatsapp_status) > MAX_WHATSAPP_STATUS:
        _reject(
            "whatsapp_status",
            f"is {len(event.whatsapp_status)} characters; at most {MAX_WHATSAPP_STATUS}",
        )
    if event.whatsapp_status and event.whatsapp_status not in WHATSAPP_STATUSES:
        expected = ", ".join(WHATSAPP_STATUSES)
        _reject(
            "whatsapp_status",
            f"unknown WhatsApp status {event.whatsapp_status!r}; expected one of {expected}",
        )


def _data(raw: bytes) -> dict[str, Any]:
    try:
        return parse_event_data(raw)
    except EventDataError as error:
        _reject("data_json", str(error))
