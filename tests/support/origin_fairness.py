"""The shared-origin scenario, against a running sender (``sender_stack``): a quiet
subscription's publish→receipt latency, alone and while another subscription (another
tenant) on the same host:port answers in ``slow_seconds`` with a backlog.

One HTTPS receiver serves both paths: ``/slow`` (held ``slow_seconds``, let go when the
scenario ends) and ``/ok`` (at once). Jobs are put on DELIVERIES as the router would;
latency is from just before the job's publish to the receiver's clock when it arrived.
Used by the end-to-end test (tests/e2e/test_origin_fairness.py) and the benchmark
(bench/fairness.py, scenario ``origin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass

from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.sender_stack import Stack, new_tenant, rest
from webhooks.v1 import subscriptions_pb2

SLOW_IN_FLIGHT = 32  # slow requests in flight before the quiet party is measured


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class OriginResult:
    quiet_alone: list[float]  # seconds, publish→receipt
    quiet_with_slow: list[float]


async def quiet_latencies(
    stack: Stack,
    receiver: HttpsReceiver,
    subscription: subscriptions_pb2.Subscription,
    count: int,
    rate: float,
) -> list[float]:
    """Publishes ``count`` jobs of ``subscription`` at ``rate`` per second; their latencies."""
    already = len(receiver.at("/ok"))
    published_at: dict[str, float] = {}
    started = time.monotonic()
    for n in range(count):
        job = stack.job(subscription)
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        published_at[job.delivery_id] = time.time()
        await stack.publish(job)
    await receiver.wait_for(already + count, "/ok", timeout=120 + count / rate)
    return [
        r.at - published_at[r.headers["webhook-id"]]
        for r in receiver.at("/ok")
        if r.headers["webhook-id"] in published_at
    ]


async def origin_fairness(
    stack: Stack,
    *,
    slow_jobs: int,
    quiet_jobs: int,
    rate: float,
    slow_seconds: float = 10.0,
    alone: bool = True,
) -> OriginResult:
    """The quiet subscription's latencies alone (unless not ``alone``), then while the slow
    subscription's ``slow_jobs`` are in flight or waiting."""
    release = asyncio.Event()  # lets the slow handlers go when the scenario ends
    in_flight = 0

    async def slow(request: Received) -> Reply:
        nonlocal in_flight
        in_flight += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), slow_seconds)
            return Reply(200)
        finally:
            in_flight -= 1

    async with HttpsReceiver(stack.pki) as receiver:
        try:
            receiver.reply("/slow", slow)
            receiver.reply("/ok", Reply(204))
            url = receiver.url
            noisy = await stack.create(new_tenant("slow"), rest("slow", url("/slow")))
            quiet = await stack.create(new_tenant("quiet"), rest("ok", url("/ok")))
            # Not measured: the connection to the origin is made first.
            await stack.send(quiet.subscription)
            await receiver.wait_for(1, "/ok", timeout=20)
            result = OriginResult([], [])
            if alone:
                result.quiet_alone = await quiet_latencies(
                    stack, receiver, quiet.subscription, quiet_jobs, rate
                )
            jobs = [stack.job(noisy.subscription) for _ in range(slow_jobs)]
            for start in range(0, slow_jobs, 50):
                await asyncio.gather(*(stack.publish(job) for job in jobs[start : start + 50]))
            deadline = time.monotonic() + 30
            while in_flight < min(SLOW_IN_FLIGHT, slow_jobs):
                assert time.monotonic() < deadline, f"{in_flight} slow requests in flight"
                await asyncio.sleep(0.05)
            result.quiet_with_slow = await quiet_latencies(
                stack, receiver, quiet.subscription, quiet_jobs, rate
            )
            return result
        finally:
            release.set()
