"""Delivery jobs: one per (event, matching subscription), built from the event and the
routing table. Their ids, and why routed and replayed ones differ, are
``webhooks_messaging.jobs``'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webhooks.v1 import messages_pb2
from webhooks_catalogue.shaping import EventShaper
from webhooks_messaging import delivery_job_subject
from webhooks_messaging.jobs import (
    delivery_id_for,
    delivery_job,
    new_delivery_id,
    replay_job_id,
    routed_job_id,
)
from webhooks_router.routes import RouteEntry

_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class OutgoingJob:
    subject: str
    job: messages_pb2.DeliveryJob

    @property
    def msg_id(self) -> str:
        return self.job.job_id


def build_job(
    entry: RouteEntry,
    event: messages_pb2.PlatformEvent,
    shaper: EventShaper,
    *,
    replay_id: str = "",
    bulk: bool = False,
) -> OutgoingJob:
    if replay_id:
        job_id = replay_job_id(replay_id, event.event_id, entry.subscription_id)
        delivery_id = new_delivery_id()
    else:
        job_id = routed_job_id(event.event_id, entry.subscription_id)
        delivery_id = delivery_id_for(job_id)
    job = delivery_job(
        job_id=job_id,
        delivery_id=delivery_id,
        event_id=event.event_id,
        tenant=event.tenant,
        subscription_id=entry.subscription_id,
        subscription_version=entry.version,
        subscription_name=entry.name,
        entity=event.entity,
        trigger=event.trigger,
        subchannel=event.subchannel,
        occurred_at=event.occurred_at,
        channel=event.channel if event.HasField("channel") else None,
        payload_json=shaper.payload(
            delivery_id=delivery_id,
            subscription_name=entry.name,
            include_complete_data=entry.include_complete_data,
        ),
        replay=bool(replay_id),
    )
    subject = delivery_job_subject(event.tenant, entry.subscription_id, bulk=bulk)
    return OutgoingJob(subject=subject, job=job)


def job_fields(entry: RouteEntry) -> bytes:
    """The subscription's fields of its jobs, serialized (once per entry: it is immutable)."""
    if entry.job_fields:
        return entry.job_fields
    return messages_pb2.DeliveryJob(
        subscription_id=entry.subscription_id,
        subscription_version=entry.version,
        subscription_name=entry.name,
    ).SerializeToString()


def shaper_for(event: messages_pb2.PlatformEvent, data: dict[str, Any]) -> EventShaper:
    """Shapes the parts of the payload every subscription of one event shares once."""
    return EventShaper(
        entity=event.entity,
        trigger=event.trigger,
        tenant=event.tenant,
        event_id=event.event_id,
        # = occurred_at.ToDatetime() (naive UTC), a fraction of its cost
        occurred_at=_EPOCH
        + timedelta(
            seconds=event.occurred_at.seconds, microseconds=event.occurred_at.nanos // 1000
        ),
        data=data,
    )


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is slower (one per job)
class RoutedJob:
    """A routed job, ready to be serialized once its trace context is known."""

    subject: str
    job_id: str
    delivery_id: str
    subscription_id: str
    head: bytes  # every field but job_id, delivery_id, payload_json, trace_context
    payload: bytes

    def serialize(self, trace_context: bytes) -> bytes:
        """The DeliveryJob's wire form: ``build_job``'s job with the trace context
        serialized by ``trace_fields``.

        Serialized protobuf messages concatenate into their merge, so the fields every job
        of the event shares are encoded once per event (``EventJobs``), the subscription's
        once per subscription and the trace context once per span; only the ids and the
        payload are encoded per job.
        """
        tail = messages_pb2.DeliveryJob(
            job_id=self.job_id, delivery_id=self.delivery_id, payload_json=self.payload
        )
        return self.head + trace_context + tail.SerializeToString()


def trace_fields(trace_context: dict[str, str]) -> bytes:
    """A DeliveryJob's ``trace_context`` alone, serialized (for ``RoutedJob.serialize``)."""
    return messages_pb2.DeliveryJob(trace_context=trace_context).SerializeToString()


class EventJobs:
    """Builds the jobs of one routed (not replayed) event, one per matching subscription,
    on the event's lane (``bulk``)."""

    __slots__ = ("_bulk", "_event", "_head", "_shaper")

    def __init__(
        self, event: messages_pb2.PlatformEvent, data: dict[str, Any], *, bulk: bool = False
    ) -> None:
        self._event = event
        self._bulk = bulk
        self._shaper = shaper_for(event, data)
        head = messages_pb2.DeliveryJob(
            event_id=event.event_id,
            tenant=event.tenant,
            entity=event.entity,
            trigger=event.trigger,
            subchannel=event.subchannel,
            occurred_at=event.occurred_at,
            attempt=1,
        )
        if event.HasField("channel"):
            head.channel = event.channel
        self._head = head.SerializeToString()

    def job(self, entry: RouteEntry) -> RoutedJob:
        job_id = routed_job_id(self._event.event_id, entry.subscription_id)
        delivery_id = delivery_id_for(job_id)
        return RoutedJob(
            subject=delivery_job_subject(
                self._event.tenant, entry.subscription_id, bulk=self._bulk
            ),
            job_id=job_id,
            delivery_id=delivery_id,
            subscription_id=entry.subscription_id,
            head=self._head + job_fields(entry),
            payload=self._shaper.payload(
                delivery_id=delivery_id,
                subscription_name=entry.name,
                include_complete_data=entry.include_complete_data,
            ),
        )
