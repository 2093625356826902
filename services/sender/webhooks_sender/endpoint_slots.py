"""Per-endpoint concurrency, shared fairly by the subscriptions that use the endpoint.

An endpoint (scheme, host, port) has ``limit`` requests in flight and ``waiting_limit``
jobs waiting for a slot: the origin-wide caps that protect the receiver. Many customers
share an integration host (an iPaaS, a webhook relay, one ERP's SOAP gateway), so inside
those caps each subscription (the ``key``) holds at most its share: ``share_limit`` slots
and ``share_waiting_limit`` waiting jobs. A slow or failing subscription therefore holds
only its own share, its further jobs are parked (they come back in a few seconds), and
the other subscriptions of the same origin keep slots to run on.

A released slot goes to the waiting subscription that runs the fewest requests (max-min
fairness): a healthy subscription whose requests take milliseconds gets the next slot
rather than queueing behind the slow one's waiters. Within a subscription, first come,
first served.

How many may wait is the consumer's to say (``JobConsumer._waiting_limit``).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

__all__ = ["EndpointSlots", "WaitedTooLong"]


class WaitedTooLong(Exception):
    """A job waited for a slot of its endpoint longer than it may: it is parked."""


Waiter = tuple[float, asyncio.Future[None]]  # (deadline, future)


class EndpointSlots:
    """Requests in flight to one endpoint, by subscription, and the jobs waiting for a slot.

    Not an ``asyncio.Semaphore``: on Python 3.11 its ``acquire`` scans every waiter
    (``locked()``), which with hundreds of jobs waiting for a busy endpoint was a visible
    share of the sender's CPU (bench/README.md). Here taking a free slot is two
    comparisons, and a released slot is handed straight to a waiter. A waiter still
    waiting at its deadline is failed with ``WaitedTooLong`` by ``expire``.
    """

    __slots__ = (
        "_by_key",
        "_share",
        "_waiting_limit",
        "holders",
        "limit",
        "running",
        "share_limit",
        "share_waiting_limit",
        "waiters",
        "waiting",
    )

    def __init__(self, limit: int, waiting_limit: int, share: float) -> None:
        self.limit = limit
        self._share = share
        self.share_limit = max(1, math.ceil(limit * share))
        self.running = 0
        self.waiting = 0
        self._by_key: dict[str, int] = {}  # requests in flight, by subscription
        # Waiters by subscription, oldest first (their deadlines are in order).
        self.waiters: dict[str, deque[Waiter]] = {}
        self.holders = 0  # jobs running or waiting: the entry is dropped when none are left
        self._waiting_limit = 0
        self.share_waiting_limit = 0
        self.waiting_limit = waiting_limit

    @property
    def waiting_limit(self) -> int:
        return self._waiting_limit

    @waiting_limit.setter
    def waiting_limit(self, value: int) -> None:
        self._waiting_limit = value
        self.share_waiting_limit = max(1, math.ceil(value * self._share))

    def running_for(self, key: str) -> int:
        return self._by_key.get(key, 0)

    def full(self, key: str) -> bool:
        """A job of ``key`` would have to wait and there is no room for it to: parked."""
        if self.running < self.limit and self._by_key.get(key, 0) < self.share_limit:
            return False  # it would run at once
        queue = self.waiters.get(key)
        return self.waiting >= self._waiting_limit or (
            queue is not None and len(queue) >= self.share_waiting_limit
        )

    async def acquire(self, key: str, patience: float) -> None:
        """Takes a slot for ``key``; waits for one at most ``patience`` seconds (then
        WaitedTooLong)."""
        running = self._by_key.get(key, 0)
        if self.running < self.limit and running < self.share_limit:
            self.running += 1
            self._by_key[key] = running + 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        entry = (loop.time() + patience, waiter)
        queue = self.waiters.get(key)
        if queue is None:
            queue = self.waiters[key] = deque()
        queue.append(entry)
        self.waiting += 1
        try:
            await waiter  # _dispatch has counted the slot as ours when it resolves this
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(key)  # handed over, but we are not going to use it
            else:
                self._forget(key, entry)
            raise

    def release(self, key: str) -> None:
        """``key``'s request is over: its slot goes to a waiter, or back to the pool."""
        self.running -= 1
        left = self._by_key[key] - 1
        if left:
            self._by_key[key] = left
        else:
            del self._by_key[key]
        if self.waiters:
            self._dispatch()

    def expire(self, now: float) -> None:
        """Fails the waiters whose deadline has passed."""
        for key in list(self.waiters):
            queue = self.waiters[key]
            while queue and queue[0][0] <= now:
                _, waiter = queue.popleft()
                self.waiting -= 1
                if not waiter.done():
                    waiter.set_exception(WaitedTooLong())
            if not queue:
                del self.waiters[key]

    def _dispatch(self) -> None:
        """Free slots go to the waiting subscriptions that run the fewest requests.

        A scan of the subscriptions with waiters: few in practice (a shared origin with
        many subscriptions all waiting at once is the case this exists for, and then
        each release is a pass over them, not over their jobs)."""
        while self.running < self.limit and self.waiters:
            chosen = ""
            fewest = self.share_limit
            for key in self.waiters:
                running = self._by_key.get(key, 0)
                if running < fewest:
                    chosen, fewest = key, running
            if fewest >= self.share_limit:
                return  # every waiter's subscription holds its share already
            queue = self.waiters[chosen]
            _, waiter = queue.popleft()
            self.waiting -= 1
            if not queue:
                del self.waiters[chosen]
            if waiter.done():
                continue  # cancelled while waiting
            self.running += 1
            self._by_key[chosen] = fewest + 1
            waiter.set_result(None)  # the slot is the waiter's now

    def _forget(self, key: str, entry: Waiter) -> None:
        queue = self.waiters.get(key)
        if queue is not None and entry in queue:
            queue.remove(entry)
            self.waiting -= 1
            if not queue:
                del self.waiters[key]
