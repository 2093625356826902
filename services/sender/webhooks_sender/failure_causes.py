"""Why a request got no usable response: what it raised, as a failure class and a one-line
message. Pure: the exception is read, nothing is sent; the transport hands in what its
request raised. The classes are ``FailureClass`` (their names as shown:
``webhooks_catalogue.failure_classes``).

- a client certificate that cannot be loaded is ``configuration`` (whatever the ssl
  error behind it);
- the outbound guard's refusals are ``blocked_destination``, names that do not resolve
  ``dns``;
- a certificate not accepted, or any TLS error behind the exception (aiohttp wraps some,
  such as a TLS alert after the handshake), is ``tls``;
- no complete response within the timeout is ``timeout``;
- no connection, a connection closed or reset is ``connect``, as is anything else the
  request raised; except a reset that a probe shows to be a server refusing the client
  certificate, or its absence (how TLS 1.3 refusals look to a request: ``tls_probe``),
  which is ``tls`` (``refused_client``);
- a URL that cannot be used is ``configuration``.
"""

from __future__ import annotations

import errno
import ssl

import aiohttp

from webhooks.v1 import messages_pb2
from webhooks_sender.client_certificates import UnusableCertificate
from webhooks_sender.guard import BlockedDestination, DnsFailure

__all__ = ["FAILURES", "failure_cause", "refused_client", "reset_once_connected"]

_FC = messages_pb2.FailureClass

# What a request can raise that means "no usable response" rather than a bug here (the
# transport's own ``OutboundError``, already classified, is caught beside these).
FAILURES: tuple[type[BaseException], ...] = (
    UnusableCertificate,
    BlockedDestination,
    DnsFailure,
    aiohttp.ClientError,
    OSError,
    TimeoutError,
    ValueError,  # a URL yarl cannot parse
)


def failure_cause(exc: BaseException, timeout: float) -> tuple[int, str]:
    """The failure class of what a request raised and a one-line message of what happened;
    ``timeout``: the seconds the request had."""
    failure_class, message = _describe(exc, timeout)
    return failure_class, _one_line(message)


def reset_once_connected(exc: BaseException) -> bool:
    """A connection that was made, then closed or reset before any response: what a TLS
    1.3 server refusing the client's certificate looks like (and other things)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return False  # never connected
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return True
    return isinstance(exc, aiohttp.ClientOSError) and exc.errno == errno.ECONNRESET


def refused_client(refusal: str, presented: bool) -> tuple[int, str]:
    """The failure of a request whose client certificate (or its absence) the server
    refused; ``refusal``: how (its TLS alert, or that it closed the connection)."""
    what = "the client certificate" if presented else "a connection without a client certificate"
    return _FC.FAILURE_CLASS_TLS, _one_line(f"TLS: the server refused {what}: {refusal}")


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _describe(exc: BaseException, timeout: float) -> tuple[int, str]:
    if isinstance(exc, UnusableCertificate):  # first: its cause may be an ssl error
        return _FC.FAILURE_CLASS_CONFIGURATION, str(exc)
    if isinstance(exc, BlockedDestination):
        return _FC.FAILURE_CLASS_BLOCKED_DESTINATION, str(exc)
    if isinstance(exc, DnsFailure):
        return _FC.FAILURE_CLASS_DNS, str(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _FC.FAILURE_CLASS_DNS, f"could not resolve {exc.host}: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            _FC.FAILURE_CLASS_TLS,
            f"TLS certificate of {exc.host}:{exc.port} not accepted: "
            f"{_ssl_reason(exc.certificate_error)}",
        )
    tls = _ssl_error_in(exc)
    if tls is not None:
        return _FC.FAILURE_CLASS_TLS, f"TLS failed: {_ssl_reason(tls)}"
    if isinstance(exc, TimeoutError):
        return _FC.FAILURE_CLASS_TIMEOUT, f"no complete response within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            _FC.FAILURE_CLASS_CONNECT,
            f"cannot connect to {exc.host}:{exc.port}: {exc.strerror or exc.os_error}",
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return _FC.FAILURE_CLASS_CONNECT, "server closed the connection without a response"
    if isinstance(exc, OSError) and exc.strerror:
        # e.g. a reset: how a TLS 1.3 server refusing a client certificate looks to us
        return _FC.FAILURE_CLASS_CONNECT, f"connection failed: {exc.strerror}"
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return _FC.FAILURE_CLASS_CONFIGURATION, f"invalid URL: {exc}"
    return _FC.FAILURE_CLASS_CONNECT, f"{type(exc).__name__}: {exc}"


def _ssl_error_in(exc: BaseException) -> ssl.SSLError | None:
    """The ssl error behind ``exc``: aiohttp wraps some (a TLS alert after the handshake,
    such as a server demanding a client certificate) in its own connection errors."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(
            seen.os_error, ssl.SSLError
        ):
            return seen.os_error
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _ssl_reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return str(error.verify_message)
    reason = getattr(error, "reason", None)  # set by the ssl module, not by subclasses
    if reason:
        return str(reason)
    return str(error)
