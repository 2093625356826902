"""Matching one platform event against a subscription's triggers and their components.

Owns the matching rules of the catalogue: the trigger name must be the event's; each
component (channels, activity types, status changes, WhatsApp channels and statuses)
filters only when its list is non-empty ("empty means all"); status changes filter only
events whose activity type is StatusChange; an event of the Webhook entity (the platform's
own, about one webhook) never goes to the webhook it is about (``webhook_event_about``).
Pure: no I/O, no NATS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue import (
    ACTIVITY_STATUS_CHANGE,
    ANY_STATUS,
    WEBHOOK_ABOUT_FIELD,
    WEBHOOK_ENTITY,
)

_NONE: frozenset[Any] = frozenset()
# Distinct trigger specs kept interned; past this the cache starts over (it only saves work).
MAX_INTERNED = 100_000


@dataclass(frozen=True, slots=True)
class TriggerMatcher:
    """One trigger of a subscription, compiled: its component lists as frozensets."""

    trigger: str
    channels: frozenset[int] = frozenset()
    activity_types: frozenset[int] = frozenset()
    # (from, to) pairs; from ANY_STATUS matches a change from any status.
    status_changes: frozenset[tuple[int, int]] = frozenset()
    whatsapp_channels: frozenset[str] = frozenset()
    whatsapp_statuses: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, trigger: Mapping[str, Any]) -> TriggerMatcher:
        """From the canonical trigger dict of the catalogue (missing lists mean all)."""
        changes: Iterable[Mapping[str, int]] = trigger.get("status_changes") or ()
        return cls(
            trigger=str(trigger["trigger"]),
            channels=frozenset(trigger.get("channels") or ()),
            activity_types=frozenset(trigger.get("activity_types") or ()),
            status_changes=frozenset((int(c.get("from", 0)), int(c["to"])) for c in changes),
            whatsapp_channels=frozenset(trigger.get("whatsapp_channels") or ()),
            whatsapp_statuses=frozenset(trigger.get("whatsapp_statuses") or ()),
        )

    @classmethod
    def from_spec(cls, spec: common_pb2.TriggerSpec) -> TriggerMatcher:
        """From the TriggerSpec carried by SubscriptionState on the SUBSCRIPTIONS stream.

        Interned: subscriptions share few distinct triggers (OnNew on all channels, …), so
        equal specs get one matcher; that halves the table build and its memory.
        """
        key = spec.SerializeToString(deterministic=True)
        found = _INTERNED.get(key)
        if found is None:
            if len(_INTERNED) >= MAX_INTERNED:
                _INTERNED.clear()
            found = _INTERNED[key] = cls._compile(spec)
        return found

    @classmethod
    def _compile(cls, spec: common_pb2.TriggerSpec) -> TriggerMatcher:
        # Empty lists are the common case: skip building a frozenset for them.
        return cls(
            spec.trigger,
            frozenset(spec.channels) if spec.channels else _NONE,
            frozenset(spec.activity_types) if spec.activity_types else _NONE,
            frozenset((c.from_status, c.to_status) for c in spec.status_changes)
            if spec.status_changes
            else _NONE,
            frozenset(spec.whatsapp_channels) if spec.whatsapp_channels else _NONE,
            frozenset(spec.whatsapp_statuses) if spec.whatsapp_statuses else _NONE,
        )

    def matches(self, event: messages_pb2.PlatformEvent) -> bool:
        """Whether ``event`` (of the subscription's entity) fires this trigger."""
        if event.trigger != self.trigger:
            return False
        if self.channels and not (event.HasField("channel") and event.channel in self.channels):
            return False
        if self.activity_types or self.status_changes:
            has_activity = event.HasField("activity_type")
            if self.activity_types and not (
                has_activity and event.activity_type in self.activity_types
            ):
                return False
            # Status changes only narrow StatusChange activities; a trigger with activity
            # types {StatusChange, Remark} and a status change still gets every Remark.
            if (
                self.status_changes
                and has_activity
                and event.activity_type == ACTIVITY_STATUS_CHANGE
                and not self._status_change_matches(event.status_change)
            ):
                return False
        if self.whatsapp_channels and event.whatsapp_channel not in self.whatsapp_channels:
            return False
        return not (self.whatsapp_statuses and event.whatsapp_status not in self.whatsapp_statuses)

    def _status_change_matches(self, change: common_pb2.StatusChange) -> bool:
        to, changes = change.to_status, self.status_changes
        return (change.from_status, to) in changes or (ANY_STATUS, to) in changes


_INTERNED: dict[bytes, TriggerMatcher] = {}


def trigger_matches(
    trigger: Mapping[str, Any] | TriggerMatcher, event: messages_pb2.PlatformEvent
) -> bool:
    """Whether ``event`` fires ``trigger`` (a canonical trigger dict or a compiled one).

    The entity is not checked here: a trigger belongs to a subscription, which has it.
    """
    matcher = trigger if isinstance(trigger, TriggerMatcher) else TriggerMatcher.from_dict(trigger)
    return matcher.matches(event)


def webhook_event_about(event: messages_pb2.PlatformEvent, data: Mapping[str, Any]) -> str:
    """The subscription a Webhook event is about ("" for any other event): routing and
    replay skip it. A webhook told about its own failures would fail to take that news
    too, and each failure would announce another: the first link of a loop is never made.
    """
    if event.entity != WEBHOOK_ENTITY:
        return ""
    about = data.get(WEBHOOK_ABOUT_FIELD)
    return about if isinstance(about, str) else ""
