"""Waiting for something unless the service stops: one home for "wait for X or stop".

Every loop of a service waits on ``stop`` (set by the signal handler) beside what it waits
for, so that shutting down never waits out a fetch, a poll interval or a restart delay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


async def first_of(
    awaitable: Awaitable[object], stop: asyncio.Event, seconds: float | None = None
) -> bool:
    """Wait for ``awaitable``, ``stop`` or ``seconds`` (when given), whichever comes first.

    The loser is cancelled (the awaitable too when stop or the time wins). Returns
    whether the awaitable finished; its result or error is not looked at.
    """
    waiter = asyncio.ensure_future(awaitable)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()
    return waiter.done() and not waiter.cancelled()


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; returns whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
