"""The delivered payload: the catalogue's envelope around the summary or the complete data.

Owns what a receiver gets in the body of a REST webhook (the sender turns the same
envelope into XML for SOAP):

    {"Event": {"Subscription": <entity>, "Name": <trigger>, "Brand": <tenant>,
               "EventId": ..., "DeliveryId": ..., "SubscriptionName": ...,
               "OccurredAt": "2024-05-01T09:30:00.000Z", <entity>: <summary or data>}}

The summary keeps the entity's summary fields (``Entity.summary_fields``) and the field
the trigger adds (``Trigger.summary_adds``), narrowed to what triggered the event:

- ``Children`` (Object OnNewChild) and ``Activities`` (Object OnNewActivity): the LAST
  element only, still as a one-element list, because the platform appends the new message
  or activity to the conversation's list and the receiver should see the same shape
  either way.
- ``Tags`` (Object OnUpdateTag): all of them: one update may add and remove several tags,
  and each item is only ``{Id, Action}``.

A field missing from the data is absent from the summary. Shaping runs once per (event,
matching subscription), so the work that does not depend on the subscription (the
entity part, the time, the names) is done once per event: ``EventShaper``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from webhooks_catalogue import ENTITIES

_ENVELOPE_KEYS = (
    "Subscription", "Name", "Brand", "EventId", "DeliveryId", "SubscriptionName", "OccurredAt",
)  # fmt: skip
# The entity's data sits next to the envelope fields, keyed by the entity's name.
assert not {e.name for e in ENTITIES} & set(_ENVELOPE_KEYS), "an entity name is an envelope key"


def _last_only(value: Any) -> Any:
    # Not a list (an unexpected shape from a publisher): keep it rather than lose it.
    return value[-1:] if isinstance(value, list) else value


def _all(value: Any) -> Any:
    return value


# How the triggering items are picked out of the field a trigger adds to the summary.
_NARROWING: Mapping[str, Callable[[Any], Any]] = {
    "Children": _last_only,
    "Activities": _last_only,
    "Tags": _all,
}

# Per (entity, trigger): the summary fields, then the added field with its narrowing.
_SUMMARY_PLANS: Mapping[tuple[str, str], tuple[tuple[str, ...], str | None, Callable[[Any], Any]]]
_SUMMARY_PLANS = {
    (e.name, t.name): (e.summary_fields, t.summary_adds, _NARROWING.get(t.summary_adds or "", _all))
    for e in ENTITIES
    for t in e.triggers
}


def summary(entity: str, trigger: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of an event's data ("Include Complete Data" off)."""
    try:
        fields, adds, narrow = _SUMMARY_PLANS[(entity, trigger)]
    except KeyError:
        raise ValueError(f"not a trigger of the catalogue: {entity} {trigger}") from None
    kept = {name: data[name] for name in fields if name in data}
    if adds is not None and adds in data:
        kept[adds] = narrow(data[adds])
    return kept


def event_body(
    entity: str, trigger: str, data: Mapping[str, Any], include_complete_data: bool
) -> str:
    """The entity part of the payload as JSON text: the same for every subscription with
    the same "include complete data", so callers shape it once per event and reuse it."""
    return _dumps(data if include_complete_data else summary(entity, trigger, data))


def envelope(
    *,
    body: str,
    entity: str,
    trigger: str,
    tenant: str,
    event_id: str,
    delivery_id: str,
    subscription_name: str,
    occurred_at: datetime,
) -> bytes:
    """The payload around an entity part made by ``event_body``, as UTF-8 JSON."""
    return _Prefix(entity, trigger, tenant, event_id).join(
        delivery_id, subscription_name, _time(occurred_at), entity, body
    )


def shape_payload(
    *,
    entity: str,
    trigger: str,
    tenant: str,
    event_id: str,
    delivery_id: str,
    subscription_name: str,
    occurred_at: datetime,
    data: Mapping[str, Any],
    include_complete_data: bool,
) -> bytes:
    """The payload of one delivery, as compact UTF-8 JSON with the envelope's field order."""
    body = event_body(entity, trigger, data, include_complete_data)
    return envelope(
        body=body,
        entity=entity,
        trigger=trigger,
        tenant=tenant,
        event_id=event_id,
        delivery_id=delivery_id,
        subscription_name=subscription_name,
        occurred_at=occurred_at,
    )


class EventShaper:
    """Shapes the payloads of one event for each matching subscription.

    The names, the time and both entity parts are encoded at most once; ``payload`` then
    only encodes the delivery id and the subscription name.
    """

    __slots__ = ("_bodies", "_data", "_entity", "_prefix", "_time", "_trigger")

    def __init__(
        self,
        *,
        entity: str,
        trigger: str,
        tenant: str,
        event_id: str,
        occurred_at: datetime,
        data: Mapping[str, Any],
    ) -> None:
        self._entity = entity
        self._trigger = trigger
        self._data = data
        self._prefix = _Prefix(entity, trigger, tenant, event_id)
        self._time = _time(occurred_at)
        self._bodies: dict[bool, str] = {}

    def payload(
        self, *, delivery_id: str, subscription_name: str, include_complete_data: bool
    ) -> bytes:
        body = self._bodies.get(include_complete_data)
        if body is None:
            body = event_body(self._entity, self._trigger, self._data, include_complete_data)
            self._bodies[include_complete_data] = body
        return self._prefix.join(delivery_id, subscription_name, self._time, self._entity, body)


class _Prefix:
    """The envelope up to the subscription-specific fields, encoded once."""

    __slots__ = ("_head",)

    def __init__(self, entity: str, trigger: str, tenant: str, event_id: str) -> None:
        self._head = (
            f'{{"Event":{{"Subscription":{_dumps(entity)},"Name":{_dumps(trigger)},'
            f'"Brand":{_dumps(tenant)},"EventId":{_dumps(event_id)},"DeliveryId":'
        )

    def join(
        self, delivery_id: str, subscription_name: str, time: str, entity: str, body: str
    ) -> bytes:
        text = (
            f'{self._head}{_dumps(delivery_id)},"SubscriptionName":{_dumps(subscription_name)},'
            f'"OccurredAt":"{time}",{_dumps(entity)}:{body}}}}}'
        )
        return _encode(text)


# ensure_ascii=False: non-ASCII text goes out as UTF-8, a third of the size of \u escapes.
# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# What that encoder does to a str, without the encoder's dispatch (C, like the encoder's).
_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _dumps(value: Any) -> str:
    if type(value) is str:
        return _encode_str(value)
    return _ENCODER.encode(value)


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (validation refuses them, but data may predate that rule):
        # still valid JSON as an escape, where UTF-8 cannot carry it.
        return json.dumps(json.loads(text), separators=(",", ":")).encode("ascii")


def _time(occurred_at: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and Z, the shape JavaScript's toISOString gives.

    A naive datetime is taken as UTC: protobuf's Timestamp.ToDatetime() returns one.
    """
    if occurred_at.tzinfo is not None:
        occurred_at = occurred_at.astimezone(UTC).replace(tzinfo=None)
    if occurred_at.year >= 1000:  # isoformat pads years to 4 digits, strftime may not
        return occurred_at.isoformat(timespec="milliseconds") + "Z"
    return occurred_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{occurred_at.microsecond // 1000:03d}Z"
