"""The cases ``bench/e2e.py`` measures on a running platform.

- ``throughput``: as many events as the pipeline takes, at most ``--window`` deliveries
  outstanding; deliveries/s over the middle 80 % of the receipts, and CPU per delivery of
  every process over the same span.
- ``latency``: a ``Load`` offered open loop (``e2e_load.offer``); publish -> receipt
  percentiles and each delivery's time split into stages: ingest (to the event's stored
  time on EVENTS), route (to the router publishing the job, seen by a core subscription
  here), sender (to the attempt's started_at on ATTEMPTS) and https (to the receipt).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg

from bench.e2e_load import Case, Load, OpenLoop, Receipts, offer, publish_call, warm_up
from bench.e2e_probe import Cpu, per_delivery
from bench.router import percentile
from tests.support.platform_stack import Platform
from webhooks.v1 import messages_pb2
from webhooks_messaging.jobs import delivery_id_for

WARM_EVENTS = 100  # before each latency case, through every router and sender connection


async def throughput(
    stack: Platform,
    receipts: Receipts,
    case: Case,
    events_total: int,
    args: argparse.Namespace,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    fanout = len(case.subscriptions)
    await warm_up(stack, receipts, case, min(200, events_total // 10 or 1))
    expected: dict[str, float] = {}
    receipts.watch(expected)
    deliveries = events_total * fanout
    # CPU snapshots when 10 % and 90 % of the deliveries have been received.
    marks: dict[int, Cpu] = {}

    def mark() -> None:
        for share in (10, 90):
            if share not in marks and receipts.received >= deliveries * share // 100:
                marks[share] = Cpu.snapshot(pids)

    receipts.on_poll.append(mark)
    started = time.time()
    try:
        await closed_loop(stack, receipts, case, events_total, expected, args)
        published_s = time.time() - started
        complete = await receipts.wait_all(120)
    finally:
        receipts.on_poll.remove(mark)
    times = sorted(receipts.at[d] for d in expected if d in receipts.at)
    n = len(times)
    lo, hi = n // 10, max(n // 10 + 1, n * 9 // 10 - 1)
    rate = (hi - lo) / max(times[hi] - times[lo], 1e-6)
    cpu = marks[10].until(marks[90]) if 10 in marks and 90 in marks else {}
    return {
        "case": case.name,
        "fanout": fanout,
        "events": events_total,
        "deliveries": deliveries,
        "received": n,
        "complete": complete,
        "deliveries_per_s": round(rate),
        "events_per_s": round(rate / fanout),
        "overall_deliveries_per_s": round(n / max(times[-1] - started, 1e-6)),
        "publish_seconds": round(published_s, 2),
        "window": args.window,
        "cpu_cores": cpu,
        "cpu_us_per_delivery": per_delivery(cpu, rate) if cpu else {},
    }


async def closed_loop(
    stack: Platform,
    receipts: Receipts,
    case: Case,
    events_total: int,
    expected: dict[str, float],
    args: argparse.Namespace,
) -> None:
    """``events_total`` events in calls of ``--batch``, ``--calls`` calls in flight over the
    routers in turn, none sent while ``--window`` deliveries are outstanding."""
    fanout = len(case.subscriptions)
    events = case.events(events_total, "tp")
    chunks = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    next_chunk = 0
    published = 0  # events handed to PublishEvents

    async def publisher() -> None:
        nonlocal next_chunk, published
        while next_chunk < len(chunks):
            chunk = chunks[next_chunk]
            router = next_chunk % len(stack.routers)
            next_chunk += 1
            while published * fanout - receipts.received > args.window:
                await receipts.wait_grown()
            case.stamp(chunk, expected)
            published += len(chunk)
            await publish_call(stack, router, case, chunk)

    await asyncio.gather(*(publisher() for _ in range(args.calls)))


async def latency(
    stack: Platform,
    receipts: Receipts,
    case: Case,
    load: Load,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    """``load`` offered open loop on the case's own tenant (its EVENTS and ATTEMPTS are
    read back for the stages): publish -> receipt percentiles and stages."""
    await warm_up(stack, receipts, case, WARM_EVENTS)
    # When the router sends each job (a core subscription sees it as it is published,
    # before DELIVERIES has stored it): splits the router's part from the sender's.
    jobs_sent: dict[str, float] = {}

    async def on_job(msg: Msg) -> None:
        jobs_sent[(msg.headers or {}).get("Nats-Msg-Id", "")] = time.time()

    # Either lane's jobs (deliveries.jobs. or deliveries.bulk.): beyond its standard rate
    # the tenant's events take the bulk lane (the router's lanes.py).
    tap = await stack.nc.subscribe(
        f"deliveries.*.{case.tenant}.>", cb=on_job, pending_msgs_limit=1 << 20
    )
    run = await offer(stack, receipts, case, load, pids)
    complete = await receipts.wait_all(30)
    await tap.unsubscribe()
    got = [(receipts.at[d] - t) * 1e3 for d, t in run.measured.items() if d in receipts.at]
    if not got:
        raise RuntimeError(f"{case.name}: nothing received")
    job_at = {delivery_id_for(job_id): at for job_id, at in jobs_sent.items()}
    stages = await stage_split(stack, case, run, job_at, receipts)
    return {
        "case": case.name,
        "offered_events_per_s": round(load.events_per_s, 1),
        "events_per_call": load.per_call,
        "seconds": load.seconds,
        "sent": len(run.measured),
        "received": len(got),
        "complete": complete,
        "failed_calls": run.failed,
        **spread(got),
        "publish_call_p50_ms": round(percentile(run.call_ms, 0.5), 1) if run.call_ms else None,
        "publish_call_p99_ms": round(percentile(run.call_ms, 0.99), 1) if run.call_ms else None,
        "cpu_cores": run.cpu[0].until(run.cpu[1]) if len(run.cpu) == 2 else {},
        "stages_ms": {
            name: {
                "p50": round(percentile(values, 0.5), 1),
                "p99": round(percentile(values, 0.99), 1),
            }
            for name, values in stages.items()
            if values
        },
    }


def spread(values_ms: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of latencies in ms."""
    return {
        "p50_ms": round(percentile(values_ms, 0.50), 1),
        "p95_ms": round(percentile(values_ms, 0.95), 1),
        "p99_ms": round(percentile(values_ms, 0.99), 1),
        "max_ms": round(max(values_ms), 1),
    }


async def stage_split(
    stack: Platform,
    case: Case,
    run: OpenLoop,
    job_at: dict[str, float],
    receipts: Receipts,
) -> dict[str, list[float]]:
    """Where each measured delivery's time went: when its event was stored on EVENTS (the
    broker's clock, the same host's), its job sent, its attempt started (the sender's
    record on ATTEMPTS), and received."""
    count = len(run.event_of) + WARM_EVENTS  # the tenant's warm-up is on the streams too
    stored = await stream_times(stack, f"*.{case.tenant}.>", count, msg_id, stream="EVENTS")
    started = await stream_times(stack, f"attempts.{case.tenant}.>", count, attempt_start)
    stages: dict[str, list[float]] = {"ingest": [], "route": [], "sender": [], "https": []}
    for delivery, published in run.measured.items():
        at_event = stored.get(run.event_of[delivery])
        at_job = job_at.get(delivery)
        at_start = started.get(delivery)
        received = receipts.at.get(delivery)
        if at_event is None or at_job is None or at_start is None or received is None:
            continue
        stages["ingest"].append((at_event - published) * 1e3)  # PublishEvents -> EVENTS
        stages["route"].append((at_job - at_event) * 1e3)  # EVENTS -> job sent by the router
        stages["sender"].append((at_start - at_job) * 1e3)  # stored, fetched, attempt started
        stages["https"].append((received - at_start) * 1e3)  # attempt -> receipt
    return stages


async def stream_times(
    stack: Platform,
    subject: str,
    count: int,
    key: Callable[[Msg], str | tuple[str, float]],
    stream: str | None = None,
) -> dict[str, float]:
    """Every message on ``subject`` read once: key -> time (the message's stored time, or
    the time ``key`` returns with it); at most 60 s for ``count`` of them."""
    found: dict[str, float] = {}
    done = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        keyed = key(msg)
        if isinstance(keyed, tuple):
            found[keyed[0]] = keyed[1]
        else:
            found[keyed] = msg.metadata.timestamp.timestamp()
        if len(found) >= count:
            done.set()

    sub = await stack.js.subscribe(
        subject,
        stream=stream,
        cb=on_msg,
        ordered_consumer=True,
        pending_msgs_limit=1 << 20,
        pending_bytes_limit=1 << 30,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 60)
    await sub.unsubscribe()
    return found


def msg_id(msg: Msg) -> str:
    return str((msg.headers or {})["Nats-Msg-Id"])


def attempt_start(msg: Msg) -> tuple[str, float]:
    record = messages_pb2.AttemptRecord.FromString(msg.data)
    return record.delivery_id, record.started_at.ToNanoseconds() / 1e9
