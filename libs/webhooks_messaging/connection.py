"""Connecting a service to NATS: one named connection that reconnects forever."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client

from webhooks_config import Settings

log = logging.getLogger(__name__)

# Seconds between reconnect attempts: short enough that a broker restart costs little,
# long enough not to spin while it is down.
RECONNECT_WAIT_SECONDS = 2
CONNECT_TIMEOUT_SECONDS = 5


def redact_url(url: str) -> str:
    """The URL without user and password, for logs."""
    parts = []
    for one in url.split(","):
        split = urlsplit(one.strip())
        host = split.hostname or ""
        if split.port is not None:
            host = f"{host}:{split.port}"
        parts.append(urlunsplit((split.scheme, host, split.path, "", "")))
    return ",".join(parts)


async def connect(settings: Settings, name: str) -> Client:
    """Connect to ``settings.nats_url`` as ``name`` (shown in NATS monitoring)."""
    if not settings.nats_url:
        raise RuntimeError("WEBHOOKS_NATS_URL is not set: no NATS server to connect to")
    servers = [s.strip() for s in settings.nats_url.split(",") if s.strip()]
    shown = redact_url(settings.nats_url)

    async def on_error(err: Exception) -> None:
        # The exception text of nats-py never holds the credentials of the URL.
        log.warning("nats %s: error: %s: %s", name, type(err).__name__, err)

    async def on_disconnected() -> None:
        log.warning("nats %s: disconnected from %s", name, shown)

    async def on_reconnected() -> None:
        log.info("nats %s: reconnected to %s", name, shown)

    async def on_closed() -> None:
        log.info("nats %s: connection closed", name)

    client = await nats.connect(
        servers,
        name=name,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        closed_cb=on_closed,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        reconnect_time_wait=RECONNECT_WAIT_SECONDS,
        max_reconnect_attempts=-1,
    )
    log.info("nats %s: connected to %s", name, shown)
    return client
