"""Delivery jobs: their ids and the one constructor every maker of a job uses (pure).

A job's id is its ``Nats-Msg-Id`` on DELIVERIES and its delivery id the ``webhook-id``
receivers deduplicate on; both are stored (ATTEMPTS, the failures view), so each form below
is kept exactly as it was first written. They differ on purpose:

- a routed job (``<event id>:<subscription id>``) has a delivery id derived from its job id,
  so routing the same event again after a crash adds nothing and keeps the ``webhook-id``;
- a replayed job (``replay:<replay id>:<event id>:<subscription id>``) is a new delivery on
  purpose: it gets a fresh delivery id, and its job id cannot meet the routed one's;
- a test event (``SendTestEvent``) is never on DELIVERIES: its event id is ``test-<uuid4>``
  and its delivery id fresh, its job id in the routed form;
- a manual redelivery (``<event id>:<subscription id>:manual:<series>``) keeps the failed
  delivery's id (the failures view follows it) and is one message per series.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1 import messages_pb2
from webhooks_catalogue.shaping import shape_payload

DELIVERY_NAMESPACE = uuid.UUID("6f1c1d52-5a4b-4f7e-9a0e-7f3b7c1de0a1")
_NAMESPACE_BYTES = DELIVERY_NAMESPACE.bytes


def routed_job_id(event_id: str, subscription_id: str) -> str:
    return f"{event_id}:{subscription_id}"


def replay_job_id(replay_id: str, event_id: str, subscription_id: str) -> str:
    return f"replay:{replay_id}:{event_id}:{subscription_id}"


def redelivery_job_id(event_id: str, subscription_id: str, series: int) -> str:
    return f"{event_id}:{subscription_id}:manual:{series}"


def new_test_event_id() -> str:
    return f"test-{uuid.uuid4()}"


def delivery_id_for(job_id: str) -> str:
    """A routed job's delivery id: ``str(uuid.uuid5(DELIVERY_NAMESPACE, job_id))``,
    without building a UUID object (the router makes one per job)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + job_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_delivery_id() -> str:
    """A delivery id of its own (a replay, a test event)."""
    return str(uuid.uuid4())


def delivery_job(
    *,
    job_id: str,
    delivery_id: str,
    event_id: str,
    tenant: str,
    subscription_id: str,
    subscription_version: int,
    subscription_name: str,
    entity: str,
    trigger: str,
    payload_json: bytes,
    occurred_at: Timestamp | datetime | None,
    channel: int | None = None,
    subchannel: str = "",
    replay: bool = False,
    manual: bool = False,
    series: int = 0,
    trace_context: Mapping[str, str] | None = None,
) -> messages_pb2.DeliveryJob:
    """A job's first attempt (of its series): ``channel`` and ``occurred_at`` stay unset
    when None."""
    job = messages_pb2.DeliveryJob(
        job_id=job_id,
        delivery_id=delivery_id,
        event_id=event_id,
        tenant=tenant,
        subscription_id=subscription_id,
        subscription_version=subscription_version,
        subscription_name=subscription_name,
        entity=entity,
        trigger=trigger,
        subchannel=subchannel,
        payload_json=payload_json,
        attempt=1,
        replay=replay,
        manual=manual,
        series=series,
        trace_context=trace_context,
    )
    if channel is not None:
        job.channel = channel
    if isinstance(occurred_at, Timestamp):
        job.occurred_at.CopyFrom(occurred_at)
    elif occurred_at is not None:
        job.occurred_at.FromDatetime(occurred_at)
    return job


class Subscribed(Protocol):
    """What a job takes of its subscription (a ``SubscriptionState`` or a ``Subscription``)."""

    @property
    def id(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def entity(self) -> str: ...


def subscription_job(
    subscription: Subscribed,
    *,
    event_id: str,
    delivery_id: str,
    trigger: str,
    data: Mapping[str, Any],
    occurred_at: datetime,
    include_complete_data: bool,
    channel: int | None = None,
    subchannel: str = "",
) -> messages_pb2.DeliveryJob:
    """A routed-form job of one event made up for ``subscription`` (not from EVENTS: a test
    event, a test's job), its payload shaped as the router shapes it."""
    return delivery_job(
        job_id=routed_job_id(event_id, subscription.id),
        delivery_id=delivery_id,
        event_id=event_id,
        tenant=subscription.tenant,
        subscription_id=subscription.id,
        subscription_version=subscription.version,
        subscription_name=subscription.name,
        entity=subscription.entity,
        trigger=trigger,
        channel=channel,
        subchannel=subchannel,
        payload_json=shape_payload(
            entity=subscription.entity,
            trigger=trigger,
            tenant=subscription.tenant,
            event_id=event_id,
            delivery_id=delivery_id,
            subscription_name=subscription.name,
            occurred_at=occurred_at,
            data=data,
            include_complete_data=include_complete_data,
        ),
        occurred_at=occurred_at,
    )
