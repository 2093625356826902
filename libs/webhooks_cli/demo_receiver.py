"""The HTTPS receiver of ``webhooks demo`` and its throwaway certificates.

The sender delivers only over verified HTTPS, so the demo needs a certificate the platform
trusts: a demo CA made here (``demo/ca.pem`` in the data dir), handed to the platform as
``WEBHOOKS_CA_BUNDLE``. The CA is made once and kept: a platform restarted with that bundle
loads it at start, so a new CA on every run would break the ``up`` the user was told to
start. The server certificate (for 127.0.0.1) is issued again when missing or near expiry.

The receiver is an aiohttp server on 127.0.0.1 in a thread of its own, so the demo's steps
stay plain blocking gRPC calls while deliveries are shown the moment they arrive. Each path
is one subscription's endpoint: the receiver checks the Standard Webhooks signature with
that subscription's signing secret, answers 204 (or 503 while the path is set to fail), and
hands a ``Delivery`` to the demo's callback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks_cli.errors import CliError

HOST = "127.0.0.1"
CA_DAYS = 3650
SERVER_DAYS = 30
RENEW_BEFORE = timedelta(days=1)
EXCERPT_CHARS = 96
START_TIMEOUT_SECONDS = 10.0
FAILING_BODY = b"demo receiver: down for maintenance"


@dataclass(frozen=True)
class DemoPki:
    """The demo CA (the file the platform trusts) and the receiver's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "webhooks demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600)  # private from the first byte written
    path.write_bytes(pem)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _make_ca(ca_file: Path, ca_key_file: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = _name("webhooks demo CA (throwaway)")
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # Key usage and key identifiers: strict verifiers (OpenSSL's X509_STRICT, the
        # default of newer Pythons) refuse a CA without them.
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(ca_key_file, key)
    ca_file.write_bytes(_pem(certificate))


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _issue_server(ca_file: Path, ca_key_file: Path, cert_file: Path, key_file: Path) -> None:
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_file, key)
    cert_file.write_bytes(_pem(certificate))


def _usable(cert_file: Path, ca_file: Path) -> bool:
    """The server certificate exists, is not near expiry and comes from this CA."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    except (OSError, ValueError):
        return False
    fresh = certificate.not_valid_after_utc - RENEW_BEFORE > datetime.now(UTC)
    return fresh and certificate.issuer == ca.subject


def ensure_pki(directory: Path) -> DemoPki:
    """The demo CA (made on the first run only) and a current server certificate."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_file, ca_key_file = directory / "ca.pem", directory / "ca-key.pem"
    cert_file, key_file = directory / "server.pem", directory / "server-key.pem"
    if not (ca_file.exists() and ca_key_file.exists()):
        _make_ca(ca_file, ca_key_file)
    if not _usable(cert_file, ca_file):
        _issue_server(ca_file, ca_key_file, cert_file, key_file)
    return DemoPki(ca_file=ca_file, cert_file=cert_file, key_file=key_file)


@dataclass
class Endpoint:
    """One subscription's path on the receiver."""

    subscription: str
    secret: str = ""  # the signing secret returned at creation
    failing: bool = False


@dataclass(frozen=True)
class Delivery:
    """A request the receiver got, as the demo shows it."""

    at: datetime
    path: str
    subscription: str
    webhook_id: str
    status: int  # what the receiver answered
    signature: str  # "ok", or why not
    kind: str  # "JSON" or "SOAP XML"
    entity: str
    trigger: str
    event_id: str
    excerpt: str


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _describe_json(body: bytes) -> tuple[str, str, str, str]:
    try:
        event: dict[str, Any] = json.loads(body)["Event"]
    except (ValueError, KeyError, TypeError):
        return "?", "?", "", _excerpt(body.decode("utf-8", "replace"))
    entity, trigger = str(event.get("Subscription", "?")), str(event.get("Name", "?"))
    data = json.dumps(event.get(entity), ensure_ascii=False, separators=(",", ":"))
    return entity, trigger, str(event.get("EventId", "")), _excerpt(f'"{entity}":{data}')


def _describe_xml(body: bytes) -> tuple[str, str, str, str]:
    # Only the platform's sender reaches this loopback receiver, and the expat behind
    # ElementTree (2.4.1+) limits entity expansion, so the standard parser is enough here.
    text = body.decode("utf-8", "replace")
    start = text.find("Body>")  # what is inside the SOAP Body: operation element, event
    excerpt = _excerpt(text[start + 5 :] if start >= 0 else text)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "?", "?", "", excerpt
    fields: dict[str, str] = {}
    for element in root.iter():
        if _local(element.tag) == "Event":
            fields = {_local(child.tag): (child.text or "") for child in element}
            break
    entity, trigger = fields.get("Subscription", "?"), fields.get("Name", "?")
    return entity, trigger, fields.get("EventId", ""), excerpt


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _signature(endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> str:
    if not endpoint.secret:
        return "not checked (no secret yet)"
    try:
        # json_parse=False: the package would parse the body as JSON, and SOAP is XML.
        Webhook(endpoint.secret).verify(body.decode("utf-8", "replace"), headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as err:  # ValueError: malformed headers
        return f"INVALID ({err or type(err).__name__})"
    return "ok"


@dataclass
class DemoReceiver:
    """The receiver; ``on_delivery`` is called (on the receiver's thread) per request."""

    pki: DemoPki
    on_delivery: Callable[[Delivery], None]
    port: int = 0
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None
    _error: BaseException | None = None

    def url(self, path: str) -> str:
        return f"https://{HOST}:{self.port}{path}"

    def add_endpoint(self, path: str, subscription: str) -> None:
        self.endpoints[path] = Endpoint(subscription)

    def set_secret(self, path: str, secret: str) -> None:
        self.endpoints[path].secret = secret

    def set_failing(self, path: str, failing: bool) -> None:
        self.endpoints[path].failing = failing

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS) or self._error is not None:
            raise CliError(f"the demo receiver did not start: {self._error or 'timed out'}")

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def wait_for(
        self, match: Callable[[Delivery], bool], count: int, timeout: float, what: str
    ) -> list[Delivery]:
        """The first ``count`` deliveries that ``match``, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [d for d in self.deliveries if match(d)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CliError(
                        f"{what}: {len(found)} of {count} deliveries arrived in {timeout:.0f} s "
                        "(see `webhooks failures list` and the platform's log)"
                    )
                self._arrived.wait(min(left, 0.5))

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # reported by start(); the thread must not print it
            self._error = err
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, 0, ssl_context=self.pki.server_context())
            await site.start()
            server: Any = site._server  # aiohttp has no public accessor for the bound port
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            return await self._receive(request)
        except Exception as err:  # one line in the demo's output, not aiohttp's traceback
            print(f"  the demo receiver failed on {request.path}: {err!r}", flush=True)
            return web.Response(status=500, text="demo receiver error")

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        endpoint = self.endpoints.get(request.path)
        if endpoint is None:
            return web.Response(status=404, text="demo receiver: no such endpoint")
        headers = {k.lower(): v for k, v in request.headers.items()}
        content_type = headers.get("content-type", "")
        is_xml = "xml" in content_type
        describe = _describe_xml if is_xml else _describe_json
        entity, trigger, event_id, excerpt = describe(body)
        status = 503 if endpoint.failing else 204
        delivery = Delivery(
            at=datetime.now(UTC),
            path=request.path,
            subscription=endpoint.subscription,
            webhook_id=headers.get("webhook-id", "-"),
            status=status,
            signature=_signature(endpoint, body, headers),
            kind="SOAP XML" if is_xml else "JSON",
            entity=entity,
            trigger=trigger,
            event_id=event_id,
            excerpt=excerpt,
        )
        self.on_delivery(delivery)
        with self._arrived:
            self.deliveries.append(delivery)
            self._arrived.notify_all()
        if endpoint.failing:
            return web.Response(status=503, body=FAILING_BODY)
        return web.Response(status=204)
