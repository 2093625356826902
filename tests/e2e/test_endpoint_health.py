"""Endpoint health in the delivery path, as real processes (``tests.support.sender_stack``:
a nats-server, the subscriptions service and one sender; HTTPS receivers under a test CA):
the circuit breaker, a throttle's Retry-After, a webhook's rate limit and a 410's disable.

The breaker is made small by the environment (opens after 4 attempts, all failed; a 4 s
cool-down), as an operator would set it. What is asserted comes from outside the sender:
what the receivers got and when, what ATTEMPTS holds, and the health records in the
WEBHOOK_HEALTH bucket, read with a ``webhooks_health.HealthStore`` of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.sender_stack import (
    FAILED,
    FC,
    SUCCEEDED,
    Stack,
    new_tenant,
    rest,
    running_stack,
)
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2
from webhooks_health import HealthStore

HS = common_pb2.HealthState
MIN_REQUESTS = 4
COOLDOWN_SECONDS = 4
RECOVERED_BEFORE_SECONDS = 1.0  # the breaker test's endpoint is back this long before
# Attempts admitted just before the circuit opened may still start just after it (waiting
# for a slot of their endpoint): none may start later than this after the opening.
ADMITTED_BEFORE_SECONDS = 1.0


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path_factory.mktemp("health"),
        WEBHOOKS_SENDER_TIMEOUT_MS="2000",
        WEBHOOKS_HEALTH_BREAKER_MIN_REQUESTS=str(MIN_REQUESTS),
        WEBHOOKS_HEALTH_BREAKER_COOLDOWN_SECONDS=str(COOLDOWN_SECONDS),
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def health(stack: Stack) -> AsyncIterator[HealthStore]:
    """The health records as every sender sees them: a watched copy of WEBHOOK_HEALTH."""
    store = await HealthStore.open(stack.js, replicas=1)
    stop = asyncio.Event()
    watching = asyncio.create_task(store.run(stop))
    await asyncio.wait_for(store.ready.wait(), 20)
    yield store
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(watching, 5)


@pytest.fixture
async def receiver(stack: Stack) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


async def record_of(
    health: HealthStore,
    subscription_id: str,
    state: int | None,
    timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for a condition
) -> messages_pb2.EndpointHealth | None:
    """The webhook's record once it is in ``state`` (None: no record, healthy)."""

    async def probe() -> messages_pb2.EndpointHealth | None:
        return health.cached(subscription_id)

    def done(record: messages_pb2.EndpointHealth | None) -> bool:
        if state is None:
            return record is None
        return record is not None and record.health.state == state

    shown = "no record" if state is None else HS.Name(state)
    return await eventually(probe, done, timeout, what=f"{subscription_id}: {shown}")


def seconds(stamp: Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


async def create(
    stack: Stack, tenant: str, spec: subscriptions_pb2.SubscriptionSpec
) -> subscriptions_pb2.Subscription:
    return (await stack.create(tenant, spec)).subscription


async def test_the_breaker_opens_its_jobs_wait_unspent_and_one_probe_closes_it(
    stack: Stack, receiver: HttpsReceiver, health: HealthStore
) -> None:
    """8 jobs to an endpoint answering 500, one retry each (1 s apart): the circuit opens
    after 4 failures and stays open for the cool-down (4 s), the endpoint failing until 1 s
    before its end. No attempt is made meanwhile: without the breaker the jobs' retries
    (due 1-2 s after their first attempts) would have failed too and they would have failed
    for good. Then one probe goes alone, closes the circuit, and every job is delivered,
    its attempt numbers unskipped: failed at 1 and delivered at 2, or (held back before its
    first attempt) delivered at 1."""
    tenant = new_tenant("breaker")
    attempts = await stack.attempts(tenant)
    failing = True

    def answer(_: Received) -> Reply:
        return Reply(500) if failing else Reply(204)

    receiver.reply("/breaker", answer)
    spec = rest("breaker", receiver.url("/breaker"), retries=1, interval=1)
    subscription = await create(stack, tenant, spec)
    jobs = [await stack.send(subscription) for _ in range(8)]

    record = await record_of(health, subscription.id, HS.HEALTH_STATE_CIRCUIT_OPEN)
    assert record is not None
    opened_at, until = seconds(record.circuit_opened_at), seconds(record.health.until)
    assert until - opened_at == pytest.approx(COOLDOWN_SECONDS, abs=0.01)
    assert "attempts failed in" in record.health.reason
    # The endpoint recovers a second before the cool-down ends: the probe finds it back.
    await asyncio.sleep(max(0.0, until - RECOVERED_BEFORE_SECONDS - time.time()))
    failing = False

    ids = {job.delivery_id for job in jobs}
    await attempts.wait(lambda: attempts.succeeded() >= ids, timeout=60, what="8 delivered")
    await record_of(health, subscription.id, None, timeout=20)  # closed: no record

    records = sorted(attempts.records, key=lambda r: seconds(r.started_at))
    later = [r for r in records if seconds(r.started_at) > opened_at + ADMITTED_BEFORE_SECONDS]
    # Nothing while open: the first attempt after the opening is the probe, after the
    # cool-down, and it went alone (nothing else started before it had been answered).
    probe, *rest_of_them = later
    assert seconds(probe.started_at) >= until
    assert probe.outcome == SUCCEEDED
    probe_done = seconds(probe.started_at) + probe.duration_ms / 1000
    assert all(seconds(r.started_at) >= probe_done for r in rest_of_them)
    # Retries unspent while waiting.
    failed_first = 0
    for job in jobs:
        made = [(r.attempt, r.outcome) for r in attempts.of(job.delivery_id)]
        assert made in ([(1, FAILED), (2, SUCCEEDED)], [(1, SUCCEEDED)]), made
        failed_first += made[0] == (1, FAILED)
    assert failed_first >= MIN_REQUESTS


async def test_a_429_with_retry_after_holds_the_webhook_back_that_long(
    stack: Stack, receiver: HttpsReceiver, health: HealthStore
) -> None:
    """The endpoint answers its first request 429 with Retry-After: 5, then 204: the
    retry of that delivery and the subscription's other jobs (published once the throttle
    is recorded) all arrive no sooner than 5 s after the 429."""
    tenant = new_tenant("throttle")
    answered = 0

    def answer(_: Received) -> Reply:
        nonlocal answered
        answered += 1
        return Reply(429, headers={"Retry-After": "5"}) if answered == 1 else Reply(204)

    receiver.reply("/throttle", answer)
    subscription = await create(
        stack, tenant, rest("throttle", receiver.url("/throttle"), retries=2, interval=1)
    )
    await stack.send(subscription)
    await receiver.wait_for(1, "/throttle", timeout=20)
    throttled_at = receiver.at("/throttle")[0].at

    await record_of(health, subscription.id, HS.HEALTH_STATE_THROTTLED, timeout=20)
    for _ in range(3):
        await stack.send(subscription)

    await receiver.wait_for(5, "/throttle", timeout=40)
    after = receiver.at("/throttle")[1:]
    early = [r.at - throttled_at for r in after if r.at < throttled_at + 5.0]
    assert not early, f"requests {early} s after the 429"


async def test_a_rate_limit_of_5_per_second_spreads_a_burst_of_50_over_10_seconds(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("rate")
    spec = rest("rate", receiver.url("/rate"))
    spec.webhook.rate_limit_per_second = 5
    subscription = await create(stack, tenant, spec)
    attempts = await stack.attempts(tenant)
    jobs = [stack.job(subscription) for _ in range(50)]
    await asyncio.gather(*(stack.publish(job) for job in jobs))

    await receiver.wait_for(50, "/rate", timeout=60)
    arrivals = sorted(r.at for r in receiver.at("/rate"))
    assert arrivals[-1] - arrivals[0] >= 8.5, arrivals
    busiest = max(sum(1 for t in arrivals if s <= t < s + 1.0) for s in arrivals)
    assert busiest <= 7, arrivals
    # Held back, not failed: one attempt each, all succeeded.
    ids = {job.delivery_id for job in jobs}
    await attempts.wait(lambda: attempts.succeeded() >= ids, timeout=20, what="50 recorded")
    assert all(r.outcome == SUCCEEDED and r.attempt == 1 for r in attempts.records)


async def test_a_410_disables_the_webhook_and_nothing_more_is_sent_to_it(
    stack: Stack, receiver: HttpsReceiver, health: HealthStore
) -> None:
    """A 410 Gone: the record is DISABLED with the reason, the attempt is not retried, and
    the subscription's later jobs are not sent (they wait, or end as the subscription
    gone once the subscriptions service has deactivated it)."""
    tenant = new_tenant("gone")
    attempts = await stack.attempts(tenant)
    receiver.reply("/gone", Reply(410))
    subscription = await create(
        stack, tenant, rest("gone", receiver.url("/gone"), retries=3, interval=1)
    )
    first = await stack.send(subscription)

    record = await record_of(health, subscription.id, HS.HEALTH_STATE_DISABLED, timeout=20)
    assert record is not None
    assert record.health.reason == "the endpoint answered 410 Gone"
    assert record.HasField("disabled_at")
    made = attempts.of(first.delivery_id)
    assert [(r.attempt, r.status_code, r.will_retry) for r in made] == [(1, 410, False)]

    later = [await stack.send(subscription) for _ in range(3)]
    # Each later job is taken, put back for a cool-down (spread over one more) and taken
    # again in this span: no second request may arrive in it.
    with pytest.raises(TimeoutError):
        await receiver.wait_for(2, "/gone", timeout=2 * COOLDOWN_SECONDS + 3)
    for job in later:
        for r in attempts.of(job.delivery_id):
            assert r.failure_class == FC.FAILURE_CLASS_SUBSCRIPTION_GONE, r
