"""The load ``bench/e2e.py`` offers and what the receiver saw of it.

``Receipts`` reads the receiver's log as it grows (the first receipt time of every
webhook-id, and how often an id came again); ``Case`` is a tenant with its subscriptions and
makes dated events whose deliveries it expects; ``offer`` sends PublishEvents calls at a
steady pace, open loop (a call never waits for the previous one), and records what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc.aio

from bench.e2e_probe import Cpu
from tests.support.platform_stack import Platform
from tests.support.platform_stack import platform as metadata_for
from webhooks.v1 import messages_pb2, router_pb2, subscriptions_pb2
from webhooks_messaging.jobs import delivery_id_for, routed_job_id

POLL_SECONDS = 0.05  # how often the receiver's log is read
ACCEPTED = router_pb2.PUBLISH_STATUS_ACCEPTED


@dataclass
class Receipts:
    """The receiver's log read as it grows: the first receipt time of every webhook-id."""

    path: Path
    at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    repeats: dict[str, int] = field(default_factory=dict)  # webhook-id -> receipts after the 1st
    offset: int = 0
    rest: bytes = b""
    grew: asyncio.Event = field(default_factory=asyncio.Event)
    watching: dict[str, float] = field(default_factory=dict)  # expected id -> occurred_at
    received: int = 0  # of the watched ids
    on_poll: list[Callable[[], None]] = field(default_factory=list)

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            stamp, _, delivery = line.decode().partition(" ")
            if delivery == "-" or not delivery:
                continue  # the raw loop and wrk send no webhook-id
            if delivery in self.at:
                self.duplicates += 1
                self.repeats[delivery] = self.repeats.get(delivery, 0) + 1
                continue
            self.at[delivery] = float(stamp)
            if delivery in self.watching:
                self.received += 1
        for callback in self.on_poll:
            callback()
        if lines:
            self.grew.set()

    async def follow(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(POLL_SECONDS)

    def watch(self, expected: dict[str, float]) -> None:
        self.watching = expected
        self.received = sum(1 for d in expected if d in self.at)

    async def wait_all(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while self.received < len(self.watching):
            if time.monotonic() > deadline:
                return False
            self.grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.grew.wait(), 0.5)
        return True

    async def wait_grown(self) -> None:
        """Until the log grows, or half a second."""
        self.grew.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.grew.wait(), 0.5)


@dataclass
class Case:
    name: str
    tenant: str
    subscriptions: list[subscriptions_pb2.Subscription]
    template: messages_pb2.PlatformEvent

    def events(self, count: int, tag: str) -> list[messages_pb2.PlatformEvent]:
        out = []
        run = uuid.uuid4().hex[:8]
        for i in range(count):
            event = messages_pb2.PlatformEvent()
            event.CopyFrom(self.template)
            event.event_id = f"e2e-{tag}-{run}-{i}"
            out.append(event)
        return out

    def stamp(
        self,
        events: list[messages_pb2.PlatformEvent],
        expected: dict[str, float],
        event_of: dict[str, str] | None = None,
    ) -> None:
        """Dates the events now (their publish time) and expects one delivery per
        subscription of each, keyed by its delivery id (the router's); ``event_of``: the
        event id of each delivery id."""
        now_ns = time.time_ns()
        for event in events:
            event.occurred_at.FromNanoseconds(now_ns)
            for subscription in self.subscriptions:
                delivery = delivery_id_for(routed_job_id(event.event_id, subscription.id))
                expected[delivery] = now_ns / 1e9
                if event_of is not None:
                    event_of[delivery] = event.event_id


async def publish_call(
    stack: Platform, router: int, case: Case, events: list[messages_pb2.PlatformEvent]
) -> None:
    reply = await stack.router_stub(router).PublishEvents(
        router_pb2.PublishEventsRequest(events=events),
        metadata=metadata_for(case.tenant),
        timeout=30,
    )
    refused = [r for r in reply.results if r.status != ACCEPTED]
    assert not refused, f"{len(refused)} events not accepted, e.g. {refused[:2]}"


async def warm_up(stack: Platform, receipts: Receipts, case: Case, count: int) -> None:
    """A few events through every router, every connection of every sender opened."""
    expected: dict[str, float] = {}
    events = case.events(count, "warm")
    case.stamp(events, expected)
    receipts.watch(expected)
    per = max(1, count // (4 * len(stack.routers)))
    await asyncio.gather(
        *(
            publish_call(stack, (i // per) % len(stack.routers), case, events[i : i + per])
            for i in range(0, count, per)
        )
    )
    if not await receipts.wait_all(60):
        raise RuntimeError(f"{case.name}: warm-up deliveries missing")


# ---- open loop


@dataclass(frozen=True)
class Load:
    """``events_per_s`` offered in PublishEvents calls of ``per_call`` events: ``warm_s``
    seconds not measured, then ``seconds`` measured."""

    events_per_s: float
    per_call: int
    seconds: float
    warm_s: float = 1.0
    stages: bool = True  # keep each delivery's event id (for the split into stages)


@dataclass
class OpenLoop:
    """What one open-loop run sent: delivery id -> publish time (every accepted call, and
    the measured ones), the event id of each delivery, the calls' durations and errors, and
    CPU snapshots at the start and the end of the measured part."""

    expected: dict[str, float] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    event_of: dict[str, str] = field(default_factory=dict)
    call_ms: list[float] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)
    cpu: list[Cpu] = field(default_factory=list)
    calls: int = 0


async def paced(
    calls_per_s: float, total_calls: int, send: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    """``send(i)`` for every i below ``total_calls`` at a steady pace, each in a task of its
    own (a slow call delays none after it); finished tasks are let go as they end."""
    start = time.monotonic()
    running: set[asyncio.Task[None]] = set()
    for i in range(total_calls):
        delay = start + i / calls_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(i))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*list(running))


async def offer(
    stack: Platform, receipts: Receipts, case: Case, load: Load, pids: dict[str, list[int]]
) -> OpenLoop:
    """``load`` offered open loop to the routers in turn; every delivery of an accepted
    call is watched for at the receiver (``receipts.wait_all`` then waits for them)."""
    calls_per_s = load.events_per_s / load.per_call
    warm_calls = int(calls_per_s * load.warm_s)
    total_calls = warm_calls + max(1, int(calls_per_s * load.seconds))
    run = OpenLoop(calls=total_calls - warm_calls)
    receipts.watch(run.expected)

    async def send(i: int) -> None:
        if i == warm_calls:
            run.cpu.append(Cpu.snapshot(pids))
        chunk = case.events(load.per_call, f"{case.tenant}-{i}")
        stamped: dict[str, float] = {}
        case.stamp(chunk, stamped, run.event_of if load.stages else None)
        run.expected.update(stamped)
        t0 = time.perf_counter()
        try:
            await publish_call(stack, i % len(stack.routers), case, chunk)
        except Exception as error:  # an overloaded router is a figure, not a crash
            name = error.code().name if isinstance(error, grpc.aio.AioRpcError) else repr(error)
            run.failed[name] = run.failed.get(name, 0) + 1
            for delivery in stamped:  # never accepted: not awaited at the receiver
                run.expected.pop(delivery, None)
                receipts.received -= delivery in receipts.at
            return
        if i >= warm_calls:
            run.call_ms.append((time.perf_counter() - t0) * 1e3)
            run.measured.update(stamped)

    await paced(calls_per_s, total_calls, send)
    run.cpu.append(Cpu.snapshot(pids))
    return run
