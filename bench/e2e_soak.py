"""``bench/e2e.py --soak MINUTES``: half of the fan-out 1 capacity offered open loop for that
long on a tenant of its own, the platform's memory and backlog sampled every minute (every
quarter of the soak when it is shorter than four minutes).

At the end: deliveries lost (of an accepted call, never received once the pipeline has
drained), duplicates at the receiver (a webhook-id received more than once), every process's
resident memory at the first sample and at the end (growth %), and the durable consumers'
unfinished messages (pending + unacknowledged) at each sample.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.e2e_cases import WARM_EVENTS, spread
from bench.e2e_load import Case, Load, Receipts, offer, warm_up
from bench.e2e_probe import SERVICE_ROLES, consumer_pending, rss_by_process
from tests.support.platform_stack import Platform

SAMPLE_SECONDS = 60.0
DRAIN_SECONDS = 120.0  # after the last call, for every accepted delivery to arrive


async def every(seconds: float, action: Callable[[], Awaitable[None]]) -> None:
    """``action`` every ``seconds`` (the first after ``seconds``), until cancelled."""
    start = time.monotonic()
    ticks = 0
    while True:
        ticks += 1
        await asyncio.sleep(max(0.0, start + ticks * seconds - time.monotonic()))
        await action()


async def soak(
    stack: Platform,
    receipts: Receipts,
    case: Case,
    load: Load,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    await warm_up(stack, receipts, case, WARM_EVENTS)
    interval = min(SAMPLE_SECONDS, load.seconds / 4)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()

    async def sample() -> None:
        samples.append(
            {
                "at_s": round(time.monotonic() - started, 1),
                "rss_mb": rss_by_process(pids),
                "pending": await consumer_pending(stack.js),
                "outstanding": len(receipts.watching) - receipts.received,
            }
        )

    sampler = asyncio.create_task(every(interval, sample))
    try:
        run = await offer(stack, receipts, case, load, pids)
    finally:
        sampler.cancel()
    await sample()  # the end of the offered load
    complete = await receipts.wait_all(DRAIN_SECONDS)
    got = [(receipts.at[d] - t) * 1e3 for d, t in run.measured.items() if d in receipts.at]
    return {
        "case": case.name,
        "minutes": round(load.seconds / 60, 2),
        "offered_events_per_s": round(load.events_per_s, 1),
        "events_per_call": load.per_call,
        "sample_seconds": round(interval, 1),
        "sent": len(run.expected),
        "received": sum(1 for d in run.expected if d in receipts.at),
        "complete": complete,
        "lost": sum(1 for d in run.expected if d not in receipts.at),
        "duplicates": sum(receipts.repeats.get(d, 0) for d in run.expected),
        "failed_calls": run.failed,
        **(spread(got) if got else {}),
        "cpu_cores": run.cpu[0].until(run.cpu[1]) if len(run.cpu) == 2 else {},
        "rss_mb": rss_growth(samples),
        "rss_growth_pct_max": max_service_growth(rss_growth(samples)),
        "pending": pending_growth(samples, tolerance=round(load.events_per_s)),
        "samples": samples,
    }


def rss_growth(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each process's resident MB at the first sample and at the end, and the growth %."""
    first, end = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    return {
        name: {
            "first": first[name],
            "end": end[name],
            "growth_pct": round((end[name] - first[name]) / first[name] * 100, 1),
        }
        for name in first
        if name in end and first[name] > 0
    }


def max_service_growth(growth: dict[str, dict[str, float]]) -> float | None:
    """The largest RSS growth % among the services' processes (nats-server's is reported,
    not judged: its JetStream caches follow the streams' size)."""
    found = [
        row["growth_pct"] for name, row in growth.items() if name.rsplit("-", 1)[0] in SERVICE_ROLES
    ]
    return max(found) if found else None


def pending_growth(samples: list[dict[str, Any]], tolerance: int) -> dict[str, Any]:
    """Unfinished messages over every durable consumer at each sample; ``grew``: the end is
    above the first sample by more than ``tolerance`` (one second of the offered load: what
    a pipeline keeping up holds in flight at most)."""
    totals = [sum(s["pending"].values()) for s in samples]
    return {
        "totals": totals,
        "first": totals[0],
        "end": totals[-1],
        "growth": totals[-1] - totals[0],
        "tolerance": tolerance,
        "grew": totals[-1] > totals[0] + tolerance,
        "by_consumer_end": samples[-1]["pending"],
    }
