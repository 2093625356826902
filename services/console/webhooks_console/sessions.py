"""Who is signed in: the session cookie and what it holds.

The cookie is Flask's signed session with the token sealed inside (Fernet, the console's
own keys), so neither the browser nor anything logging cookies sees the token in
plaintext. HttpOnly and SameSite=Lax always; Secure whenever the request came over HTTPS
(directly, or through ``WEBHOOKS_CONSOLE_PROXY_HOPS`` trusted proxies). A sign-in lasts
``WEBHOOKS_CONSOLE_SESSION_MINUTES``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface

from webhooks_config import ConfigError, Settings
from webhooks_console.gateway import Caller
from webhooks_secrets import SecretBox, SecretUnreadable, ensure_key_file

SESSION_COOKIE = "webhooks_console"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return has_request_context() and request.is_secure


def session_keys(settings: Settings) -> list[str]:
    if settings.console_session_keys:
        return list(settings.console_session_keys)
    return ensure_key_file(settings.console_session_keys_file)


class Sessions:
    def __init__(self, settings: Settings) -> None:
        keys = session_keys(settings)
        try:
            self.box = SecretBox(keys)
        except ConfigError:
            raise ConfigError(
                "WEBHOOKS_CONSOLE_SESSION_KEYS: each key must be 32 url-safe base64-encoded "
                "bytes (make one with `webhooks secret-key`)"
            ) from None
        self.signing_key = keys[0]
        self.lifetime = settings.console_session_seconds

    def configure(self, app: Flask) -> None:
        app.secret_key = self.signing_key
        app.session_interface = ConsoleSessionInterface()
        app.config.update(
            SESSION_COOKIE_NAME=SESSION_COOKIE,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            PERMANENT_SESSION_LIFETIME=timedelta(seconds=self.lifetime),
        )

    def sign_in(self, caller: Caller) -> None:
        session.clear()
        session.permanent = True
        session["token"] = self.box.seal(caller.token)
        session["tenant"] = caller.tenant
        session["since"] = int(time.time())

    def remember_tenant(self, tenant: str) -> None:
        """The organisation a tenant-bound token is bound to, once a reply names it."""
        if session.get("bound_tenant") != tenant:
            session["bound_tenant"] = tenant

    def organisation(self) -> str:
        """Who the header names: the organisation named at sign-in (platform token), the
        one the token is bound to once known, else ""."""
        return str(session.get("tenant") or session.get("bound_tenant") or "")

    def sign_out(self) -> None:
        session.clear()

    def caller(self) -> Caller | None:
        """The signed-in caller, or None (never signed in, expired, or a key rotated out)."""
        sealed, since = session.get("token"), session.get("since")
        if not isinstance(sealed, str) or not isinstance(since, int):
            return None
        if time.time() - since > self.lifetime:
            return None
        try:
            token = self.box.open(sealed)
        except SecretUnreadable:
            return None
        return Caller(token=token, tenant=str(session.get("tenant", "")))
