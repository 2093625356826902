"""Waiting for a position (a stream sequence, a notification id) to be reached.

Projections and relays move a position forward; callers that need read-your-writes wait
until it passes the one they care about. Waiters are kept in a heap by position, so each
advance resolves only those it reaches.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

# Waiters abandoned (timed out) while the position is stuck are forgotten past this many.
MAX_STALE_WAITERS = 1024


class PositionWaiters:
    def __init__(self) -> None:
        # (position awaited, tie-breaker, future)
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tie = itertools.count()

    async def wait(self, target: int) -> None:
        """Returns once ``reached`` was called with ``target`` or more (the caller checks
        its current position first; a timeout around this call cancels the wait)."""
        if len(self._heap) > MAX_STALE_WAITERS:
            # Stuck, and callers keep timing out: forget their futures.
            self._heap = [w for w in self._heap if not w[2].done()]
            heapq.heapify(self._heap)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (target, next(self._tie), future))
        await future

    def reached(self, position: int) -> None:
        """The position is now ``position``: every waiter up to it returns."""
        while self._heap and self._heap[0][0] <= position:
            future = heapq.heappop(self._heap)[2]
            if not future.done():
                future.set_result(None)
