"""Authentication of every RPC: bearer token to Principal, tenant selection, the interceptor.

Handlers call ``current_principal()``; the interceptor sets it inside the wrapped handler,
that is in the task that runs the handler, so it never leaks between RPCs.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from webhooks_config import Settings
from webhooks_grpc.tokens import PLATFORM_TENANT, TokenTable, load_tokens
from webhooks_messaging import is_valid_tenant

TENANT_HEADER = "x-webhooks-tenant"
# The tenant a client falls back on when its user named none (the CLI's 'default'): it
# serves a platform token that needs one, and a token bound to one tenant ignores it, so a
# client need not know which kind of token it holds. A tenant the user named goes in
# TENANT_HEADER and is enforced.
DEFAULT_TENANT_HEADER = "x-webhooks-default-tenant"

# Probes and tooling must work without a token.
EXEMPT_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    name: str  # the token's name, for audit trails
    tenant: str  # the tenant this call acts for
    platform: bool  # a platform token (may act for any tenant)


class AuthError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "webhooks_principal", default=None
)


def current_principal() -> Principal:
    """The caller of the RPC being handled."""
    principal = _principal.get()
    if principal is None:
        raise RuntimeError("no authenticated caller: not inside an authenticated RPC handler")
    return principal


def _header(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name.lower() == key:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None


def authenticate(
    tokens: TokenTable, metadata: Iterable[tuple[str, str | bytes]] | None
) -> Principal:
    """The Principal of a call's metadata, or AuthError with the status to return."""
    authorization = _header(metadata, "authorization")
    if authorization is None:
        raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "authorization: bearer token required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "authorization: expected Bearer <token>")
    entry = tokens.lookup(token)
    if entry is None:
        raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "authorization: invalid token")
    tenant = _header(metadata, TENANT_HEADER)
    if entry.tenant == PLATFORM_TENANT:
        if tenant is None:
            tenant = _header(metadata, DEFAULT_TENANT_HEADER)
        if tenant is None or tenant == "":
            raise AuthError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{TENANT_HEADER}: required with a platform token",
            )
        if not is_valid_tenant(tenant):
            raise AuthError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{TENANT_HEADER}: not a valid tenant id"
            )
        return Principal(name=entry.name, tenant=tenant, platform=True)
    if tenant is not None and tenant != entry.tenant:
        raise AuthError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{TENANT_HEADER}: this token cannot act for tenant {tenant!r}",
        )
    return Principal(name=entry.name, tenant=entry.tenant, platform=False)


Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


def _guard(behaviour: Behaviour, outcome: Principal | AuthError, streaming: bool) -> Behaviour:
    """``behaviour`` run as ``outcome``'s principal, or replaced by a rejection."""
    if streaming and inspect.isasyncgenfunction(behaviour):

        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            if isinstance(outcome, AuthError):
                await context.abort(outcome.code, outcome.message)
            # Each RPC runs in its own task, so the value never outlives this call.
            _principal.set(outcome)  # type: ignore[arg-type]
            async for response in behaviour(request, context):
                yield response

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(outcome, AuthError):
            await context.abort(outcome.code, outcome.message)
        reset = _principal.set(outcome)  # type: ignore[arg-type]
        try:
            return await behaviour(request, context)
        finally:
            _principal.reset(reset)

    return unary


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Resolves the caller of every RPC (except health and reflection) before its handler."""

    def __init__(self, tokens: TokenTable) -> None:
        self._tokens = tokens

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthInterceptor:
        return cls(load_tokens(settings))

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(EXEMPT_SERVICES):
            return handler
        outcome: Principal | AuthError
        try:
            outcome = authenticate(self._tokens, handler_call_details.invocation_metadata)
        except AuthError as err:
            log.info("refused %s: %s %s", method, err.code.name, err.message)
            outcome = err
        return _wrap(handler, outcome)


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any], outcome: Principal | AuthError
) -> grpc.RpcMethodHandler[Any, Any]:
    kinds: dict[tuple[bool, bool], tuple[str, Callable[..., grpc.RpcMethodHandler[Any, Any]]]] = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
    }
    attribute, factory = kinds[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attribute)
    return factory(
        _guard(behaviour, outcome, handler.response_streaming),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
