"""The tenant-burst scenario, against a running platform (``platform_stack``): a quiet
tenant publishes at a steady rate, alone and then while a noisy tenant's burst drains.

Each tenant has one subscription on a receiver process of its own (``ReceiptLog``), so a
receiver busy with the burst does not delay the quiet tenant's receipts. Latency is
publish→receipt: from just before the quiet tenant's PublishEvents call to the receiver's
clock when the delivery arrived (the same machine's wall clock). The burst's drain time is
from its first PublishEvents call to its last delivery's arrival. Used by the end-to-end
test (tests/e2e/test_tenant_fairness.py) and the benchmark (bench/fairness.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.platform_stack import Platform, new_tenant, platform_event, rest
from tests.support.receipt_log import ReceiptLog
from webhooks.v1 import messages_pb2, subscriptions_pb2
from webhooks_messaging.jobs import delivery_id_for, routed_job_id

ENTITY, TRIGGER = "Object", "OnNew"
PUBLISH_BATCH = 1000  # the router's default most events per call
PUBLISHERS = 2  # the burst's concurrent PublishEvents calls


@dataclass
class Party:
    tenant: str
    subscription: subscriptions_pb2.Subscription
    receiver: ReceiptLog

    def event(self) -> tuple[messages_pb2.PlatformEvent, str]:
        """A new event of this tenant, and the delivery id its subscription's job gets."""
        event = platform_event(self.tenant, ENTITY, TRIGGER)
        return event, delivery_id_for(routed_job_id(event.event_id, self.subscription.id))


@dataclass
class BurstResult:
    quiet_alone: list[float]  # the quiet tenant's latencies (s) without the burst
    quiet_during: list[float]  # ... while the burst drained
    drain_seconds: float
    burst: int


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.asynccontextmanager
async def party(stack: Platform, directory: Path, name: str) -> AsyncIterator[Party]:
    async with ReceiptLog.run(stack.pki, directory / f"{name}.log") as receiver:
        tenant = new_tenant(name)
        created = await stack.create_subscription(tenant, rest(name, receiver.url(f"/{name}")))
        yield Party(tenant, created.subscription, receiver)


async def steady(
    stack: Platform, quiet: Party, rate: float, until: asyncio.Event, sent: dict[str, float]
) -> None:
    """Publishes ``rate`` events per second, one per call, until ``until`` is set; the time
    before each call by delivery id in ``sent``."""
    start = time.monotonic()
    number = 0
    while not until.is_set():
        event, delivery = quiet.event()
        sent[delivery] = time.time()
        await stack.publish([event])
        number += 1
        delay = start + number / rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), delay)


async def latencies(quiet: Party, sent: dict[str, float], within: float) -> list[float]:
    """Each delivery's publish→receipt, once all have arrived."""
    quiet.receiver.poll()
    deadline = time.monotonic() + within
    while any(d not in quiet.receiver.at for d in sent):
        if time.monotonic() > deadline:
            missing = sum(1 for d in sent if d not in quiet.receiver.at)
            raise AssertionError(f"{missing} of the quiet tenant's deliveries missing")
        await asyncio.sleep(0.05)
        quiet.receiver.poll()
    return [quiet.receiver.at[d] - at for d, at in sent.items()]


async def quiet_alone(stack: Platform, quiet: Party, rate: float, seconds: float) -> list[float]:
    sent: dict[str, float] = {}
    until = asyncio.Event()
    ticker = asyncio.create_task(steady(stack, quiet, rate, until, sent))
    await asyncio.sleep(seconds)
    until.set()
    await ticker
    return await latencies(quiet, sent, within=60)


async def burst(stack: Platform, noisy: Party, count: int) -> tuple[float, float]:
    """Publishes ``count`` events of the noisy tenant as fast as the router takes them;
    (when it began, when the last delivery arrived), wall clock."""
    events = [noisy.event()[0] for _ in range(count)]
    batches = [events[i : i + PUBLISH_BATCH] for i in range(0, count, PUBLISH_BATCH)]
    before = len(noisy.receiver.at)

    async def publisher(mine: list[list[messages_pb2.PlatformEvent]]) -> None:
        for batch in mine:
            await stack.publish(batch, batch=PUBLISH_BATCH)

    began = time.time()
    await asyncio.gather(*(publisher(batches[i::PUBLISHERS]) for i in range(PUBLISHERS)))
    await noisy.receiver.wait(before + count, within=max(300.0, count / 20))
    return began, max(noisy.receiver.at.values())


async def tenant_burst(
    stack: Platform,
    directory: Path,
    *,
    count: int = 20_000,
    rate: float = 50.0,
    alone_seconds: float = 5.0,
) -> BurstResult:
    """The scenario: the quiet tenant alone for ``alone_seconds``, then during the burst."""
    async with party(stack, directory, "noisy") as noisy, party(stack, directory, "quiet") as quiet:
        for one in (noisy, quiet):  # warm: connections made, subscriptions known
            await stack.publish([one.event()[0]])
            await one.receiver.wait(1, within=60)
        alone = await quiet_alone(stack, quiet, rate, alone_seconds)
        sent: dict[str, float] = {}
        until = asyncio.Event()
        ticker = asyncio.create_task(steady(stack, quiet, rate, until, sent))
        try:
            began, drained = await burst(stack, noisy, count)
        finally:
            until.set()
            await ticker
        during = {d: at for d, at in sent.items() if began <= at <= drained}
        return BurstResult(alone, await latencies(quiet, during, 120), drained - began, count)
