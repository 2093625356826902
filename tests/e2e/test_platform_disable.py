"""A webhook disabled by the platform, end to end (issue 15): its endpoint answers
``410 Gone`` (Standard Webhooks: the receiver wants no more), the sender marks it DISABLED
in WEBHOOK_HEALTH, the subscriptions service deactivates it with a history entry of its own
("DisabledByPlatform", actor "platform"), nothing more is delivered to it, and one call
(SetSubscriptionActive) re-enables it: healthy again, delivering again.

The whole platform runs as processes (``tests.support.platform_stack``); the cool-down a
disabled webhook's jobs wait is one second, so a job that reaches a sender before the
deactivation does is settled quickly; a webhook failing for 2 seconds (and 3 attempts) is
disabled too, and announced (OnDisabled) to the tenant's operator webhook.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from google.protobuf.json_format import MessageToDict

from tests.support.operator_events import (
    ON_DISABLED,
    of,
    operator_spec,
    received_operator_events,
    settled,
)
from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Platform,
    new_tenant,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2

GONE_REASON = "the endpoint answered 410 Gone"
DISABLE_AFTER_SECONDS = 2
DISABLE_MIN_ATTEMPTS = 3
HEALTH_ENV = {
    "WEBHOOKS_HEALTH_BREAKER_COOLDOWN_SECONDS": "1",
    "WEBHOOKS_HEALTH_DISABLE_AFTER_SECONDS": str(DISABLE_AFTER_SECONDS),
    "WEBHOOKS_HEALTH_DISABLE_MIN_ATTEMPTS": str(DISABLE_MIN_ATTEMPTS),
}
DISABLED = common_pb2.HEALTH_STATE_DISABLED
HEALTHY = common_pb2.HEALTH_STATE_HEALTHY
SUCCEEDED = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
GONE = messages_pb2.FAILURE_CLASS_SUBSCRIPTION_GONE


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    tmp = tmp_path_factory.mktemp("platform-disable")
    async with running_platform(tmp, failures=False, env=HEALTH_ENV) as running:
        yield running


@pytest.fixture
async def receiver(stack: Platform) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


async def get(stack: Platform, tenant: str, subscription_id: str) -> subscriptions_pb2.Subscription:
    got: subscriptions_pb2.Subscription = await stack.subs.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=subscription_id),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    return got


async def history(
    stack: Platform, tenant: str, subscription_id: str
) -> list[subscriptions_pb2.SubscriptionHistoryEntry]:
    got = await stack.subs.GetSubscriptionHistory(
        subscriptions_pb2.GetSubscriptionHistoryRequest(id=subscription_id),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    return list(got.entries)


async def publish_one(stack: Platform, tenant: str) -> str:
    event = platform_event(tenant, "Object", "OnNew")
    await stack.publish([event])
    return event.event_id


def delivered_event_ids(receiver: HttpsReceiver, path: str) -> list[str]:
    return [json.loads(r.body)["Event"]["EventId"] for r in receiver.at(path)]


async def test_a_410_disables_the_webhook_until_it_is_re_enabled(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("gone")
    attempts = await stack.attempts(tenant)
    receiver.reply("/gone", Reply(410, b"this hook was removed"))
    created = await stack.create_subscription(
        tenant, rest("retired hook", receiver.url("/gone"), retries=3)
    )
    webhook = created.subscription

    first = await publish_one(stack, tenant)
    await receiver.wait_for(1, "/gone", timeout=60)
    disabled = await eventually(
        lambda: get(stack, tenant, webhook.id),
        lambda s: not s.active and s.health.state == DISABLED,
        timeout=60,
        what="the webhook disabled by the platform",
    )
    assert disabled.health.reason == GONE_REASON, disabled.health
    entries = await history(stack, tenant, webhook.id)
    last = entries[-1]
    assert (last.event_type, last.actor) == ("DisabledByPlatform", "platform"), last
    assert MessageToDict(last.changes) == {"reason": GONE_REASON}
    assert last.version == disabled.version

    # Disabled: the routers and senders learn it from SUBSCRIPTIONS; what is published
    # now reaches the endpoint no more (not routed, or settled as gone).
    await stack.on_stream(disabled)
    later = {await publish_one(stack, tenant) for _ in range(3)}
    await stack.wait_idle(within=60, scheduled=True)
    assert delivered_event_ids(receiver, "/gone") == [first]
    for record in (r for r in attempts.records if r.event_id in later):
        assert record.failure_class == GONE, record
        assert record.error_message == "subscription deactivated", record
    assert (await get(stack, tenant, webhook.id)).health.reason == GONE_REASON

    # Fixed, then re-enabled with one call: healthy, and new events are delivered.
    receiver.reply("/gone", Reply(200))
    enabled: subscriptions_pb2.Subscription = await stack.subs.SetSubscriptionActive(
        subscriptions_pb2.SetSubscriptionActiveRequest(id=webhook.id, active=True),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    assert enabled.active
    assert (await history(stack, tenant, webhook.id))[-1].event_type == "Activated"
    await eventually(
        lambda: get(stack, tenant, webhook.id),
        lambda s: s.active and s.health.state == HEALTHY,
        timeout=30,
        what="the re-enabled webhook healthy",
    )
    await stack.on_stream(enabled)
    again = await publish_one(stack, tenant)
    await receiver.wait_for(2, "/gone", timeout=60)
    assert delivered_event_ids(receiver, "/gone") == [first, again]
    await attempts.wait(
        lambda: any(r.event_id == again and r.outcome == SUCCEEDED for r in attempts.records),
        what="the delivery after re-enabling recorded as succeeded",
    )
    shown = await get(stack, tenant, webhook.id)
    assert (shown.active, shown.health.state) == (True, HEALTHY), shown.health


async def test_a_webhook_failing_for_the_whole_period_is_disabled_and_announced(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("dead")
    ops = await stack.create_subscription(
        tenant, operator_spec("ops", receiver.url("/ops"), [ON_DISABLED])
    )
    receiver.reply("/dead", Reply(500, b"nobody home"))
    webhook = (
        await stack.create_subscription(
            tenant, rest("dead hook", receiver.url("/dead"), retries=5, interval=1)
        )
    ).subscription

    await publish_one(stack, tenant)
    disabled = await eventually(
        lambda: get(stack, tenant, webhook.id),
        lambda s: not s.active and s.health.state == DISABLED,
        timeout=60,
        what="the failing webhook disabled by the platform",
    )
    reason = disabled.health.reason
    assert reason.startswith(f"every attempt failed for {DISABLE_AFTER_SECONDS} seconds ("), reason
    assert reason.endswith(" attempts)"), reason
    tried = await settled(lambda: len(receiver.at("/dead")), what="attempts to the disabled hook")
    # Disabled on the attempt that met both conditions, well before its retries ran out.
    assert DISABLE_MIN_ATTEMPTS <= tried < 6, tried
    last = (await history(stack, tenant, webhook.id))[-1]
    assert (last.event_type, last.actor) == ("DisabledByPlatform", "platform"), last
    assert MessageToDict(last.changes) == {"reason": reason}

    await receiver.wait_for(1, "/ops", timeout=60)
    await settled(lambda: len(receiver.at("/ops")), what="operator events")
    events = received_operator_events(receiver, "/ops", ops.signing_secret)
    (event,) = of(events, ON_DISABLED, webhook.id)
    assert len(events) == 1
    assert (event.data["State"], event.data["Reason"]) == ("disabled", reason)
    assert event.event_id.startswith(f"webhook:{webhook.id}:disabled:"), event.event_id
