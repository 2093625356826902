"""Real HTTPS servers on loopback for the sender's tests: webhook receivers, token servers.

A ``TestPki`` is one test CA with a server certificate for localhost/127.0.0.1/::1, written
to files so a sender process can be pointed at the CA bundle (``WEBHOOKS_CA_BUNDLE``).

``HttpsReceiver`` is an aiohttp server under that CA that records every request it gets
and answers by path from a table of ``Reply`` values (status, headers, body, delay), so a
test decides per endpoint what the receiver does: succeed, fail, be slow, send a SOAP
Fault, redirect. It can require client certificates (mTLS) signed by a given CA. Run it in
the test's event loop; ``url(path)`` gives ``https://127.0.0.1:<port><path>``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.support.certs import CertificateAuthority, Issued, issue_server_certificate, make_ca


@dataclass(frozen=True)
class TestPki:
    """A test CA and a loopback server certificate, also as files."""

    __test__ = False  # not a pytest test class despite its name

    ca: CertificateAuthority
    server: Issued
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path

    @classmethod
    def create(cls, directory: Path) -> TestPki:
        directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca("Webhooks Receiver Test CA")
        server = issue_server_certificate(ca)
        ca_file = directory / "ca.pem"
        ca_file.write_text(ca.certificate_pem)
        cert_file = directory / "server.pem"
        cert_file.write_text(server.certificate_pem)
        key_file = directory / "server-key.pem"
        key_file.write_text(server.private_key_pem)
        key_file.chmod(0o600)
        return cls(ca, server, ca_file, cert_file, key_file)

    def client_context(self) -> ssl.SSLContext:
        """What a client trusting only the test CA uses."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server_context(self, client_ca: CertificateAuthority | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.server_cert_file), str(self.server_key_file))
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=client_ca.certificate_pem)
        return context


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # header names lower-cased; repeated ones joined by ", "
    body: bytes
    at: float  # time.time() when the request was complete
    client_certificate_cn: str | None  # the CN of the client's certificate (mTLS)


# A handler may compute the reply from the request (token servers, WSDL checks).
Responder = Callable[[Received], Awaitable[Reply] | Reply]


class HttpsReceiver:
    def __init__(
        self,
        pki: TestPki,
        *,
        client_ca: CertificateAuthority | None = None,
        default: Reply | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.pki = pki
        self.host = host
        self.client_ca = client_ca
        self.default = default or Reply(204)
        self.replies: dict[str, Reply | Responder] = {}
        self.received: list[Received] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{path}"

    def reply(self, path: str, reply: Reply | Responder) -> None:
        """Answer requests to ``path`` with ``reply`` from now on."""
        self.replies[path] = reply

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` requests (to ``path``, or to any) have arrived."""

        def enough() -> bool:
            got = self.received if path is None else self.at(path)
            return len(got) >= count

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(enough), timeout)

    async def start(self) -> HttpsReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # access_log=None: a log line per request would dominate benchmarks.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, 0, ssl_context=self.pki.server_context(self.client_ca)
        )
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HttpsReceiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        cn = None
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        if peer:
            for rdn in peer.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
        received = Received(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers=headers,
            body=body,
            at=time.time(),
            client_certificate_cn=cn,
        )
        answer = self.replies.get(request.path, self.default)
        if callable(answer):
            produced = answer(received)
            reply = await produced if asyncio.iscoroutine(produced) else produced
        else:
            reply = answer
        assert isinstance(reply, Reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        self.received.append(received)
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))


class ReceiverThread:
    """An ``HttpsReceiver`` on its own event loop in a background thread, for synchronous
    tests (end-to-end tests driving the CLI as subprocesses)."""

    def __init__(self, pki: TestPki, **options: object) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.receiver = HttpsReceiver(pki, **options)  # type: ignore[arg-type]

    def __enter__(self) -> ReceiverThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> None:
        future = asyncio.run_coroutine_threadsafe(
            self.receiver.wait_for(count, path, timeout), self._loop
        )
        future.result(timeout + 1)
