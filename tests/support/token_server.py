"""A small real OAuth 2.0 token endpoint (RFC 6749 §4.3, §4.4) over HTTPS, for tests.

Built on ``HttpsReceiver`` (same ``TestPki``, same event loop)::

    async with TokenServer(pki, client_id="sender", client_secret="s3cret",
                           scope="hooks.write", users={"alice": "pw"}) as tokens:
        tokens.url                      # https://127.0.0.1:<port>/token
        tokens.requests                 # token requests answered so far (any outcome;
                                        # a delayed one counts once answered)
        tokens.received                 # those requests (headers, form body), in order
        tokens.issued                   # access tokens handed out, in order
        tokens.is_valid(token)          # issued, not expired, not revoked
        tokens.revoke(token)            # or tokens.revoke() for all of them
        tokens.fail(TokenServer.server_error())          # every request answers this ...
        tokens.fail(TokenServer.oauth_error("invalid_client", 401))
        tokens.fail(None)                                # ... until told otherwise
        tokens.delay = 2.0              # answer slowly
        tokens.expires_in = 1           # lifetime of the next tokens (None: not sent)
        receiver.reply("/hook", tokens.protected())      # 401 unless a valid token is sent

What it checks on every request: POST with a form body; client authentication as
configured (``client_secret_basic``: an ``Authorization: Basic`` header and no secret in
the form; ``client_secret_post``: ``client_id`` and ``client_secret`` in the form and no
Authorization header); ``grant_type`` is ``client_credentials`` or ``password`` (with a
known username and its password); the requested scope equals ``scope`` when one is
configured. Failures answer the RFC 6749 §5.2 JSON error (``invalid_client`` 401,
``invalid_grant`` / ``invalid_scope`` / ``unsupported_grant_type`` / ``invalid_request``
400). The Basic credentials are compared as sent, without form-decoding them (test
secrets are plain ASCII).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from tests.support.receivers import HttpsReceiver, Received, Reply, Responder, TestPki

TOKEN_PATH = "/token"
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post"]


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    grant_type: str
    scope: str
    username: str
    expires_at: float | None  # time.time(); None when issued without expires_in


class TokenServer:
    def __init__(
        self,
        pki: TestPki,
        *,
        client_id: str = "webhooks-sender",
        client_secret: str = "client-secret-0f3c9a7e",
        auth_method: ClientAuthMethod = "client_secret_basic",
        scope: str | None = None,
        users: Mapping[str, str] | None = None,
        expires_in: int | None = 3600,
        token_type: str = "Bearer",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_method: ClientAuthMethod = auth_method
        self.scope = scope  # None: any scope accepted
        self.users = dict(users or {})
        self.expires_in = expires_in
        self.token_type = token_type
        self.delay = 0.0
        self.failure: Reply | None = None
        self.tokens: dict[str, IssuedToken] = {}
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.receiver = HttpsReceiver(pki)
        self.receiver.reply(TOKEN_PATH, self._answer)

    # -- what tests use

    @property
    def url(self) -> str:
        return self.receiver.url(TOKEN_PATH)

    @property
    def received(self) -> list[Received]:
        return self.receiver.at(TOKEN_PATH)

    @property
    def requests(self) -> int:
        return len(self.received)

    def fail(self, reply: Reply | None) -> None:
        """Answer every token request with ``reply`` from now on; None to work again."""
        self.failure = reply

    @staticmethod
    def server_error(status: int = 500) -> Reply:
        return Reply(status, b"internal error", {"Content-Type": "text/plain"})

    @staticmethod
    def oauth_error(error: str, status: int = 400, description: str | None = None) -> Reply:
        document = {"error": error}
        if description is not None:
            document["error_description"] = description
        return _json(status, document)

    def is_valid(self, access_token: str) -> bool:
        issued = self.tokens.get(access_token)
        if issued is None or access_token in self.revoked:
            return False
        return issued.expires_at is None or time.time() < issued.expires_at

    def revoke(self, access_token: str | None = None) -> None:
        """Revoke one token, or every token issued so far."""
        self.revoked.update([access_token] if access_token is not None else self.tokens)

    def protected(self, ok: Reply | None = None) -> Responder:
        """A receiver's reply: ``ok`` (204) for a valid ``<type> <token>``, else 401."""
        accepted = ok or Reply(204)

        def answer(request: Received) -> Reply:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == self.token_type.lower() and self.is_valid(token):
                return accepted
            return Reply(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

        return answer

    async def start(self) -> TokenServer:
        await self.receiver.start()
        return self

    async def stop(self) -> None:
        await self.receiver.stop()

    async def __aenter__(self) -> TokenServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the endpoint

    def _answer(self, request: Received) -> Reply:
        reply = self.failure or self._grant(request)
        if self.delay:
            return Reply(reply.status, reply.body, reply.headers, self.delay)
        return reply

    def _grant(self, request: Received) -> Reply:
        if request.method != "POST":
            return _error(400, "invalid_request", "POST required")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return _error(400, "invalid_request", "form body required")
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        refused = self._authenticate_client(request, form)
        if refused is not None:
            return refused
        grant_type = form.get("grant_type", "")
        username = ""
        if grant_type == "password":
            username = form.get("username", "")
            if username not in self.users or form.get("password") != self.users[username]:
                return _error(400, "invalid_grant", "bad resource owner credentials")
        elif grant_type != "client_credentials":
            return _error(400, "unsupported_grant_type", None)
        scope = form.get("scope", "")
        if self.scope is not None and set(scope.split()) != set(self.scope.split()):
            return _error(400, "invalid_scope", None)
        access_token = secrets.token_urlsafe(24)
        expires_at = None if self.expires_in is None else time.time() + self.expires_in
        self.tokens[access_token] = IssuedToken(
            access_token, grant_type, scope, username, expires_at
        )
        self.issued.append(access_token)
        document: dict[str, object] = {"access_token": access_token, "token_type": self.token_type}
        if self.expires_in is not None:
            document["expires_in"] = self.expires_in
        if scope:
            document["scope"] = scope
        return _json(200, document)

    def _authenticate_client(self, request: Received, form: Mapping[str, str]) -> Reply | None:
        header = request.headers.get("authorization")
        if self.auth_method == "client_secret_basic":
            if "client_secret" in form:
                return _error(400, "invalid_request", "client_secret in the body")
            scheme, _, encoded = (header or "").partition(" ")
            try:
                decoded = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
            if scheme.lower() != "basic" or (client_id, client_secret) != (
                self.client_id,
                self.client_secret,
            ):
                return _error(401, "invalid_client", None, basic_challenge=True)
            return None
        if header is not None:
            return _error(400, "invalid_request", "client authentication is in the form")
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _error(401, "invalid_client", None)
        return None


def _json(status: int, document: Mapping[str, object]) -> Reply:
    return Reply(
        status,
        json.dumps(document).encode(),
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _error(
    status: int, error: str, description: str | None, *, basic_challenge: bool = False
) -> Reply:
    reply = TokenServer.oauth_error(error, status, description)
    if basic_challenge:
        headers = {**reply.headers, "WWW-Authenticate": 'Basic realm="token"'}
        return Reply(reply.status, reply.body, headers)
    return reply
