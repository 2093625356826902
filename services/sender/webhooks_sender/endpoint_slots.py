"""Per-endpoint concurrency: the requests in flight to one endpoint (scheme, host, port)
and the jobs waiting, first come first served, for one of its slots. How many may wait is
the consumer's to say (``JobConsumer._waiting_limit``)."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["EndpointSlots", "WaitedTooLong"]


class WaitedTooLong(Exception):
    """A job waited for a slot of its endpoint longer than it may: it is parked."""


class EndpointSlots:
    """Requests in flight to one endpoint, and jobs waiting (first come, first served) for
    one of its slots.

    Not an ``asyncio.Semaphore``: on Python 3.11 its ``acquire`` scans every waiter
    (``locked()``), which with hundreds of jobs waiting for a busy endpoint was a visible
    share of the sender's CPU (bench/README.md). Here taking a free slot is a comparison,
    and a released slot is handed straight to the first waiter. ``waiting_limit`` is the
    consumer's to set (see ``JobConsumer._waiting_limit``); a waiter still waiting at its
    deadline is failed with ``WaitedTooLong`` by ``expire``.
    """

    __slots__ = ("holders", "limit", "running", "waiters", "waiting_limit")

    def __init__(self, limit: int, waiting_limit: int) -> None:
        self.limit = limit
        self.waiting_limit = waiting_limit
        self.running = 0
        # (deadline, waiter), oldest first: deadlines are in order
        self.waiters: deque[tuple[float, asyncio.Future[None]]] = deque()
        self.holders = 0  # jobs running or waiting: the entry is dropped when none are left

    @property
    def waiting(self) -> int:
        return len(self.waiters)

    @property
    def full(self) -> bool:
        """Every slot busy and as many jobs waiting as may: a new job is parked."""
        return self.running >= self.limit and len(self.waiters) >= self.waiting_limit

    async def acquire(self, patience: float) -> None:
        """Takes a slot; waits for one at most ``patience`` seconds (then WaitedTooLong)."""
        if self.running < self.limit and not self.waiters:
            self.running += 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        entry = (loop.time() + patience, waiter)
        self.waiters.append(entry)
        try:
            await waiter  # release() has counted the slot as ours when it resolves this
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed over, but we are not going to use it
            elif entry in self.waiters:
                self.waiters.remove(entry)
            raise

    def release(self) -> None:
        while self.waiters:
            _, waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: running stays as it is
                return
        self.running -= 1

    def expire(self, now: float) -> None:
        """Fails the waiters whose deadline has passed."""
        while self.waiters and self.waiters[0][0] <= now:
            _, waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(WaitedTooLong())
