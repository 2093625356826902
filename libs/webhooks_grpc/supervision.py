"""Keeping a service's background loops (NATS consumers, feeds) alive through hiccups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from webhooks_messaging.waiting import sleep_unless

log = logging.getLogger(__name__)
RESTART_DELAY_SECONDS = 1.0


async def keep_running(
    name: str, start: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Restarts a background loop that failed (a broker hiccup) until the service stops."""
    while not stop.is_set():
        try:
            await start()
        except Exception:
            log.exception("%s failed; restarting", name)
            await sleep_unless(stop, RESTART_DELAY_SECONDS)
