"""SIGTERM/SIGINT to stop events, for any number of services sharing one event loop.

``loop.add_signal_handler`` keeps one handler per signal, and ``webhooks up`` may run
several services in one loop: one handler sets the stop event of every running service.
"""

from __future__ import annotations

import asyncio
import logging
import signal

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_stops: set[asyncio.Event] = set()
_installed: set[asyncio.AbstractEventLoop] = set()

log = logging.getLogger(__name__)


def _stop_all(signum: int) -> None:
    log.info("received %s: shutting down", signal.Signals(signum).name)
    for stop in list(_stops):
        stop.set()


def watch_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM or SIGINT (no-op where signals cannot be handled)."""
    loop = asyncio.get_running_loop()
    if loop not in _installed:
        try:
            for signum in SIGNALS:
                loop.add_signal_handler(signum, _stop_all, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            # Not the main thread, or a platform without signal support: the caller's
            # stop event remains the way to stop.
            return
        _installed.add(loop)
    _stops.add(stop)


def unwatch_signals(stop: asyncio.Event) -> None:
    """Forget ``stop``; the last one out gives the signals back to their defaults."""
    _stops.discard(stop)
    if _stops:
        return
    loop = asyncio.get_running_loop()
    if loop in _installed:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
        _installed.discard(loop)
