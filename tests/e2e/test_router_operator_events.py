"""The platform's operator events (the Webhook entity) through a real router and nats-server.

Only the platform raises them: PublishEvents refuses them, naming the field, whoever calls;
put straight on EVENTS (as the sender and the subscriptions service do), they are routed
like any event, to every webhook subscribed, but never to the webhook the event is about
(loop rule 1 of issue 15), live or replayed. The stack and DELIVERIES reader are
test_router's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_router import (
    ALPHA,
    REJECTED,
    Jobs,
    Stack,
    bound,
    new_tenant,
    platform,
    replay,
    running_stack,
    trigger,
)
from webhooks.v1 import messages_pb2
from webhooks_catalogue.samples import sample_event
from webhooks_messaging import events_subject


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("operator-events")
    async with running_stack(tmp, {"WEBHOOKS_STORE": "sqlite"}) as running:
        yield running


def operator_event(
    tenant: str, about: str, *, trigger_name: str = "OnDisabled"
) -> messages_pb2.PlatformEvent:
    """An operator event about webhook ``about``, as the platform raises it."""
    now = datetime.now(UTC)
    event = sample_event(
        "Webhook",
        trigger_name,
        tenant=tenant,
        event_id=f"webhook:{about}:disabled:{int(now.timestamp() * 1000)}",
        occurred_at=now,
    )
    data = json.loads(event.data_json)
    data["SubscriptionId"] = about
    event.data_json = json.dumps(data).encode()
    return event


async def test_publish_events_refuses_webhook_events_naming_the_field(stack: Stack) -> None:
    refused = operator_event(ALPHA, "3f6c2b1e-8d4a-4f7e-9b2c-5a1d0e7f9c34")
    for metadata in (platform(ALPHA), bound(ALPHA)):
        (result,) = await stack.publish([refused], metadata)
        assert (result.event_id, result.status, result.field) == (
            refused.event_id,
            REJECTED,
            "entity",
        )
        assert result.reason == "Webhook events are raised by the platform itself"
    # Nothing of it was stored: the subject holds no message.
    info = await stack.js.stream_info("EVENTS", subjects_filter=f"events.{ALPHA}.Webhook.>")
    assert not info.state.subjects


async def test_an_operator_event_reaches_its_subscribers_but_never_the_webhook_it_is_about(
    stack: Stack,
) -> None:
    tenant = new_tenant("operator")
    # Both listen to OnDisabled: `failing` is the webhook the event is about.
    failing = await stack.create(tenant, "Webhook", trigger("OnDisabled"))
    watcher = await stack.create(tenant, "Webhook", trigger("OnDisabled"))
    other_trigger = await stack.create(tenant, "Webhook", trigger("OnRecovered"))
    started = datetime.now(UTC) - timedelta(seconds=1)
    event = operator_event(tenant, failing.id)
    async with Jobs(stack.js, tenant) as jobs:
        await stack.js.publish(
            events_subject(tenant, "Webhook", "OnDisabled"),
            event.SerializeToString(),
            stream="EVENTS",
            headers={"Nats-Msg-Id": event.event_id},
        )
        routed = await jobs.collect(1)
        assert [j.job.job_id for j in routed] == [f"{event.event_id}:{watcher.id}"]
        (job,) = routed
        assert (job.job.entity, job.job.trigger) == ("Webhook", "OnDisabled")
        payload = json.loads(job.job.payload_json)["Event"]
        assert payload["Subscription"] == "Webhook"
        assert payload["Webhook"]["SubscriptionId"] == failing.id
        assert payload["Webhook"]["State"] == "disabled"
        await stack.router_idle()

        # Replayed, the same rule: the webhook it is about matches nothing.
        until = datetime.now(UTC) + timedelta(seconds=1)
        for subscription, matched in ((failing, 0), (watcher, 1), (other_trigger, 0)):
            progress = await replay(
                stack, platform(tenant), subscription.id, started, until, dry_run=True
            )
            assert progress[-1].done
            assert progress[-1].matched_events == matched, subscription.name
        assert await jobs.collect(0) == []
