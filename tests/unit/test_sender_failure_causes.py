"""What a request raised, as a failure class and a one-line message (failure_causes.py),
table-driven, in memory."""

from __future__ import annotations

import errno
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from webhooks.v1 import messages_pb2
from webhooks_sender.client_certificates import UnusableCertificate
from webhooks_sender.failure_causes import (
    FAILURES,
    failure_cause,
    refused_client,
    reset_once_connected,
)
from webhooks_sender.guard import BlockedDestination, DnsFailure

FC = messages_pb2.FailureClass


def _caused_by(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "failure_class", "message"),
    [
        (
            BlockedDestination("h", "10.0.0.1", "private"),
            FC.FAILURE_CLASS_BLOCKED_DESTINATION,
            "refused destination 10.0.0.1 for h (private)",
        ),
        (DnsFailure("h", "NXDOMAIN"), FC.FAILURE_CLASS_DNS, "could not resolve h: NXDOMAIN"),
        (TimeoutError(), FC.FAILURE_CLASS_TIMEOUT, "no complete response within 2.5 s"),
        (
            ssl.SSLError(1, "[SSL] tlsv13 alert certificate required"),
            FC.FAILURE_CLASS_TLS,
            "TLS failed: [SSL] tlsv13 alert certificate required",
        ),
        (
            _caused_by(aiohttp.ClientOSError(), ssl.SSLError(1, "alert")),
            FC.FAILURE_CLASS_TLS,
            "TLS failed: alert",
        ),
        (
            aiohttp.ServerDisconnectedError(),
            FC.FAILURE_CLASS_CONNECT,
            "server closed the connection without a response",
        ),
        (
            ConnectionResetError(104, "Connection reset by peer"),
            FC.FAILURE_CLASS_CONNECT,
            "connection failed: Connection reset by peer",
        ),
        (ValueError("bad host"), FC.FAILURE_CLASS_CONFIGURATION, "invalid URL: bad host"),
        (
            # Its cause is an ssl error, but the certificate is the tenant's configuration.
            _caused_by(UnusableCertificate("client certificate c:1: unusable"), ssl.SSLError()),
            FC.FAILURE_CLASS_CONFIGURATION,
            "client certificate c:1: unusable",
        ),
        (
            aiohttp.ClientPayloadError("cut\nshort"),
            FC.FAILURE_CLASS_CONNECT,
            "ClientPayloadError: cut short",
        ),
    ],
)
def test_what_a_request_raised_is_classified(
    exc: BaseException, failure_class: int, message: str
) -> None:
    assert isinstance(exc, FAILURES)
    assert failure_cause(exc, 2.5) == (failure_class, message)


def test_the_message_is_one_line_of_at_most_300_characters() -> None:
    _, message = failure_cause(DnsFailure("h", "x\n" * 400), 1.0)
    assert "\n" not in message
    assert len(message) == 300
    assert message.endswith("…")


@pytest.mark.parametrize(
    ("exc", "after_connecting"),
    [
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), True),
        (ConnectionResetError(errno.ECONNRESET, "reset"), True),
        (aiohttp.ClientOSError(errno.EPIPE, "Broken pipe"), False),
        (TimeoutError(), False),
        (
            aiohttp.ClientConnectorError(
                ConnectionKey("h", 443, True, True, None, None, None),  # type: ignore[arg-type]
                ConnectionResetError(errno.ECONNRESET, "reset"),
            ),
            False,
        ),
    ],
)
def test_a_reset_once_connected_is_what_a_refused_client_looks_like(
    exc: BaseException, after_connecting: bool
) -> None:
    assert reset_once_connected(exc) is after_connecting


def test_a_refused_client_is_tls_and_says_whether_it_presented_a_certificate() -> None:
    assert refused_client("TLSV13_ALERT_CERTIFICATE_REQUIRED", presented=False) == (
        FC.FAILURE_CLASS_TLS,
        "TLS: the server refused a connection without a client certificate: "
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    )
    failure_class, message = refused_client("SSLV3_ALERT_BAD_CERTIFICATE", presented=True)
    assert failure_class == FC.FAILURE_CLASS_TLS
    assert message.startswith("TLS: the server refused the client certificate")
