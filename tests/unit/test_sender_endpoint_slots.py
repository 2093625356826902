"""Per-endpoint slots: first come first served within a subscription, a fair share for each
subscription of a shared origin, a deadline for waiting, and how many jobs may wait (about
one sender timeout's worth at the endpoint's mean request duration)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from webhooks_config import load_settings
from webhooks_sender.consumer import JobConsumer
from webhooks_sender.endpoint_slots import EndpointSlots, WaitedTooLong

ORIGIN = "https://hooks.example:443"
SUB = "subscription-a"
SHARE = load_settings({}).sender_subscription_share  # the default


def consumer(limit: int = 8, capacity: int = 1024, timeout: float = 15.0) -> JobConsumer:
    settings = SimpleNamespace(
        sender_concurrency=capacity,
        sender_endpoint_concurrency=limit,
        sender_subscription_share=SHARE,
        sender_timeout_seconds=timeout,
        retry_after_max_seconds=3600,
    )
    none: Any = None
    return JobConsumer(none, none, none, none, none, settings, none, none, none)  # type: ignore[arg-type]


async def test_slots_are_handed_over_in_order() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=2, share=SHARE)
    await slots.acquire(SUB, 10)
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.acquire(SUB, 10)
        order.append(n)

    waiting = [asyncio.create_task(wait(n)) for n in range(2)]
    await asyncio.sleep(0)
    assert slots.waiting == 2 and slots.full(SUB)
    slots.release(SUB)
    await asyncio.sleep(0)
    assert order == [0] and slots.running == 1
    slots.release(SUB)
    await asyncio.gather(*waiting)
    assert order == [0, 1]
    slots.release(SUB)
    assert slots.running == 0 and not slots.full(SUB)


async def test_a_waiter_past_its_deadline_is_told_to_park() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=4, share=SHARE)
    await slots.acquire(SUB, 10)
    loop = asyncio.get_running_loop()
    early = asyncio.create_task(slots.acquire(SUB, 0.01))
    late = asyncio.create_task(slots.acquire(SUB, 60))
    await asyncio.sleep(0.05)
    slots.expire(loop.time())
    with pytest.raises(WaitedTooLong):
        await early
    assert not late.done() and slots.waiting == 1
    slots.release(SUB)  # the slot goes to the one still waiting
    await late
    assert slots.running == 1 and slots.waiting == 0


async def test_a_cancelled_waiter_gives_back_what_it_was_handed() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=4, share=SHARE)
    await slots.acquire(SUB, 10)
    handed = asyncio.create_task(slots.acquire(SUB, 10))
    never = asyncio.create_task(slots.acquire(SUB, 10))
    await asyncio.sleep(0)
    slots.release(SUB)  # handed to the first waiter, which is cancelled before it runs
    handed.cancel()
    never.cancel()
    await asyncio.gather(handed, never, return_exceptions=True)
    assert slots.running == 0 and slots.waiting == 0


async def test_an_expired_then_cancelled_waiter_releases_nothing() -> None:
    slots = EndpointSlots(limit=1, waiting_limit=4, share=SHARE)
    await slots.acquire(SUB, 10)
    waiter = asyncio.create_task(slots.acquire(SUB, 0))
    await asyncio.sleep(0)
    slots.expire(asyncio.get_running_loop().time() + 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert slots.running == 1


def test_an_untimed_endpoint_may_have_its_limit_waiting() -> None:
    assert consumer(limit=8)._waiting_limit(ORIGIN) == 8


def test_a_fast_endpoint_may_have_more_waiting_up_to_half_the_jobs() -> None:
    taken = consumer(limit=64, capacity=1024, timeout=15.0)
    slots = EndpointSlots(64, taken._waiting_limit(ORIGIN), SHARE)
    taken._timed(ORIGIN, slots, 0.005)  # 64 x 15 s / 5 ms: far more than half of 1024
    assert slots.waiting_limit == 512
    taken = consumer(limit=8, capacity=1024, timeout=15.0)
    taken._timed(ORIGIN, slots, 1.0)  # 8 slots x 15 s / 1 s
    assert slots.waiting_limit == 120


def test_a_slow_endpoint_keeps_its_limit() -> None:
    taken = consumer(limit=8, timeout=15.0)
    slots = EndpointSlots(8, 8, SHARE)
    taken._timed(ORIGIN, slots, 10.0)  # 8 x 15 / 10 = 12: one timeout's worth
    assert slots.waiting_limit == 12
    for _ in range(20):
        taken._timed(ORIGIN, slots, 30.0)
    assert slots.waiting_limit == 8


def test_the_mean_follows_the_latest_durations() -> None:
    taken = consumer(limit=10, capacity=10_000, timeout=10.0)
    slots = EndpointSlots(10, 10, SHARE)
    taken._timed(ORIGIN, slots, 0.1)
    assert slots.waiting_limit == 1000
    for _ in range(40):  # the endpoint turned slow
        taken._timed(ORIGIN, slots, 5.0)
    assert slots.waiting_limit == 20


async def test_a_subscription_holds_at_most_its_share_of_an_origin() -> None:
    slots = EndpointSlots(limit=8, waiting_limit=8, share=0.5)
    for _ in range(4):
        await slots.acquire("slow", 10)
    assert slots.running_for("slow") == 4 and slots.running == 4
    queued = asyncio.create_task(slots.acquire("slow", 10))
    await asyncio.sleep(0)
    assert not queued.done(), "over its share, though the origin has free slots"
    assert not slots.full("other")
    await slots.acquire("other", 10)  # another subscription still runs at once
    assert slots.running_for("other") == 1
    slots.release("slow")
    await queued  # its own release lets its own waiter in
    assert slots.running_for("slow") == 4


async def test_a_subscription_waiting_beyond_its_share_of_the_room_is_parked() -> None:
    slots = EndpointSlots(limit=2, waiting_limit=4, share=0.5)
    await slots.acquire("slow", 10)
    waiters = [asyncio.create_task(slots.acquire("slow", 10)) for _ in range(2)]
    await asyncio.sleep(0)
    assert slots.full("slow"), "two waiting: its share of a room of four"
    assert not slots.full("other"), "the other half of the room is the others'"
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert slots.waiting == 0 and not slots.waiters


async def test_a_released_slot_goes_to_the_subscription_running_fewest() -> None:
    slots = EndpointSlots(limit=4, waiting_limit=16, share=0.75)
    for _ in range(3):
        await slots.acquire("slow", 10)
    await slots.acquire("fast", 10)  # the origin is full: 3 slow + 1 fast
    order: list[str] = []

    async def wait(key: str) -> None:
        await slots.acquire(key, 10)
        order.append(key)

    slow_waiting = [asyncio.create_task(wait("slow")) for _ in range(3)]
    await asyncio.sleep(0)
    fast_waiting = [asyncio.create_task(wait("fast")) for _ in range(3)]
    await asyncio.sleep(0)
    slots.release("fast")  # fast runs 0, slow runs 3 (its share): fast's waiter is next
    await asyncio.sleep(0)
    slots.release("slow")  # slow 2, fast 1: fast again, though slow waited first
    await asyncio.sleep(0)
    assert order == ["fast", "fast"]
    slots.release("fast")  # slow 2, fast 1: fast again
    await asyncio.sleep(0)
    slots.release("fast")  # fast 1 waiter left? no: fast has none now, slow gets it
    await asyncio.sleep(0)
    assert order == ["fast", "fast", "fast", "slow"]
    for task in slow_waiting + fast_waiting:
        task.cancel()
    await asyncio.gather(*slow_waiting, *fast_waiting, return_exceptions=True)
