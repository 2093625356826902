"""Rebuild of the failures view: ATTEMPTS replayed from sequence 1 into shadow tables,
swapped in for the live ones.

The replay runs beside the live projector (both apply the same stream, to different
tables). Once the replay has reached the stream's end as it was when the rebuild began,
the live projector is paused between two batches, the replay catches up with the live
position, stops, and the shadow tables are renamed over the live ones in one transaction.
The rebuilt view then holds the same records up to at least the live position, so it
equals the live view row for row; if the replay went further, the live projector's next
write finds the position moved and resumes from the rebuilt view's position.

Attempts the stream no longer holds (older than its max age) are not in the rebuilt view.
One rebuild at a time per process; with several replicas on one PostgreSQL database, ask
one of them (two rebuilds would share the shadow tables).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.js import JetStreamContext

from webhooks_failures.projector import Projector
from webhooks_failures.view import FailuresView

log = logging.getLogger(__name__)


async def rebuild(
    js: JetStreamContext, view: FailuresView, projector: Projector
) -> tuple[int, int]:
    """Returns (attempt records applied by the replay, failed events in the new view)."""
    started = time.monotonic()
    shadow = await asyncio.to_thread(view.fresh_shadow)
    # Its letters are the live projector's: the same records, the same letters (deduplicated).
    replay = Projector(
        shadow, stream=projector.stream, batch_size=projector.batch_size, dead=projector.dead
    )
    stop = asyncio.Event()
    task = asyncio.create_task(replay.run(js, stop), name="failures rebuild replay")
    try:
        # Most of the work, with the live projector running.
        await _until(replay, await replay.stream_end(js), task)
        replayed = time.monotonic()
        async with projector.paused():
            live = await asyncio.to_thread(view.position)
            await _until(replay, live, task)
            stop.set()
            await task  # its last batch is committed before the swap
            failed_events = await asyncio.to_thread(view.swap_in, shadow)
        paused = time.monotonic() - replayed
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
    log.info(
        "failures view rebuilt: %d attempt records, %d failed events, position %d, %.1f s "
        "(the live projector paused %.2f s)",
        replay.records_applied,
        failed_events,
        replay.applied,
        time.monotonic() - started,
        paused,
    )
    return replay.records_applied, failed_events


async def _until(replay: Projector, target: int, task: asyncio.Task[None]) -> None:
    """Wait for the replay to reach ``target``; its failure is raised here."""
    reached = asyncio.ensure_future(replay.reached(target))
    try:
        await asyncio.wait({reached, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reached.cancel()
    if reached.cancelled() or not reached.done():
        # The replay ended first: raise what stopped it.
        task.result()
        raise RuntimeError("the rebuild's replay stopped before reaching its target")
