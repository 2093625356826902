"""Per-endpoint slots: first come first served, a deadline for waiting, and how many jobs
may wait (about one sender timeout's worth at the endpoint's mean request duration)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from webhooks_sender.consumer import JobConsumer
from webhooks_sender.endpoint_slots import EndpointSlots, WaitedTooLong

ORIGIN = "https://hooks.example:443"


def consumer(limit: int = 8, capacity: int = 1024, timeout: float = 15.0) -> JobConsumer:
    settings = SimpleNamespace(
        sender_concurrency=capacity,
        sender_endpoint_concurrency=limit,
        sender_timeout_seconds=timeout,
        retry_after_max_seconds=3600,
    )
    none: Any = None
    return JobConsumer(none, none, none, none, none, settings, none)  # type: ignore[arg-type]


async def test_slots_are_handed_over_in_order() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=2)
    await slots.acquire(10)
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.acquire(10)
        order.append(n)

    waiting = [asyncio.create_task(wait(n)) for n in range(2)]
    await asyncio.sleep(0)
    assert slots.waiting == 2 and slots.full
    slots.release()
    await asyncio.sleep(0)
    assert order == [0] and slots.running == 1
    slots.release()
    await asyncio.gather(*waiting)
    assert order == [0, 1]
    slots.release()
    assert slots.running == 0 and not slots.full


async def test_a_waiter_past_its_deadline_is_told_to_park() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=4)
    await slots.acquire(10)
    loop = asyncio.get_running_loop()
    early = asyncio.create_task(slots.acquire(0.01))
    late = asyncio.create_task(slots.acquire(60))
    await asyncio.sleep(0.05)
    slots.expire(loop.time())
    with pytest.raises(WaitedTooLong):
        await early
    assert not late.done() and slots.waiting == 1
    slots.release()  # the slot goes to the one still waiting
    await late
    assert slots.running == 1 and slots.waiting == 0


async def test_a_cancelled_waiter_gives_back_what_it_was_handed() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=4)
    await slots.acquire(10)
    handed = asyncio.create_task(slots.acquire(10))
    never = asyncio.create_task(slots.acquire(10))
    await asyncio.sleep(0)
    slots.release()  # handed to the first waiter, which is cancelled before it runs
    handed.cancel()
    never.cancel()
    await asyncio.gather(handed, never, return_exceptions=True)
    assert slots.running == 0 and slots.waiting == 0


async def test_an_expired_then_cancelled_waiter_releases_nothing() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=4)
    await slots.acquire(10)
    waiter = asyncio.create_task(slots.acquire(0))
    await asyncio.sleep(0)
    slots.expire(asyncio.get_running_loop().time() + 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert slots.running == 1


def test_an_untimed_endpoint_may_have_its_limit_waiting() -> None:
    assert consumer(limit=8)._waiting_limit(ORIGIN) == 8


def test_a_fast_endpoint_may_have_more_waiting_up_to_half_the_jobs() -> None:
    taken = consumer(limit=64, capacity=1024, timeout=15.0)
    slots = EndpointSlots(64, taken._waiting_limit(ORIGIN))
    taken._timed(ORIGIN, slots, 0.005)  # 64 x 15 s / 5 ms: far more than half of 1024
    assert slots.waiting_limit == 512
    taken = consumer(limit=8, capacity=1024, timeout=15.0)
    taken._timed(ORIGIN, slots, 1.0)  # 8 slots x 15 s / 1 s
    assert slots.waiting_limit == 120


def test_a_slow_endpoint_keeps_its_limit() -> None:
    taken = consumer(limit=8, timeout=15.0)
    slots = EndpointSlots(8, 8)
    taken._timed(ORIGIN, slots, 10.0)  # 8 x 15 / 10 = 12: one timeout's worth
    assert slots.waiting_limit == 12
    for _ in range(20):
        taken._timed(ORIGIN, slots, 30.0)
    assert slots.waiting_limit == 8


def test_the_mean_follows_the_latest_durations() -> None:
    taken = consumer(limit=10, capacity=10_000, timeout=10.0)
    slots = EndpointSlots(10, 10)
    taken._timed(ORIGIN, slots, 0.1)
    assert slots.waiting_limit == 1000
    for _ in range(40):  # the endpoint turned slow
        taken._timed(ORIGIN, slots, 5.0)
    assert slots.waiting_limit == 20
