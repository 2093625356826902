"""``webhooks serve console``: the console's WSGI application under waitress on
WEBHOOKS_CONSOLE_ADDR, until SIGTERM or SIGINT.

Waitress runs in a worker thread of this asyncio program, so the console is a service like
the others (``async def run(settings, *, ready=None, stop=None)``, registered as the
``console`` entry point of ``webhooks.services``) and stops like them: the stop event
closes the server, which ends its loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from webhooks_config import Settings
from webhooks_console.app import create_app
from webhooks_console.gateway import Gateway
from webhooks_grpc.signals import unwatch_signals, watch_signals
from webhooks_messaging.waiting import sleep_unless
from webhooks_telemetry import setup_logging
from webhooks_telemetry.metrics import setup_metrics

log = logging.getLogger(__name__)
THREADS = 8
STOP_GRACE_SECONDS = 5.0


async def run(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    setup_logging(settings)
    metrics = setup_metrics("console", settings)
    host, _, port = settings.address("console").rpartition(":")
    gateway = Gateway(settings)
    app = create_app(settings, gateway)
    server: Any = create_server(
        app,
        host=host.strip("[]") or "0.0.0.0",
        port=int(port),
        threads=THREADS,
        ident="webhooks",
        # Waitress drops X-Forwarded-* by default; with trusted proxies the application's
        # ProxyFix reads them (only as many hops as configured).
        clear_untrusted_proxy_headers=settings.console_proxy_hops == 0,
    )
    stop = stop or asyncio.Event()
    watch_signals(stop)
    # A daemon thread: a browser's idle keep-alive connection must not hold up the exit.
    serving = threading.Thread(target=server.run, name="waitress", daemon=True)
    serving.start()
    log.info("console serving on http://%s:%s/", host, port)
    if ready is not None:
        ready.set()
    try:
        while serving.is_alive() and not await sleep_unless(stop, 0.5):
            pass
    finally:
        unwatch_signals(stop)
        server.close()  # the listening socket: no new connections
        server.task_dispatcher.shutdown(timeout=STOP_GRACE_SECONDS)  # requests in progress
        wasyncore.close_all(server._map)  # idle keep-alive connections: the loop ends
        await asyncio.to_thread(serving.join, STOP_GRACE_SECONDS)
        gateway.close()
        if metrics is not None:
            metrics.stop()
        log.info("console stopped")
