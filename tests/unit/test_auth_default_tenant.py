"""The tenant a call acts for: a tenant the caller names is enforced, and a client's
fallback tenant (x-webhooks-default-tenant) serves a platform token only."""

from __future__ import annotations

import json

import grpc
import pytest

from webhooks_grpc.auth import DEFAULT_TENANT_HEADER, TENANT_HEADER, AuthError, authenticate
from webhooks_grpc.tokens import TokenTable

BOUND, PLATFORM = "bound-secret-1", "platform-secret-1"
TOKENS = TokenTable.from_json(
    json.dumps(
        [
            {"name": "acme-app", "token": BOUND, "tenant": "acme"},
            {"name": "platform", "token": PLATFORM, "tenant": "*"},
        ]
    ),
    "test",
)


def tenant_of(token: str, *headers: tuple[str, str]) -> str:
    return authenticate(TOKENS, [("authorization", f"Bearer {token}"), *headers]).tenant


def test_a_bound_token_ignores_the_fallback_and_acts_for_its_own() -> None:
    assert tenant_of(BOUND, (DEFAULT_TENANT_HEADER, "default")) == "acme"
    assert tenant_of(BOUND, (DEFAULT_TENANT_HEADER, "default"), (TENANT_HEADER, "acme")) == "acme"


def test_a_named_tenant_is_enforced_even_with_a_fallback() -> None:
    with pytest.raises(AuthError) as caught:
        tenant_of(BOUND, (DEFAULT_TENANT_HEADER, "acme"), (TENANT_HEADER, "globex"))
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_platform_token_takes_the_named_tenant_else_the_fallback() -> None:
    assert tenant_of(PLATFORM, (DEFAULT_TENANT_HEADER, "default")) == "default"
    assert tenant_of(PLATFORM, (DEFAULT_TENANT_HEADER, "x"), (TENANT_HEADER, "globex")) == "globex"
    for headers in ((), ((DEFAULT_TENANT_HEADER, ""),), ((DEFAULT_TENANT_HEADER, "a b"),)):
        with pytest.raises(AuthError) as caught:
            tenant_of(PLATFORM, *headers)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
