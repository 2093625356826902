"""Delivery jobs: the routing fast path builds exactly the jobs ``build_job`` describes."""

from __future__ import annotations

import json
import uuid

import pytest

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue.samples import sample_event
from webhooks_messaging.jobs import DELIVERY_NAMESPACE, delivery_id_for
from webhooks_router.jobs import EventJobs, build_job, shaper_for, trace_fields
from webhooks_router.routes import RouteEntry
from webhooks_router.validation import validate_event

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def entry(*, complete: bool = False, name: str = 'CRM sync ✓ "quoted"') -> RouteEntry:
    state = messages_pb2.SubscriptionState(
        id=str(uuid.uuid4()),
        tenant="acme",
        name=name,
        entity="Object",
        triggers=[common_pb2.TriggerSpec(trigger="OnNewActivity")],
        include_complete_data=complete,
        active=True,
        version=7,
    )
    return RouteEntry.from_state(state)


@pytest.mark.parametrize(
    "job_id", ["evt-1:sub-1", "a" * 128 + ":" + str(uuid.uuid4()), "!~:x", "é:1"]
)
def test_delivery_ids_are_uuid5_of_the_job_id(job_id: str) -> None:
    assert delivery_id_for(job_id) == str(uuid.uuid5(DELIVERY_NAMESPACE, job_id))


@pytest.mark.parametrize("channel", [None, 0, 4])
@pytest.mark.parametrize("subchannel", ["", "line 2"])
@pytest.mark.parametrize("complete", [False, True])
@pytest.mark.parametrize("cached_fields", [True, False])
def test_the_fast_path_serializes_the_job_build_job_makes(
    channel: int | None, subchannel: str, complete: bool, cached_fields: bool
) -> None:
    event = sample_event("Object", "OnNewActivity")
    event.ClearField("channel")
    if channel is not None:
        event.channel = channel
    event.subchannel = subchannel
    event.occurred_at.FromNanoseconds(1_714_556_140_123_456_789)
    data = validate_event(event, now=1_714_556_140)
    route = entry(complete=complete)
    if not cached_fields:
        route = RouteEntry(
            subscription_id=route.subscription_id,
            tenant=route.tenant,
            name=route.name,
            version=route.version,
            entity=route.entity,
            triggers=route.triggers,
            include_complete_data=route.include_complete_data,
        )
    expected = build_job(route, event, shaper_for(event, data))
    expected.job.trace_context.update(TRACE)
    routed = EventJobs(event, data).job(route)
    assert routed.subject == expected.subject
    assert routed.job_id == expected.msg_id == f"{event.event_id}:{route.subscription_id}"
    assert routed.delivery_id == expected.job.delivery_id
    assert routed.subscription_id == route.subscription_id
    job = messages_pb2.DeliveryJob.FromString(routed.serialize(trace_fields(TRACE)))
    assert job == expected.job
    assert job.HasField("channel") == (channel is not None)
    assert json.loads(job.payload_json)["Event"]["OccurredAt"] == "2024-05-01T09:35:40.123Z"
