"""The sender's outbound transport against real HTTPS receivers on loopback under a test CA:
what arrives, redirects, the guard, TLS, mTLS, timeouts, classification of failures."""

from __future__ import annotations

import os
import ssl
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.certs import CertificateAuthority, issue_client_certificate, make_ca, pem_body
from tests.support.dns import DnsServer
from tests.support.ports import free_port
from tests.support.receivers import HttpsReceiver, Reply, TestPki
from webhooks.v1 import messages_pb2
from webhooks_sender.client_certificates import ClientCertificate
from webhooks_sender.guard import BlockedDestination, OutboundGuard
from webhooks_sender.transport import (
    USER_AGENT,
    Outbound,
    OutboundError,
)

FC = messages_pb2.FailureClass
LOOPBACK = ("127.0.0.0/8", "::1/128")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client_ca() -> CertificateAuthority:
    return make_ca("Tenant Client CA")


@pytest.fixture
async def receiver(pki: TestPki) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(pki) as server:
        yield server


@pytest.fixture
async def mtls_receiver(
    pki: TestPki, client_ca: CertificateAuthority
) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(pki, client_ca=client_ca) as server:
        yield server


def _outbound(
    pki: TestPki | None, *allow: str, timeout: float = 5.0, dns_servers: tuple[str, ...] = ()
) -> Outbound:
    guard = OutboundGuard(allow=allow, dns_servers=dns_servers, dns_timeout=2.0)
    return Outbound(guard, ca_bundle=pki.ca_file if pki else None, timeout=timeout, limit=100)


@pytest.fixture
async def outbound(pki: TestPki) -> AsyncIterator[Outbound]:
    async with _outbound(pki, *LOOPBACK) as client:
        yield client


async def _failure(outbound: Outbound, url: str, **options: Any) -> OutboundError:
    with pytest.raises(OutboundError) as failed:
        await outbound.post(url, b"{}", {"Content-Type": "application/json"}, **options)
    error = failed.value
    assert "\n" not in error.message and error.message
    return error


# ---- what arrives, what comes back


async def test_body_and_headers_arrive(outbound: Outbound, receiver: HttpsReceiver) -> None:
    receiver.reply("/hook", Reply(200, b'{"ok":true}', {"X-Answer": "42"}))
    body = b'{"event":"OnNew","id":7}'
    response = await outbound.post(
        receiver.url("/hook?tenant=acme"),
        body,
        {"Content-Type": "application/json", "webhook-id": "msg_1"},
    )
    assert response.status == 200
    assert response.headers["x-answer"] == "42"  # case-insensitive
    assert response.body == b'{"ok":true}' and response.snippet == b'{"ok":true}'
    assert response.duration_ms >= 0
    [seen] = receiver.received
    assert (seen.method, seen.path, seen.query, seen.body) == ("POST", "/hook", "tenant=acme", body)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["webhook-id"] == "msg_1"
    assert seen.headers["user-agent"] == USER_AGENT
    assert "cookie" not in seen.headers


async def test_callers_user_agent_wins(outbound: Outbound, receiver: HttpsReceiver) -> None:
    await outbound.post(receiver.url(), b"", {"User-Agent": "custom/1"})
    assert receiver.received[0].headers["user-agent"] == "custom/1"


async def test_redirect_is_returned_not_followed(
    outbound: Outbound, receiver: HttpsReceiver
) -> None:
    receiver.reply("/hook", Reply(302, headers={"Location": receiver.url("/elsewhere")}))
    response = await outbound.post(receiver.url("/hook"), b"{}", {})
    assert response.status == 302
    assert response.headers["location"].endswith("/elsewhere")
    assert [r.path for r in receiver.received] == ["/hook"]


async def test_error_statuses_are_responses(outbound: Outbound, receiver: HttpsReceiver) -> None:
    receiver.reply("/gone", Reply(410, b"gone"))
    receiver.reply("/busy", Reply(503, headers={"Retry-After": "30"}))
    assert (await outbound.post(receiver.url("/gone"), b"", {})).status == 410
    busy = await outbound.post(receiver.url("/busy"), b"", {})
    assert (busy.status, busy.headers["retry-after"]) == (503, "30")


async def test_response_body_is_capped_and_snippet_is_8_kib(
    outbound: Outbound, receiver: HttpsReceiver
) -> None:
    receiver.reply("/big", Reply(500, b"a" * 20_000))
    receiver.reply("/huge", Reply(500, b"b" * 1_000_000))
    big = await outbound.post(receiver.url("/big"), b"", {})
    assert len(big.body) == 20_000 and big.snippet == b"a" * 8192
    huge = await outbound.post(receiver.url("/huge"), b"", {})
    assert len(huge.body) == 64 * 1024 and len(huge.snippet) == 8192


# ---- the guard


async def test_loopback_refused_without_allow_list(pki: TestPki, receiver: HttpsReceiver) -> None:
    async with _outbound(pki) as outbound:
        literal = await _failure(outbound, receiver.url("/hook"))
        named = await _failure(outbound, f"https://localhost:{receiver.port}/hook")
    for error in (literal, named):
        assert error.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION
        assert "(loopback)" in error.message
    assert receiver.received == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "metadata"),
        ("10.0.0.5", "private"),
        ("[::ffff:10.0.0.5]", "private"),
        ("[64:ff9b::a9fe:a9fe]", "metadata"),
        ("[fd00::1]", "private"),
    ],
)
async def test_ip_literals_are_refused(outbound: Outbound, host: str, reason: str) -> None:
    started = time.monotonic()
    error = await _failure(outbound, f"https://{host}/hook")
    assert error.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION
    assert f"({reason})" in error.message
    assert time.monotonic() - started < 1.0  # refused before any connection attempt


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    records = {"localhost": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "10.0.0.5"]}
    with DnsServer(records) as server:
        yield server


async def test_names_go_through_the_guards_resolver(
    pki: TestPki, receiver: HttpsReceiver, dns_server: DnsServer
) -> None:
    async with _outbound(pki, *LOOPBACK, dns_servers=(dns_server.address,)) as outbound:
        ok = await outbound.post(f"https://localhost:{receiver.port}/hook", b"{}", {})
        mixed = await _failure(outbound, f"https://mixed.test:{receiver.port}/hook")
        missing = await _failure(outbound, f"https://missing.test:{receiver.port}/hook")
    assert ok.status == 204
    assert ("localhost", "A") in dns_server.queries
    assert mixed.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION
    assert "10.0.0.5 for mixed.test (private)" in mixed.message
    assert missing.failure_class == FC.FAILURE_CLASS_DNS
    assert len(receiver.received) == 1


# ---- TLS, connection, timeout


async def test_unknown_ca_is_a_tls_failure(receiver: HttpsReceiver, tmp_path: Path) -> None:
    other = TestPki.create(tmp_path / "other")
    for trust in (None, other):  # system CAs; another private CA
        async with _outbound(trust, *LOOPBACK) as outbound:
            error = await _failure(outbound, receiver.url())
        assert error.failure_class == FC.FAILURE_CLASS_TLS, error.message
    assert receiver.received == []


async def test_connection_refused_is_a_connect_failure(outbound: Outbound) -> None:
    error = await _failure(outbound, f"https://127.0.0.1:{free_port()}/hook")
    assert error.failure_class == FC.FAILURE_CLASS_CONNECT, error.message


async def test_slow_reply_times_out(outbound: Outbound, receiver: HttpsReceiver) -> None:
    receiver.reply("/slow", Reply(200, delay=3.0))
    error = await _failure(outbound, receiver.url("/slow"), timeout=0.3)
    assert error.failure_class == FC.FAILURE_CLASS_TIMEOUT, error.message
    assert 250 <= error.duration_ms < 2000
    assert "0.3 s" in error.message


async def test_malformed_url_is_a_configuration_failure(outbound: Outbound) -> None:
    for url in ("ftp://example.com/x", "https:///nohost", "not a url"):
        error = await _failure(outbound, url)
        assert error.failure_class == FC.FAILURE_CLASS_CONFIGURATION, url


# ---- client certificates (mTLS)


def _certificate(ca: CertificateAuthority, name: str) -> ClientCertificate:
    issued = issue_client_certificate(ca, name)
    return ClientCertificate(f"{name}:1", issued.certificate_pem, issued.private_key_pem)


async def test_mtls_receiver_accepts_the_certificate_and_rejects_none(
    outbound: Outbound, mtls_receiver: HttpsReceiver, client_ca: CertificateAuthority
) -> None:
    tenant = _certificate(client_ca, "acme-client")
    response = await outbound.post(mtls_receiver.url(), b"{}", {}, client_certificate=tenant)
    assert response.status == 204
    assert mtls_receiver.received[0].client_certificate_cn == "acme-client"
    error = await _failure(outbound, mtls_receiver.url())
    assert error.failure_class == FC.FAILURE_CLASS_TLS, error.message
    stranger = _certificate(make_ca("Someone Else"), "stranger")
    error = await _failure(outbound, mtls_receiver.url(), client_certificate=stranger)
    assert error.failure_class == FC.FAILURE_CLASS_TLS, error.message
    assert len(mtls_receiver.received) == 1


async def test_client_key_never_lands_on_disk_in_plaintext(
    outbound: Outbound,
    mtls_receiver: HttpsReceiver,
    client_ca: CertificateAuthority,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    loads: list[tuple[str, int, int]] = []
    real_load = ssl.SSLContext.load_cert_chain

    def observing_load(
        context: ssl.SSLContext, certfile: Any, keyfile: Any = None, password: Any = None
    ) -> None:
        # What is on disk at the moment ssl reads it.
        loads.append(
            (
                Path(keyfile).read_text(),
                stat.S_IMODE(os.stat(keyfile).st_mode),
                stat.S_IMODE(os.stat(os.path.dirname(keyfile)).st_mode),
            )
        )
        real_load(context, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", observing_load)
    issued = issue_client_certificate(client_ca, "acme-secret")
    tenant = ClientCertificate("acme-secret:1", issued.certificate_pem, issued.private_key_pem)
    for _ in range(3):
        response = await outbound.post(mtls_receiver.url(), b"{}", {}, client_certificate=tenant)
        assert response.status == 204
    [(key_text, key_mode, dir_mode)] = loads  # built once, then cached
    assert "ENCRYPTED PRIVATE KEY" in key_text
    assert pem_body(issued.private_key_pem) not in key_text.replace("\n", "")
    assert (key_mode, dir_mode) == (0o600, 0o700)
    assert list(scratch.iterdir()) == []  # deleted at once
    assert "PRIVATE" not in repr(tenant)


async def test_unusable_client_certificate_is_a_configuration_failure(
    outbound: Outbound, mtls_receiver: HttpsReceiver, client_ca: CertificateAuthority
) -> None:
    good = issue_client_certificate(client_ca, "a")
    other = issue_client_certificate(client_ca, "b")
    for certificate in (
        ClientCertificate("garbage:1", good.certificate_pem, "not a key"),
        ClientCertificate("mismatch:1", good.certificate_pem, other.private_key_pem),
    ):
        error = await _failure(outbound, mtls_receiver.url(), client_certificate=certificate)
        assert error.failure_class == FC.FAILURE_CLASS_CONFIGURATION, error.message
        assert "BEGIN" not in error.message
    assert mtls_receiver.received == []


# ---- GET (WSDL fetches)


async def test_get_returns_documents_within_bounds(
    outbound: Outbound, receiver: HttpsReceiver
) -> None:
    receiver.reply("/service.wsdl", Reply(200, b"<definitions/>"))
    receiver.reply("/big.wsdl", Reply(200, b"x" * 5000))
    receiver.reply("/missing.wsdl", Reply(404, b"no"))
    receiver.reply("/moved.wsdl", Reply(301, headers={"Location": "/service.wsdl"}))
    assert await outbound.get(receiver.url("/service.wsdl"), max_bytes=1000) == b"<definitions/>"
    too_big = await _get_failure(outbound, receiver.url("/big.wsdl"), max_bytes=1000)
    assert too_big.failure_class == FC.FAILURE_CLASS_CONFIGURATION
    assert "larger than 1000 bytes" in too_big.message
    for path, status in (("/missing.wsdl", 404), ("/moved.wsdl", 301)):
        error = await _get_failure(outbound, receiver.url(path), max_bytes=1000)
        assert error.failure_class == FC.FAILURE_CLASS_HTTP_STATUS
        assert f"HTTP {status}" in error.message
    assert "/service.wsdl" not in [r.path for r in receiver.received[1:]]


async def test_get_to_a_blocked_destination_is_refused(
    pki: TestPki, receiver: HttpsReceiver
) -> None:
    async with _outbound(pki) as outbound:
        error = await _get_failure(outbound, receiver.url("/service.wsdl"), max_bytes=1000)
    assert error.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION
    assert receiver.received == []


async def _get_failure(outbound: Outbound, url: str, *, max_bytes: int) -> OutboundError:
    with pytest.raises(OutboundError) as failed:
        await outbound.get(url, max_bytes=max_bytes)
    return failed.value


# ---- httpx over the same guarded session (OAuth token requests)


async def test_httpx_client_reaches_the_receiver_through_the_guard(
    outbound: Outbound, receiver: HttpsReceiver
) -> None:
    receiver.reply(
        "/token", Reply(200, b'{"access_token":"t"}', {"Content-Type": "application/json"})
    )
    receiver.reply("/moved", Reply(302, headers={"Location": "/token"}))
    async with outbound.httpx_client() as client:
        token = await client.post(receiver.url("/token"), data={"grant_type": "client_credentials"})
        moved = await client.post(receiver.url("/moved"), data={})
    assert token.status_code == 200 and token.json() == {"access_token": "t"}
    assert moved.status_code == 302
    assert [r.path for r in receiver.received] == ["/token", "/moved"]
    assert receiver.received[0].body == b"grant_type=client_credentials"
    assert receiver.received[0].headers["user-agent"] == USER_AGENT
    async with outbound.httpx_client() as client:
        # httpx-aiohttp 0.2 maps a refused connection to ConnectTimeout: expect the base.
        with pytest.raises(httpx.TransportError):
            await client.get(f"https://127.0.0.1:{free_port()}/token")
    # Closing the httpx client leaves the shared session open.
    assert (await outbound.post(receiver.url("/hook"), b"", {})).status == 204


async def test_httpx_client_is_refused_blocked_destinations(
    pki: TestPki, receiver: HttpsReceiver
) -> None:
    async with _outbound(pki) as outbound, outbound.httpx_client() as client:
        with pytest.raises(BlockedDestination):
            await client.post(receiver.url("/token"), data={})
        with pytest.raises(BlockedDestination):
            await client.get(f"https://localhost:{receiver.port}/token")
    assert receiver.received == []
