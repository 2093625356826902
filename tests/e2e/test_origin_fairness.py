"""Fairness between subscriptions that share an origin, against a real sender process and a
real HTTPS receiver: one subscription whose endpoint answers in 10 s, with a backlog, must
not hold up another subscription (of another tenant) on the same host:port
(webhooks_sender.endpoint_slots: each subscription holds at most its share of the origin's
slots and waiting room).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from pathlib import Path

from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.sender_stack import new_tenant, rest, running_stack

SLOW_SECONDS = 10.0
SLOW_JOBS, HEALTHY_JOBS = 200, 1000
RATE = 200.0  # healthy jobs published per second
P99_LIMIT = 3.0  # seconds; far below SLOW_SECONDS (before the shares: about 30 s)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def test_a_slow_subscription_does_not_hold_up_another_on_the_same_origin(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()  # lets the slow handlers go at the end of the test
    in_flight = 0

    async def ten_seconds(request: Received) -> Reply:
        nonlocal in_flight
        in_flight += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), SLOW_SECONDS)
            return Reply(200)
        finally:
            in_flight -= 1

    async with (
        running_stack(tmp_path, WEBHOOKS_SENDER_TIMEOUT_MS="15000") as stack,
        HttpsReceiver(stack.pki) as receiver,
    ):
        try:
            receiver.reply("/slow", ten_seconds)
            receiver.reply("/ok", Reply(204))
            slow_tenant, healthy_tenant = new_tenant("slow"), new_tenant("quiet")
            slow = (
                await stack.create(slow_tenant, rest("slow", receiver.url("/slow")))
            ).subscription
            healthy = (
                await stack.create(healthy_tenant, rest("ok", receiver.url("/ok")))
            ).subscription

            # Not measured: the connection to the origin is made first.
            await stack.send(healthy)
            await receiver.wait_for(1, "/ok", timeout=20)

            slow_jobs = [stack.job(slow) for _ in range(SLOW_JOBS)]
            for start in range(0, SLOW_JOBS, 50):
                await asyncio.gather(*(stack.publish(job) for job in slow_jobs[start : start + 50]))
            deadline = time.monotonic() + 30
            while in_flight < 32:  # the slow subscription holds its share of the slots
                assert time.monotonic() < deadline, f"{in_flight} slow requests in flight"
                await asyncio.sleep(0.05)

            published_at: dict[str, float] = {}
            started = time.monotonic()
            for n in range(HEALTHY_JOBS):
                job = stack.job(healthy)
                await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
                published_at[job.delivery_id] = time.time()
                await stack.publish(job)
            await receiver.wait_for(1 + HEALTHY_JOBS, "/ok", timeout=120)

            latencies = [
                r.at - published_at[r.headers["webhook-id"]]
                for r in receiver.at("/ok")
                if r.headers["webhook-id"] in published_at
            ]
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            print(
                f"\nquiet subscription next to a {SLOW_SECONDS:.0f} s one on the same origin: "
                f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
            )
            assert len(latencies) == HEALTHY_JOBS
            assert p99 < P99_LIMIT, f"p99 {p99:.1f} s"
        finally:
            release.set()
