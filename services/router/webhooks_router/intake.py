"""Taking batches of events from the two lanes (lanes.py): the standard lane first, and the
bulk lane at least one batch in ``BULK_EVERY`` so that it never starves.

Each lane has a fetcher of its own that keeps one batch ready, so a batch of either lane is
there the moment the router can route one, and which lane goes next is decided among the
batches ready (``bulk_next``, a pure rule). A batch left ready when the router stops is
handed back (``left``) for the caller to return to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from webhooks_messaging.waiting import first_of

T = TypeVar("T")

BULK_EVERY = 4  # when both lanes have work, at least one batch in this many is bulk


def bulk_next(standard_ready: bool, bulk_ready: bool, standard_in_a_row: int) -> bool:
    """Whether the bulk lane's batch goes next: when it is the only one ready, or when
    ``BULK_EVERY - 1`` standard batches in a row went before it."""
    if not bulk_ready:
        return False
    return not standard_ready or standard_in_a_row >= BULK_EVERY - 1


class Intake(Generic[T]):
    """Batches of a standard and a bulk lane; ``fetch_*`` return the next batch (raising
    TimeoutError when none came in their wait)."""

    def __init__(
        self,
        fetch_standard: Callable[[], Awaitable[T]],
        fetch_bulk: Callable[[], Awaitable[T]],
    ) -> None:
        self._fetchers = (fetch_standard, fetch_bulk)
        self._standard: asyncio.Queue[T] = asyncio.Queue(maxsize=1)
        self._bulk: asyncio.Queue[T] = asyncio.Queue(maxsize=1)
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._standard_in_a_row = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._fetch(self._fetchers[0], self._standard)),
            asyncio.create_task(self._fetch(self._fetchers[1], self._bulk)),
        ]

    async def stop(self) -> list[T]:
        """Stops fetching; the batches fetched and not taken."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        left = []
        for queue in (self._standard, self._bulk):
            while not queue.empty():
                left.append(queue.get_nowait())
        return left

    async def next(self, stop: asyncio.Event) -> tuple[T, bool] | None:
        """The next batch and whether it is the bulk lane's; None once ``stop`` is set.
        A fetcher's error is raised here."""
        while not stop.is_set():
            for task in self._tasks:
                if task.done():
                    task.result()  # raises what ended it
            standard, bulk = not self._standard.empty(), not self._bulk.empty()
            if standard or bulk:
                if bulk_next(standard, bulk, self._standard_in_a_row):
                    self._standard_in_a_row = 0
                    return self._bulk.get_nowait(), True
                self._standard_in_a_row += 1
                return self._standard.get_nowait(), False
            self._arrived.clear()
            arrived = asyncio.ensure_future(self._arrived.wait())
            try:  # a batch, a fetcher that failed, or stop
                either = asyncio.wait([arrived, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
                await first_of(either, stop)
            finally:
                arrived.cancel()
        return None

    async def _fetch(self, fetch: Callable[[], Awaitable[T]], ready: asyncio.Queue[T]) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # nothing came: ask again
                batch = await fetch()
                await ready.put(batch)
                self._arrived.set()
