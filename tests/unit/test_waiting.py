"""Waiting unless the service stops (webhooks_messaging.waiting): whichever comes first
ends the wait, and the loser is cancelled."""

from __future__ import annotations

import asyncio
import time

from webhooks_messaging.waiting import first_of, sleep_unless


async def test_the_awaitable_first_ends_the_wait_and_the_stop_waiter_is_cancelled() -> None:
    stop = asyncio.Event()
    ready = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, ready.set)
    assert await first_of(ready.wait(), stop) is True
    assert not stop.is_set()
    # Nothing of the wait is left behind.
    await _settle()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_stop_first_ends_the_wait_and_cancels_the_awaitable() -> None:
    stop = asyncio.Event()
    never = asyncio.ensure_future(asyncio.Event().wait())
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await first_of(never, stop) is False
    await _settle()
    assert never.cancelled()


async def test_a_stop_already_set_returns_at_once() -> None:
    stop = asyncio.Event()
    stop.set()
    started = time.monotonic()
    assert await first_of(asyncio.sleep(10), stop) is False
    assert time.monotonic() - started < 1


async def test_the_timeout_ends_the_wait_when_neither_comes() -> None:
    stop = asyncio.Event()
    never = asyncio.ensure_future(asyncio.Event().wait())
    assert await first_of(never, stop, seconds=0.01) is False
    await _settle()
    assert never.cancelled()
    assert not stop.is_set()


async def test_an_awaitable_that_fails_counts_as_finished_and_its_error_is_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("broken")

    task = asyncio.ensure_future(fails())
    assert await first_of(task, asyncio.Event()) is True
    assert isinstance(task.exception(), RuntimeError)


async def test_cancelling_the_wait_cancels_both_waiters() -> None:
    stop = asyncio.Event()
    never = asyncio.ensure_future(asyncio.Event().wait())
    waiting = asyncio.ensure_future(first_of(never, stop))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await _settle()
    assert waiting.cancelled()
    assert never.cancelled()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_sleep_unless_sleeps_the_whole_time_without_stop() -> None:
    started = time.monotonic()
    assert await sleep_unless(asyncio.Event(), 0.05) is False
    assert time.monotonic() - started >= 0.04


async def test_sleep_unless_wakes_when_stop_is_set() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, stop.set)
    started = time.monotonic()
    assert await sleep_unless(stop, 10) is True
    assert time.monotonic() - started < 1


async def _settle() -> None:
    """A few turns of the loop: a cancelled task ends on its next turn."""
    for _ in range(3):
        await asyncio.sleep(0)
