"""Taking jobs from the two lanes of DELIVERIES (the router's lanes.py): a fetch loop per
lane into the same handling, the bulk lane held to a bounded share of the process.

The standard lane may take every free slot; the bulk lane at most ``BULK_SHARE`` of the
process's ``sender_concurrency`` at a time. So a tenant's burst, once beyond its standard
rate, never holds more than half the slots, and the other tenants' jobs, on the standard
lane, are fetched the moment they arrive and find room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from webhooks_messaging import pulling
from webhooks_messaging.waiting import first_of

BULK_SHARE = 0.5  # of sender_concurrency the bulk lane's jobs may hold at most
FETCH_BATCH = 256


def bulk_free(capacity: int, held: int, held_bulk: int) -> int:
    """How many more bulk jobs may be taken: within the free slots and the bulk share."""
    share = max(1, int(capacity * BULK_SHARE))
    return min(capacity - held, share - held_bulk)


async def take_lane(
    subscription: JetStreamContext.PullSubscription,
    stop: asyncio.Event,
    room: asyncio.Event,
    free: Callable[[], int],
    take: Callable[[list[Msg]], None],
) -> None:
    """Fetches up to ``free()`` jobs at a time and hands them to ``take`` until ``stop``;
    while ``free()`` is 0, waits for ``room`` (set when a job is settled)."""
    while not stop.is_set():
        count = free()
        if count <= 0:
            room.clear()
            await first_of(room.wait(), stop)
            continue
        try:
            messages = await pulling.next_batch(subscription, min(count, FETCH_BATCH))
        except TimeoutError:  # nothing came: ask again
            continue
        take(messages)


async def all_lanes(*lanes: Awaitable[None]) -> None:
    """Runs every lane's loop until all end; the first error stops the others and is raised."""
    tasks = [asyncio.ensure_future(lane) for lane in lanes]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
