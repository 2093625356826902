"""A service's NATS connection over TLS to an external server (WEBHOOKS_NATS_TLS_CA, _CERT,
_KEY), with its own nkey: a real nats-server that requires TLS and verifies client
certificates under a test CA, and admits only the platform's users."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.errors import NoServersError

from tests.support.certs import issue_client_certificate, make_ca
from tests.support.nats_server import NatsServer
from tests.support.receivers import TestPki
from webhooks_config import Settings, load_settings
from webhooks_messaging import EVENTS, auth, connect, declare_streams
from webhooks_messaging.connection import credential_options, tls_context


class TlsNats:
    def __init__(self, directory: Path) -> None:
        self.pki = TestPki.create(directory / "pki")  # the server's certificate (127.0.0.1)
        client_ca = make_ca("NATS clients CA")
        client = issue_client_certificate(client_ca, "router")
        self.client_ca_file = directory / "client-ca.pem"
        self.client_ca_file.write_text(client_ca.certificate_pem)
        self.client_cert = directory / "client.pem"
        self.client_cert.write_text(client.certificate_pem)
        self.client_key = directory / "client-key.pem"
        self.client_key.write_text(client.private_key_pem)
        self.auth = auth.prepare(directory / "nats-auth")
        config = directory / "nats-tls.conf"
        tls = (
            "tls {\n"
            f'  cert_file: "{self.pki.server_cert_file}"\n'
            f'  key_file: "{self.pki.server_key_file}"\n'
            f'  ca_file: "{self.client_ca_file}"\n'
            "  verify: true\n"
            "}\n"
        )
        config.write_text(tls + self.auth.server_config.read_text())
        self.server = NatsServer(directory / "store", config_file=config)

    def settings(self, **extra: str) -> Settings:
        env = {
            "WEBHOOKS_NATS_URL": f"tls://127.0.0.1:{self.server.port}",
            "WEBHOOKS_NATS_NKEY_SEED_FILE": str(self.auth.seed_file("router")),
            "WEBHOOKS_NATS_TLS_CA": str(self.pki.ca_file),
            "WEBHOOKS_NATS_TLS_CERT": str(self.client_cert),
            "WEBHOOKS_NATS_TLS_KEY": str(self.client_key),
        }
        return load_settings({k: v for k, v in (env | extra).items() if v})


@pytest.fixture
async def tls_nats(tmp_path: Path) -> AsyncIterator[TlsNats]:
    nats = TlsNats(tmp_path)
    await asyncio.to_thread(nats.server.start)
    try:
        yield nats
    finally:
        await asyncio.to_thread(nats.server.stop)


async def test_a_service_connects_over_tls_as_its_user(tls_nats: TlsNats) -> None:
    nc = await connect(tls_nats.settings(), "router")
    try:
        assert nc.connected_url is not None and nc.connected_url.scheme == "tls"
        js = nc.jetstream()
        settings = tls_nats.settings()
        await declare_streams(js, settings)  # the router's permissions allow this
        assert (await js.stream_info(EVENTS)).config.name == EVENTS
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("missing", "error"),
    [
        # The server's certificate is not trusted without the CA.
        ({"WEBHOOKS_NATS_TLS_CA": ""}, "CERTIFICATE_VERIFY_FAILED"),
        # The server verifies clients: no certificate, no connection.
        # (TLS 1.3: the alert, or the connection closed before it is read, or while the
        # client still writes its CONNECT: which one depends on timing.)
        (
            {"WEBHOOKS_NATS_TLS_CERT": "", "WEBHOOKS_NATS_TLS_KEY": ""},
            "CERTIFICATE_REQUIRED|Connection (lost|reset)|Broken pipe",
        ),
    ],
)
async def test_without_the_tls_settings_it_does_not_connect(
    tls_nats: TlsNats, missing: dict[str, str], error: str
) -> None:
    settings = tls_nats.settings(**missing)
    assert settings.nats_url is not None
    tls = tls_context(settings)
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(f"{type(e).__name__}: {e}")

    with pytest.raises((OSError, NoServersError, TimeoutError)):
        await nats.connect(
            settings.nats_url,
            allow_reconnect=False,
            connect_timeout=5,
            error_cb=on_error,
            **credential_options(settings),
            **({"tls": tls} if tls is not None else {}),
        )
    assert any(re.search(error, e) for e in errors), errors
