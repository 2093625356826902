"""Delivery job ids: each form is stored and deduplicated on, so each is pinned here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from webhooks.v1 import messages_pb2
from webhooks_messaging.jobs import (
    DELIVERY_NAMESPACE,
    delivery_id_for,
    delivery_job,
    new_test_event_id,
    redelivery_job_id,
    replay_job_id,
    routed_job_id,
    subscription_job,
)


def test_the_id_forms() -> None:
    assert routed_job_id("ev-1", "sub-1") == "ev-1:sub-1"
    assert replay_job_id("r-1", "ev-1", "sub-1") == "replay:r-1:ev-1:sub-1"
    assert redelivery_job_id("ev-1", "sub-1", 3) == "ev-1:sub-1:manual:3"
    assert new_test_event_id().startswith("test-")
    assert delivery_id_for("ev-1:sub-1") == str(uuid.uuid5(DELIVERY_NAMESPACE, "ev-1:sub-1"))


def test_unset_channel_and_time_stay_unset() -> None:
    fields = dict(
        job_id="e:s",
        delivery_id="d",
        event_id="e",
        tenant="acme",
        subscription_id="s",
        subscription_version=1,
        subscription_name="n",
        entity="Object",
        trigger="OnNew",
        payload_json=b"{}",
    )
    bare = delivery_job(**fields, occurred_at=None)  # type: ignore[arg-type]
    assert not bare.HasField("channel") and not bare.HasField("occurred_at")
    assert bare.attempt == 1
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamped = delivery_job(**fields, occurred_at=at, channel=0)  # type: ignore[arg-type]
    assert stamped.HasField("channel") and stamped.channel == 0
    assert stamped.occurred_at.ToDatetime(UTC) == at


def test_a_subscription_job_is_in_the_routed_form() -> None:
    state = messages_pb2.SubscriptionState(
        id="sub-1", tenant="acme", version=4, name="CRM", entity="Object"
    )
    job = subscription_job(
        state,
        event_id="ev-1",
        delivery_id="d-1",
        trigger="OnNew",
        data={},
        occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
        include_complete_data=False,
    )
    assert (job.job_id, job.delivery_id, job.subscription_version) == ("ev-1:sub-1", "d-1", 4)
    assert b'"d-1"' in job.payload_json
