"""Delivery jobs: one per (event, matching subscription), with ids derived from what it is.

The job id ``<event id>:<subscription id>`` is the job's ``Nats-Msg-Id``, so routing the
same event again after a crash adds nothing to DELIVERIES. Its delivery id is derived from
the job id too, so a re-routed job keeps the ``webhook-id`` receivers deduplicate on. A
replay is a new delivery on purpose: it gets fresh ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from webhooks.v1 import messages_pb2
from webhooks_catalogue.shaping import EventShaper
from webhooks_messaging import delivery_job_subject
from webhooks_router.routes import RouteEntry

DELIVERY_NAMESPACE = uuid.UUID("6f1c1d52-5a4b-4f7e-9a0e-7f3b7c1de0a1")


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
) -> OutgoingJob:
    if replay_id:
        job_id = f"replay:{replay_id}:{event.event_id}:{entry.subscription_id}"
        delivery_id = str(uuid.uuid4())
    else:
        job_id = f"{event.event_id}:{entry.subscription_id}"
        delivery_id = str(uuid.uuid5(DELIVERY_NAMESPACE, job_id))
    job = messages_pb2.DeliveryJob(
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
        payload_json=shaper.payload(
            delivery_id=delivery_id,
            subscription_name=entry.name,
            include_complete_data=entry.include_complete_data,
        ),
        attempt=1,
        replay=bool(replay_id),
    )
    if event.HasField("channel"):
        job.channel = event.channel
    return OutgoingJob(subject=delivery_job_subject(event.tenant, entry.subscription_id), job=job)


def shaper_for(event: messages_pb2.PlatformEvent, data: dict[str, Any]) -> EventShaper:
    """Shapes the parts of the payload every subscription of one event shares once."""
    return EventShaper(
        entity=event.entity,
        trigger=event.trigger,
        tenant=event.tenant,
        event_id=event.event_id,
        occurred_at=event.occurred_at.ToDatetime(),
        data=data,
    )
