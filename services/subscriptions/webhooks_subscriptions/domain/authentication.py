"""The rules a subscription's authentication obeys, and its canonical form.

Pure, like ``rules``: what a caller wrote becomes ``{"kind": ..., <that kind's fields>}`` or
InvalidField with the value's path under ``authentication`` (InvalidFields naming each bad
field when several are). Messages never repeat a secret.
Which fields each kind has is ``webhooks_catalogue.authentication``; the secrets are sealed
by the application, not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from webhooks_catalogue import limits
from webhooks_catalogue.authentication import AUTH_FIELDS, AUTH_KINDS, SECRET_FIELDS
from webhooks_subscriptions.domain.errors import InvalidField, collect
from webhooks_subscriptions.domain.rules import validate_url

_HEADER_PREFIX = re.compile(r"[A-Za-z0-9._~+/-]{1,32}")
# RFC 6749 scope: space-separated tokens of printable ASCII except '"' and '\\'.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*")
# Whether each authentication field is required, and its maximum length (which fields
# each kind has: webhooks_catalogue.authentication).
_AUTH_FIELD_RULES: dict[str, tuple[bool, int]] = {
    "username": (True, limits.USERNAME_LENGTH),
    "password": (True, limits.PASSWORD_LENGTH),
    "header_prefix": (False, limits.HEADER_PREFIX_LENGTH),
    "access_token": (True, limits.ACCESS_TOKEN_LENGTH),
    "token_url": (True, limits.URL_LENGTH),
    "scope": (False, limits.OAUTH_SCOPE_LENGTH),
    "client_id": (True, limits.OAUTH_CLIENT_ID_LENGTH),
    "client_secret": (True, limits.OAUTH_CLIENT_SECRET_LENGTH),
}


def validate_authentication(
    auth: Mapping[str, Any] | None,
    *,
    allow_http_loopback: bool = False,
    require_secrets: bool = True,
) -> dict[str, Any]:
    """The canonical authentication: ``{"kind": ..., <that kind's fields>}``.

    ``require_secrets=False`` lets an empty secret through, for an update that keeps the
    stored secret of an unchanged kind; the caller fills it in afterwards.
    """
    auth = auth or {}
    kind = auth.get("kind") or "none"
    if kind == "none" and any(auth.get(key) for key in auth if key != "kind"):
        raise InvalidField("authentication", "kind is required when credentials are given")
    if kind not in AUTH_KINDS:
        raise InvalidField("authentication", f"kind must be one of {', '.join(AUTH_KINDS)}")
    checks = (
        _field_check(auth, kind, name, require_secrets, allow_http_loopback)
        for name in AUTH_FIELDS[kind]
    )
    values = collect(*checks)
    return {"kind": kind, **dict(zip(AUTH_FIELDS[kind], values, strict=True))}


def _field_check(
    auth: Mapping[str, Any], kind: str, name: str, require_secrets: bool, allow_http_loopback: bool
) -> Callable[[], str]:
    """The check of one field of the kind, on its own: its canonical value or the first
    problem with it."""

    def check() -> str:
        required, limit = _AUTH_FIELD_RULES[name]
        field = f"authentication.{kind}.{name}"
        value = auth.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidField(field, "must be a string")
        if name not in SECRET_FIELDS:
            value = value.strip()
        if not value and required and (require_secrets or name not in SECRET_FIELDS):
            raise InvalidField(field, "is required")
        if len(value) > limit:
            raise InvalidField(field, f"must be at most {limit} characters, got {len(value)}")
        if not value.isprintable():
            raise InvalidField(field, "must not contain control characters or line breaks")
        return _formatted(kind, name, field, value, allow_http_loopback)

    return check


def _formatted(kind: str, name: str, field: str, value: str, allow_http_loopback: bool) -> str:
    if name == "username" and kind == "basic" and ":" in value:
        # RFC 7617: the user-id ends at the first colon.
        raise InvalidField(field, "must not contain ':'")
    if name == "header_prefix":
        value = value or "Bearer"
        if not _HEADER_PREFIX.fullmatch(value):
            raise InvalidField(field, "must be one word such as Bearer")
    # The token is sent verbatim in an HTTP header, which carries ASCII only.
    if name == "access_token" and not value.isascii():
        raise InvalidField(field, "must be ASCII")
    if name == "token_url":
        return validate_url(value, field, allow_http_loopback=allow_http_loopback)
    if name == "scope" and value and not _SCOPE.fullmatch(value):
        raise InvalidField(field, "must be space-separated OAuth scope names")
    return value
