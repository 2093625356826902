"""Connecting a service to NATS: one named connection that reconnects forever."""

from __future__ import annotations

import logging
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client

from webhooks_config import ConfigError, Settings
from webhooks_messaging.permissions import inbox_prefix, user_of_connection

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


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS client context for NATS: the CA to trust (else the system's) and a client
    certificate; None when no TLS setting is given (a ``tls://`` URL then uses the
    system's CAs)."""
    ca, cert, key = settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key
    if ca is None and cert is None and key is None:
        return None
    if (cert is None) != (key is None):
        raise ConfigError("WEBHOOKS_NATS_TLS_CERT and WEBHOOKS_NATS_TLS_KEY: give both or neither")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
    return context


def credential_options(settings: Settings) -> dict[str, Any]:
    """nats-py's options for the configured credential: an nkey seed file or a .creds file
    (a JWT and its seed, for servers run with an operator); none: connect anonymously."""
    seed, creds = settings.nats_nkey_seed_file, settings.nats_credentials
    if seed is not None and creds is not None:
        raise ConfigError(
            "WEBHOOKS_NATS_NKEY_SEED_FILE and WEBHOOKS_NATS_CREDENTIALS: give one, not both"
        )
    for variable, path in (("NKEY_SEED_FILE", seed), ("CREDENTIALS", creds)):
        if path is not None and not path.is_file():
            raise ConfigError(f"WEBHOOKS_NATS_{variable}: no such file: {path}")
    if seed is not None:
        return {"nkeys_seed": str(seed)}
    if creds is not None:
        return {"user_credentials": str(creds)}
    return {}


async def connect(settings: Settings, name: str) -> Client:
    """Connect to ``settings.nats_url`` as ``name`` (shown in NATS monitoring), with the
    configured credential and TLS, replies on the inbox of ``name``'s NATS user."""
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

    tls = tls_context(settings)
    client = await nats.connect(
        servers,
        name=name,
        inbox_prefix=inbox_prefix(user_of_connection(name)),
        **credential_options(settings),
        **({"tls": tls} if tls is not None else {}),
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
