"""A server that refuses the client certificate, or its absence, is a TLS failure.

TLS 1.3 servers refuse after the client's handshake, when the request is already on its
way: the request sees a reset, and the sender's probe (tls_probe) hears the refusal on a
fresh connection. Against the test receiver (asyncio: it closes without an alert), an
OpenSSL server in a thread (it sends the alert, as nginx does), and a server that took the
client and resets the request anyway (that stays a connect failure)."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from typing import Any

import pytest

from tests.support.certs import CertificateAuthority, issue_client_certificate, make_ca
from tests.support.receivers import HttpsReceiver, TestPki
from webhooks.v1 import messages_pb2
from webhooks_sender.client_certificates import ClientCertificate
from webhooks_sender.guard import OutboundGuard
from webhooks_sender.transport import Outbound, OutboundError

FC = messages_pb2.FailureClass
LOOPBACK = ("127.0.0.0/8", "::1/128")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client_ca() -> CertificateAuthority:
    return make_ca("Tenant Client CA")


@pytest.fixture
async def outbound(pki: TestPki) -> AsyncIterator[Outbound]:
    guard = OutboundGuard(allow=LOOPBACK, dns_servers=(), dns_timeout=2.0)
    async with Outbound(guard, ca_bundle=pki.ca_file, timeout=10.0, limit=10) as client:
        yield client


def _certificate(ca: CertificateAuthority, name: str) -> ClientCertificate:
    issued = issue_client_certificate(ca, name)
    return ClientCertificate(f"{name}:1", issued.certificate_pem, issued.private_key_pem)


async def _failure(outbound: Outbound, url: str, **options: Any) -> OutboundError:
    # A body larger than one segment: the request is surely unread when the server closes.
    with pytest.raises(OutboundError) as failed:
        await outbound.post(url, b"{}" * 50_000, {"Content-Type": "application/json"}, **options)
    return failed.value


class ThreadedTlsServer:
    """An OpenSSL (blocking ssl module) server: ``refuse`` requires a client certificate
    of ``client_ca`` (a failed handshake sends OpenSSL's alert); otherwise it takes any
    client, reads the request's first bytes and resets the connection."""

    def __init__(self, pki: TestPki, client_ca: CertificateAuthority | None) -> None:
        self.context = pki.server_context(client_ca)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.handshakes_failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5.0)
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(1024)  # TLS 1.3: the client's certificate is checked here
                    # Taken, and reset all the same (SO_LINGER 0: a reset, not a FIN).
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except ssl.SSLError:
                self.handshakes_failed += 1
            except OSError:
                pass
            finally:
                raw.close()

    def __enter__(self) -> ThreadedTlsServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        with suppress(OSError):
            self.listener.close()


@pytest.fixture
def openssl_mtls(pki: TestPki, client_ca: CertificateAuthority) -> Iterator[ThreadedTlsServer]:
    with ThreadedTlsServer(pki, client_ca) as server:
        yield server


async def test_no_client_certificate_for_a_server_that_requires_one_is_tls(
    outbound: Outbound, pki: TestPki, client_ca: CertificateAuthority
) -> None:
    async with HttpsReceiver(pki, client_ca=client_ca) as receiver:
        error = await _failure(outbound, receiver.url())
        assert error.failure_class == FC.FAILURE_CLASS_TLS, error.message
        assert "without a client certificate" in error.message
        stranger = _certificate(make_ca("Someone Else"), "stranger")
        error = await _failure(outbound, receiver.url(), client_certificate=stranger)
        assert error.failure_class == FC.FAILURE_CLASS_TLS, error.message
        assert "refused the client certificate" in error.message
        assert receiver.received == []


async def test_the_servers_alert_is_the_message(
    outbound: Outbound, openssl_mtls: ThreadedTlsServer
) -> None:
    error = await _failure(outbound, openssl_mtls.url())
    assert error.failure_class == FC.FAILURE_CLASS_TLS, error.message
    assert "CERTIFICATE_REQUIRED" in error.message.upper(), error.message
    assert openssl_mtls.handshakes_failed >= 1


async def test_a_reset_from_a_server_that_took_the_client_stays_connect(
    outbound: Outbound, pki: TestPki
) -> None:
    with ThreadedTlsServer(pki, None) as server:
        error = await _failure(outbound, server.url())
    assert error.failure_class == FC.FAILURE_CLASS_CONNECT, error.message
    assert server.handshakes_failed == 0
