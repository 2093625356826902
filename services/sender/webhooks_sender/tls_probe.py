"""Whether a server refused the client certificate (or its absence) in the TLS handshake.

In TLS 1.3 the server checks the client certificate after the client's side of the
handshake is done, so the client has already sent its request when the refusal comes: the
server answers with an alert and closes, and since the request lies unread on its side,
the close is a reset that discards the alert before it is read. From the request's side
that is indistinguishable from a server resetting the connection. The probe asks again on
a fresh connection that sends nothing: the alert then arrives intact.

Only after a reset without a response on an HTTPS request (a rare failure), to the
address the guard vets, with the same TLS context (the same certificate, or none).
"""

from __future__ import annotations

import asyncio
import ssl

from yarl import URL

from webhooks_sender.guard import BlockedDestination, DnsFailure, OutboundGuard

__all__ = ["CLOSED", "PROBE_SECONDS", "handshake_refusal"]

# A refusal follows the handshake within one round trip; a server that accepts the
# certificate says nothing until asked, so the probe waits this long at most.
PROBE_SECONDS = 2.0
CLOSED = "closed the connection at the end of the TLS handshake"


async def handshake_refusal(
    guard: OutboundGuard, target: URL, context: ssl.SSLContext, seconds: float = PROBE_SECONDS
) -> str | None:
    """How the server of ``target`` refuses a client that presents what ``context``
    presents: its TLS alert, or "closed" when it ends the connection right after the
    handshake without a word (as asyncio servers do); None when it waits for a request, as
    a server that accepts the client does (or the probe cannot connect)."""
    host, port = target.raw_host, target.port
    if host is None or port is None:
        return None
    try:
        async with asyncio.timeout(seconds):
            address = (await guard.resolve(host, port))[0]
            # TLS 1.2 refuses within the handshake, TLS 1.3 right after it.
            reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=host
            )
            try:
                # Nothing was asked: an HTTP server that took the client waits for a
                # request (the timeout ends the probe); one that refused it ends now.
                if await reader.read(1) == b"":
                    return CLOSED
            finally:
                writer.close()
    except ssl.SSLCertVerificationError:
        return None  # ours about the server, not the server's about us
    except ssl.SSLError as refusal:
        return _alert(refusal)
    except (TimeoutError, OSError, ValueError, BlockedDestination, DnsFailure):
        return None  # no refusal heard: the reset stays a connect failure
    return None  # it spoke first: not a refusal


def _alert(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None)  # set by the ssl module, e.g. the alert's name
    return str(reason) if reason else str(error)
