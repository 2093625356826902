"""The one outbound HTTP client: every webhook, OAuth token request and WSDL fetch.

aiohttp, because httpx's own pool cannot reach the thousands of requests per second the
delivery path needs (figures: bench/README.md); httpx is still offered, over the same
aiohttp session, for libraries built on it (authlib).

One ``ClientSession`` with a guarded connector: names resolve through the outbound guard,
IP-literal hosts (which aiohttp never hands to a resolver) are vetted by a session
middleware, so every path into the session is guarded. TLS is always verified (system CAs,
or ``ca_bundle`` instead). Redirects are never followed: a 3xx is returned as it is, since
following it would let an endpoint send the sender anywhere. No proxies from the
environment (a proxy would resolve the host itself, past the guard), no cookies. The TLS
contexts are ``client_certificates``'s, the classification of failures
``failure_causes``'s.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import httpx
from aiohttp.client_middlewares import ClientHandlerType
from aiohttp.client_reqrep import ClientRequest, ClientResponse
from aiohttp.helpers import is_ip_address
from httpx_aiohttp import AiohttpTransport
from yarl import URL

from webhooks.v1 import messages_pb2
from webhooks_sender.client_certificates import (
    ClientCertificate,
    ClientContexts,
    verifying_context,
)
from webhooks_sender.failure_causes import (
    FAILURES,
    failure_cause,
    refused_client,
    reset_once_connected,
)
from webhooks_sender.guard import BlockedDestination, OutboundGuard
from webhooks_sender.tls_probe import handshake_refusal

USER_AGENT = "webhooks-platform-sender/0.1"
MAX_BODY_BYTES = 64 * 1024  # read of any response; the rest is left unread
SNIPPET_BYTES = 8 * 1024  # what an attempt record keeps
DNS_CACHE_SECONDS = 10  # short: a changed DNS answer is vetted again soon
ADMITTED_LITERALS_CACHE_SIZE = 4096
TARGETS_CACHE_SIZE = 10_000
TIMEOUTS_CACHE_SIZE = 64  # per-attempt timeouts in use: one setting, plus tests' own

_FC = messages_pb2.FailureClass


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # at most MAX_BODY_BYTES
    duration_ms: int

    @property
    def snippet(self) -> bytes:
        return self.body[:SNIPPET_BYTES]


class OutboundError(Exception):
    """A request that got no usable response, classified as a ``FailureClass`` value."""

    def __init__(self, failure_class: int, message: str, duration_ms: int = 0) -> None:
        self.failure_class = failure_class
        self.message = message
        self.duration_ms = duration_ms
        super().__init__(message)


class _SharedSessionTransport(AiohttpTransport):
    """httpx-aiohttp over the Outbound's session; closing an httpx client leaves it open."""

    async def aclose(self) -> None:
        return None


class Outbound:
    def __init__(
        self,
        guard: OutboundGuard,
        *,
        ca_bundle: Path | None,
        timeout: float,
        limit: int,
    ) -> None:
        self.guard = guard
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.limit = limit
        self._trust = verifying_context(ca_bundle)
        self._client_contexts = ClientContexts(ca_bundle)
        self._session: aiohttp.ClientSession | None = None
        # Per-request objects that only depend on a value known in advance, built once.
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        # IP-literal hosts the guard admitted. Its rules (refused classes, allow-list) are
        # fixed for the life of the process, so one verdict per address holds; refusals
        # are not kept, they raise every time.
        self._admitted_literals: set[str] = set()
        # Webhook URLs parsed (yarl URLs are immutable): one parse per URL, not per request.
        self._targets: dict[str, URL] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self.limit,
            limit_per_host=0,  # per-endpoint limits are the consumer's, by endpoint
            resolver=self.guard.resolver(),
            ttl_dns_cache=DNS_CACHE_SECONDS,
            ssl=self._trust,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # bodies recorded as sent; identity asked for anyway
            trust_env=False,  # no proxies from the environment: they would bypass the guard
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            middlewares=(self._vet_ip_literal,),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Outbound:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Outbound is not started")
        return self._session

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        client_certificate: ClientCertificate | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per attempt, aiohttp applies it
    ) -> HttpResponse:
        """POST ``body``; any HTTP status (3xx included, never followed) is returned.

        Raises ``OutboundError`` when there is no response: blocked destination, DNS,
        connect, TLS, timeout, or an unusable URL or client certificate (configuration).
        """
        started = time.perf_counter()
        total = self.timeout if timeout is None else timeout
        target: URL | None = None
        context: ssl.SSLContext | None = None
        try:
            target = self._targets.get(url)
            if target is None:
                target = self._target(url)
            context = (
                self._trust
                if client_certificate is None
                else await self._client_contexts.context_for(client_certificate)
            )
            # The one request this makes goes to ``target`` (redirects are not followed):
            # its host, when an IP literal, is vetted here rather than by the session's
            # middleware, whose handler chain aiohttp would build for every request.
            host = target.raw_host
            if host is not None and host not in self._admitted_literals:
                self._vet_literal(host)
            async with self.session.post(
                target,
                data=body,
                headers=headers,  # aiohttp copies them into its own multidict
                ssl=context,
                allow_redirects=False,
                timeout=self._timeout_of(total),
                middlewares=(),
            ) as response:
                content = await _read_at_most(response, MAX_BODY_BYTES)
                return HttpResponse(
                    status=response.status,
                    headers=response.headers,
                    body=content,
                    duration_ms=_elapsed_ms(started),
                )
        except _FAILURES as exc:
            error = _classify(exc, total, _elapsed_ms(started))
            if target is not None and context is not None and reset_once_connected(exc):
                error = await self._refusal_or(error, target, context, client_certificate)
            raise error from exc

    async def _refusal_or(
        self,
        error: OutboundError,
        target: URL,
        context: ssl.SSLContext,
        certificate: ClientCertificate | None,
    ) -> OutboundError:
        """``error`` (a reset), or ``tls`` when a probe hears the server refuse the client
        certificate or its absence (TLS 1.3 refusals reach a request as resets)."""
        if target.scheme != "https":
            return error
        started = time.perf_counter()
        refusal = await handshake_refusal(self.guard, target, context)
        if refusal is None:
            return error
        failure_class, message = refused_client(refusal, presented=certificate is not None)
        return OutboundError(failure_class, message, error.duration_ms + _elapsed_ms(started))

    async def get(self, url: str, *, max_bytes: int) -> bytes:
        """GET a document (a WSDL): its body when the status is 2xx and it fits."""
        started = time.perf_counter()
        try:
            target = _parse_url(url)
            async with self.session.get(target, allow_redirects=False) as response:
                if not 200 <= response.status < 300:
                    raise OutboundError(
                        _FC.FAILURE_CLASS_HTTP_STATUS,
                        f"GET {_where(target)} answered HTTP {response.status}",
                        _elapsed_ms(started),
                    )
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise _too_large(target, max_bytes, started)
                content = await _read_at_most(response, max_bytes + 1)
                if len(content) > max_bytes:
                    raise _too_large(target, max_bytes, started)
                return content
        except _FAILURES as exc:
            raise _classify(exc, self.timeout, _elapsed_ms(started)) from exc

    def httpx_transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport over the guarded session (for clients such as authlib's)."""
        # verify: our context, so httpx does not load certifi for a context never used.
        return _SharedSessionTransport(client=self.session, verify=self._trust)

    def httpx_client(self, **options: Any) -> httpx.AsyncClient:
        """An httpx client over the guarded session: no redirects, no proxies from the
        environment (httpx would mount unguarded transports for them).

        Errors surface as httpx exceptions, except ``BlockedDestination`` and ``DnsFailure``
        which come through as they are.
        """
        options.setdefault("timeout", self.timeout)
        headers = {"User-Agent": USER_AGENT, **options.pop("headers", {})}
        return httpx.AsyncClient(
            transport=self.httpx_transport(),
            follow_redirects=False,
            trust_env=False,
            headers=headers,
            **options,
        )

    async def _vet_ip_literal(
        self, request: ClientRequest, handler: ClientHandlerType
    ) -> ClientResponse:
        # aiohttp connects to IP-literal hosts without asking the resolver, so the guard
        # would never see them; vet them here, before any connection is made.
        host = request.url.raw_host
        if host is not None and host not in self._admitted_literals:
            self._vet_literal(host)
        return await handler(request)

    def _vet_literal(self, host: str) -> None:
        """Refuses ``host`` (raises) when it is an IP literal the guard does not admit; an
        admitted one is remembered. Host names are the resolver's to vet."""
        if not is_ip_address(host):
            return
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise BlockedDestination(host, host, "malformed") from None
        self.guard.vet(host, host)
        if len(self._admitted_literals) >= ADMITTED_LITERALS_CACHE_SIZE:
            self._admitted_literals.clear()
        self._admitted_literals.add(host)

    def _target(self, url: str) -> URL:
        """``url`` parsed and checked (raises OutboundError), kept for the next request."""
        target = _parse_url(url)
        if len(self._targets) >= TARGETS_CACHE_SIZE:
            self._targets.clear()
        self._targets[url] = target
        return target

    def _timeout_of(self, total: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(total)
        if timeout is None:
            if len(self._timeouts) >= TIMEOUTS_CACHE_SIZE:
                self._timeouts.clear()
            timeout = self._timeouts[total] = aiohttp.ClientTimeout(total=total)
        return timeout


def _too_large(target: URL, max_bytes: int, started: float) -> OutboundError:
    return OutboundError(
        _FC.FAILURE_CLASS_CONFIGURATION,
        f"GET {_where(target)}: document larger than {max_bytes} bytes",
        _elapsed_ms(started),
    )


# What a request can raise that means "no usable response" rather than a bug here.
_FAILURES: tuple[type[BaseException], ...] = (OutboundError, *FAILURES)


def _parse_url(url: str) -> URL:
    try:
        target = URL(url)
    except (ValueError, TypeError) as exc:
        raise OutboundError(_FC.FAILURE_CLASS_CONFIGURATION, f"invalid URL: {exc}") from None
    if target.scheme not in ("https", "http") or not target.host:
        raise OutboundError(
            _FC.FAILURE_CLASS_CONFIGURATION, f"not an HTTP(S) URL: {_where(target)}"
        )
    return target


def _where(url: URL) -> str:
    """Scheme, host and port of ``url``: never its path, query or user info (secrets)."""
    if not url.host:
        return f"{url.scheme or '?'}:// (no host)"
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{url.port}" if url.port else f"{url.scheme}://{host}"


async def _read_at_most(response: ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _classify(exc: BaseException, timeout: float, duration_ms: int) -> OutboundError:
    """What a request raised as an ``OutboundError`` (classified by ``failure_causes``)."""
    if isinstance(exc, OutboundError):
        exc.duration_ms = exc.duration_ms or duration_ms
        return exc
    failure_class, message = failure_cause(exc, timeout)
    return OutboundError(failure_class, message, duration_ms)
