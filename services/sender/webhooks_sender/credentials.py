"""The ``Authorization`` header of a subscription.

Basic, OAuth 2.0 access tokens, and the client-credentials and password grants (requests
built by authlib, sent through the sender's guarded client); the token cache, one token
request in flight per subscription, and the 401 invalidation. How each works and why:
services/sender/README.md, "Credentials".
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.client import DEFAULT_HEADERS
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from webhooks.v1 import common_pb2
from webhooks_sender.delivery_metrics import token_requested
from webhooks_sender.guard import BlockedDestination, DnsFailure

__all__ = [
    "DEFAULT_FAILURE_BACKOFF_SECONDS",
    "DEFAULT_LIFETIME_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "Credentials",
    "CredentialsUnusable",
    "TokenFailure",
    "refreshable",
]

log = logging.getLogger(__name__)

DEFAULT_LIFETIME_SECONDS = 300.0  # a token whose response has no expires_in
DEFAULT_FAILURE_BACKOFF_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 15.0  # one token request, connect to last byte
DEFAULT_MAX_SUBSCRIPTIONS = 10_000
GRANT_KINDS = ("oauth2_client_credentials", "oauth2_password")
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post"]

# RFC 6749 §5.2: error codes are printable ASCII without '"' and '\'.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
# RFC 6750 b64token, with the characters some servers add (JWTs fit): sent verbatim in
# a header, so no spaces or controls.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_TOKEN_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}")  # an HTTP token
_MAX_DESCRIPTION = 160


class TokenFailure(Exception):
    """The token endpoint gave no usable token. ``message`` is one line, without secrets."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status  # the token endpoint's HTTP status, None without an answer
        self.error = error  # its OAuth error code ("invalid_client"), when it sent one

    def again(self) -> TokenFailure:
        """A fresh exception with the same content (one instance per raise)."""
        return TokenFailure(self.message, status=self.status, error=self.error)


class CredentialsUnusable(Exception):
    """The authentication cannot be used as given (a required field is empty)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def refreshable(auth: common_pb2.Authentication) -> bool:
    """Whether a 401 may be cured by ``invalidate`` and a new token (the grants only)."""
    return auth.WhichOneof("kind") in GRANT_KINDS


@dataclass(frozen=True)
class _Grant:
    grant_type: str
    token_url: str
    scope: str
    client_id: str
    client_secret: str = field(repr=False)
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.token_url).hostname or "(no host)"

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this grant blotted out."""
        for secret in (self.client_secret, self.password):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass(frozen=True)
class _Token:
    header: str = field(repr=False)
    refresh_at: float  # time.monotonic()


@dataclass
class _Entry:
    version: int
    token: _Token | None = None
    flight: asyncio.Task[_Token] | None = None
    failure: TokenFailure | None = None
    failed_until: float = 0.0  # time.monotonic()


class Credentials:
    def __init__(
        self,
        http: Callable[[], httpx.AsyncClient],
        *,
        refresh_margin_seconds: float = 30.0,
        token_endpoint_auth_method: ClientAuthMethod = "client_secret_basic",
        default_lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
        failure_backoff_seconds: float = DEFAULT_FAILURE_BACKOFF_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
    ) -> None:
        """``http()`` is called for every token request and must return a long-lived client
        (the sender's guarded one); it is never closed here. Its TLS settings apply; the
        whole request is bounded by ``timeout_seconds`` whatever its own timeouts.
        """
        if max_subscriptions < 1:
            raise ValueError("max_subscriptions must be at least 1")
        self._http = http
        self.refresh_margin_seconds = refresh_margin_seconds
        self.token_endpoint_auth_method: ClientAuthMethod = token_endpoint_auth_method
        self.default_lifetime_seconds = default_lifetime_seconds
        self.failure_backoff_seconds = failure_backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.max_subscriptions = max_subscriptions
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def authorization(
        self, subscription_id: str, version: int, auth: common_pb2.Authentication
    ) -> str | None:
        """The Authorization header value, or None without authentication.

        Raises TokenFailure when a grant's token cannot be had, CredentialsUnusable when a
        required field is empty.
        """
        kind = auth.WhichOneof("kind")
        if kind is None or kind == "none":
            return None
        if kind == "basic":
            return _basic(auth.basic)
        if kind == "oauth2_access_token":
            return _static_token(auth.oauth2_access_token)
        if kind == "oauth2_client_credentials":
            cc = auth.oauth2_client_credentials
            grant = _Grant(
                "client_credentials", cc.token_url, cc.scope, cc.client_id, cc.client_secret
            )
        elif kind == "oauth2_password":
            pw = auth.oauth2_password
            grant = _Grant(
                "password",
                pw.token_url,
                pw.scope,
                pw.client_id,
                pw.client_secret,
                pw.username,
                pw.password,
            )
            _require(kind, username=pw.username, password=pw.password)
        else:  # a kind added to the proto and not handled here
            raise CredentialsUnusable(f"authentication kind {kind} is not supported")
        _require(kind, token_url=grant.token_url)
        return await self._token_header(subscription_id, version, grant)

    def invalidate(self, subscription_id: str, version: int, header: str) -> None:
        """The receiver refused ``header`` (401): forget that token if it is still cached."""
        entry = self._entries.get(subscription_id)
        if entry is None or entry.version != version or entry.token is None:
            return
        if entry.token.header == header:
            entry.token = None
            log.info("token of subscription %s invalidated after a 401", subscription_id)

    async def close(self) -> None:
        """Cancel token requests in flight (process shutdown)."""
        flights = [e.flight for e in self._entries.values() if e.flight is not None]
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        self._entries.clear()

    # -- the cache and the single flight

    async def _token_header(self, subscription_id: str, version: int, grant: _Grant) -> str:
        entry = self._entries.get(subscription_id)
        if entry is not None and entry.version > version:
            # A caller still holding older settings: serve it without disturbing the
            # newer credentials' token (rare, at the moment of a change).
            return (await self._fetch(grant)).header
        if entry is None or entry.version != version:
            entry = _Entry(version)
            self._entries[subscription_id] = entry
            while len(self._entries) > self.max_subscriptions:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(subscription_id)
        now = time.monotonic()
        if entry.token is not None and now < entry.token.refresh_at:
            return entry.token.header
        if entry.failure is not None and now < entry.failed_until:
            raise entry.failure.again()
        if entry.flight is None:
            entry.flight = asyncio.create_task(
                self._fly(subscription_id, entry, grant), name=f"token {subscription_id}"
            )
            entry.flight.add_done_callback(_consume)
        try:
            # shield: a cancelled caller must not cancel the request the others wait for.
            token = await asyncio.shield(entry.flight)
        except TokenFailure as failure:
            raise failure.again() from failure.__cause__
        return token.header

    async def _fly(self, subscription_id: str, entry: _Entry, grant: _Grant) -> _Token:
        try:
            token = await self._fetch(grant)
        except TokenFailure as failure:
            token_requested(ok=False)
            entry.token = None
            entry.failure = failure
            entry.failed_until = time.monotonic() + self.failure_backoff_seconds
            log.warning("subscription %s: %s", subscription_id, failure.message)
            raise
        finally:
            entry.flight = None
        token_requested(ok=True)
        entry.token = token
        entry.failure = None
        log.info("subscription %s: token from %s", subscription_id, grant.host)
        return token

    # -- one token request

    async def _fetch(self, grant: _Grant) -> _Token:
        where = f"token endpoint {grant.host}"
        started = time.monotonic()
        url, headers, body = self._token_request(grant, where)
        try:
            # asyncio.timeout bounds the whole exchange whatever the client's own settings.
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._http().post(url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise TokenFailure(
                f"{where} did not answer within {self.timeout_seconds:g} s"
            ) from None
        except (httpx.HTTPError, BlockedDestination, DnsFailure) as error:
            # The guard's refusals come through httpx-aiohttp unwrapped. The error text is
            # scrubbed anyway; the cause stays attached for callers that classify (a
            # refused destination, a TLS failure).
            detail = grant.scrub(f"{type(error).__name__}: {error}".strip().rstrip(":"))
            raise TokenFailure(f"{where} unreachable ({_one_line(detail)})") from error
        return self._token_from(response, grant, where, started)

    def _token_request(self, grant: _Grant, where: str) -> tuple[str, dict[str, str], str]:
        params: dict[str, str] = {"scope": grant.scope}
        if grant.grant_type == "password":
            params.update(username=grant.username, password=grant.password)
        body = prepare_token_request(grant.grant_type, **params)  # empty values are left out
        headers = dict(DEFAULT_HEADERS)
        if not grant.client_id:
            return grant.token_url, headers, body
        method = self.token_endpoint_auth_method if grant.client_secret else "none"
        try:
            url, headers, body = ClientAuth(grant.client_id, grant.client_secret, method).prepare(
                "POST", grant.token_url, headers, body
            )
        except UnicodeEncodeError:
            # client_secret_basic encodes Latin-1; the error would quote the secret.
            raise TokenFailure(
                f"{where}: client id or secret cannot be sent with {method} (not Latin-1)"
            ) from None
        return url, headers, body

    def _token_from(
        self, response: httpx.Response, grant: _Grant, where: str, started: float
    ) -> _Token:
        status = response.status_code
        try:
            document: Any = json.loads(response.content)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            kind = "an error" if not 200 <= status < 300 else "a response that is not JSON"
            raise TokenFailure(f"{where} answered HTTP {status} with {kind}", status=status)
        if "error" in document or not 200 <= status < 300:
            error = document.get("error")
            code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
            message = f"{where} answered HTTP {status}" + (f" {code}" if code else "")
            description = document.get("error_description")
            if isinstance(description, str) and description.strip():
                message += f": {_one_line(grant.scrub(description))[:_MAX_DESCRIPTION]}"
            raise TokenFailure(message, status=status, error=code)
        access_token = document.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise TokenFailure(
                f"{where} answered HTTP {status} without access_token", status=status
            )
        if not _TOKEN.fullmatch(access_token):
            raise TokenFailure(
                f"{where} answered HTTP {status} with an access_token that cannot be sent "
                "in a header",
                status=status,
            )
        token_type = document.get("token_type")
        if token_type is None or (isinstance(token_type, str) and token_type.lower() == "bearer"):
            prefix = "Bearer"
        elif isinstance(token_type, str) and _TOKEN_TYPE.fullmatch(token_type):
            prefix = token_type
        else:
            raise TokenFailure(
                f"{where} answered HTTP {status} with an unusable token_type", status=status
            )
        lifetime = _lifetime(document.get("expires_in"), self.default_lifetime_seconds)
        # The lifetime counts from before the request was sent: the server's clock started
        # no earlier. The margin is capped at half the lifetime so a token shorter-lived than
        # the margin is still reused for a while.
        margin = min(self.refresh_margin_seconds, lifetime / 2)
        return _Token(f"{prefix} {access_token}", started + lifetime - margin)


def _consume(task: asyncio.Task[_Token]) -> None:
    # Every waiter may have been cancelled: read the outcome so asyncio does not report
    # an exception that was never retrieved (the failure is logged by _fly).
    if not task.cancelled():
        task.exception()


def _lifetime(expires_in: object, default: float) -> float:
    if isinstance(expires_in, bool):
        return default
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in)
        except ValueError:
            return default
    if isinstance(expires_in, int | float) and math.isfinite(expires_in) and expires_in > 0:
        return float(expires_in)
    return default


def _basic(basic: common_pb2.BasicAuth) -> str:
    _require("basic", username=basic.username, password=basic.password)
    # RFC 7617 with charset="UTF-8"; the subscriptions service refuses ':' in usernames.
    credentials = f"{basic.username}:{basic.password}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def _static_token(token: common_pb2.OAuth2AccessToken) -> str:
    _require("oauth2_access_token", access_token=token.access_token)
    prefix = token.header_prefix.strip() or "Bearer"
    return f"{prefix} {token.access_token}"


def _require(kind: str, **fields: str) -> None:
    empty = [name for name, value in fields.items() if not value]
    if empty:
        raise CredentialsUnusable(f"authentication {kind}: {', '.join(empty)} is empty")


def _one_line(text: str) -> str:
    return " ".join(text.split())
