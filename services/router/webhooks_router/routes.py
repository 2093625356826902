"""The routing table: every active subscription, indexed by what an event looks up.

Owns the in-memory projection of the SUBSCRIPTIONS stream: states are applied in stream
order, guarded by version; active subscriptions are indexed by (tenant, entity, trigger);
inactive and deleted ones leave the index but their status is remembered. Pure: the feed
(``webhooks_messaging.feed``) reads the stream and calls ``apply`` / ``advance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from webhooks.v1 import messages_pb2
from webhooks_router.matching import TriggerMatcher

SubscriptionStatus = Literal["active", "inactive", "deleted", "unknown"]
_IndexKey = tuple[str, str, str]  # (tenant, entity, trigger)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """What routing and payload shaping need of one active subscription."""

    subscription_id: str
    tenant: str
    name: str
    version: int
    entity: str
    triggers: tuple[TriggerMatcher, ...]
    include_complete_data: bool
    # Its fields of a DeliveryJob (id, version, name) serialized, or b"" (then computed
    # per job): routing encodes them once per subscription rather than once per job.
    job_fields: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def from_state(cls, state: messages_pb2.SubscriptionState) -> RouteEntry:
        return cls(
            subscription_id=state.id,
            tenant=state.tenant,
            name=state.name,
            version=state.version,
            entity=state.entity,
            triggers=tuple(TriggerMatcher.from_spec(t) for t in state.triggers),
            include_complete_data=state.include_complete_data,
            job_fields=messages_pb2.DeliveryJob(
                subscription_id=state.id,
                subscription_version=state.version,
                subscription_name=state.name,
            ).SerializeToString(),
        )

    def index_keys(self) -> set[_IndexKey]:
        # A set: several triggers of one name (e.g. OnNewActivity split by activity type)
        # share one index slot, so the subscription is found once per event.
        return {(self.tenant, self.entity, t.trigger) for t in self.triggers}

    def matches(self, event: messages_pb2.PlatformEvent) -> bool:
        """Whether any trigger fires; tenant and entity are the index's business."""
        return any(t.matches(event) for t in self.triggers)


def subscription_matches(entry: RouteEntry, event: messages_pb2.PlatformEvent) -> bool:
    """Whether ``event`` is for ``entry``: same tenant and entity, and any trigger fires."""
    if entry.tenant != event.tenant or entry.entity != event.entity:
        return False
    return entry.matches(event)


@dataclass(slots=True)
class _Known:
    """The latest state seen of a subscription, active or not."""

    version: int
    status: SubscriptionStatus
    entry: RouteEntry | None  # set while active


class RoutingTable:
    """Active subscriptions by (tenant, entity, trigger), kept by applying stream states."""

    def __init__(self) -> None:
        self._index: dict[_IndexKey, dict[str, RouteEntry]] = {}
        self._known: dict[tuple[str, str], _Known] = {}
        self._active = 0
        # The last SUBSCRIPTIONS stream sequence applied (or skipped): 0 before any.
        self.applied_seq = 0

    def advance(self, stream_seq: int) -> None:
        """Record that ``stream_seq`` was read without changing a route (a certificate,
        an undecodable message)."""
        if stream_seq > self.applied_seq:
            self.applied_seq = stream_seq

    def apply_certificate(self, state: messages_pb2.CertificateState, stream_seq: int) -> None:
        self.advance(stream_seq)  # certificates are the sender's business, not routing's

    def apply(self, state: messages_pb2.SubscriptionState, stream_seq: int) -> None:
        """Apply a subscription's state found at ``stream_seq``; an older version than the
        one held is ignored (the stream is ordered, but a replayed copy may not be)."""
        self.advance(stream_seq)
        key = (state.tenant, state.id)
        known = self._known.get(key)
        if known is not None:
            if state.version < known.version:
                return
            if known.entry is not None:
                self._unindex(known.entry)
        status: SubscriptionStatus = (
            "deleted" if state.deleted else "active" if state.active else "inactive"
        )
        entry = RouteEntry.from_state(state) if status == "active" else None
        if entry is not None:
            for index_key in entry.index_keys():
                self._index.setdefault(index_key, {})[entry.subscription_id] = entry
            self._active += 1
        if known is None:
            self._known[key] = _Known(state.version, status, entry)
        else:
            known.version, known.status, known.entry = state.version, status, entry

    def _unindex(self, entry: RouteEntry) -> None:
        for index_key in entry.index_keys():
            bucket = self._index.get(index_key)
            if bucket is not None:
                bucket.pop(entry.subscription_id, None)
                if not bucket:
                    del self._index[index_key]
        self._active -= 1

    def route(self, event: messages_pb2.PlatformEvent, *, about: str = "") -> list[RouteEntry]:
        """Every active subscription the event matches, each exactly once, but the one
        the event is ``about`` (matching.webhook_event_about: never to itself)."""
        bucket = self._index.get((event.tenant, event.entity, event.trigger))
        if not bucket:
            return []
        if about:
            return [e for e in bucket.values() if e.subscription_id != about and e.matches(event)]
        return [entry for entry in bucket.values() if entry.matches(event)]

    def get(self, tenant: str, subscription_id: str) -> RouteEntry | None:
        """The active subscription's entry, or None (inactive, deleted or unknown)."""
        known = self._known.get((tenant, subscription_id))
        return known.entry if known is not None else None

    def status(self, tenant: str, subscription_id: str) -> SubscriptionStatus:
        known = self._known.get((tenant, subscription_id))
        return known.status if known is not None else "unknown"

    def __len__(self) -> int:
        """The number of active subscriptions."""
        return self._active
