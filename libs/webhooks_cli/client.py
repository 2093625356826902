"""The client side of every command: which token, tenant and address to use, the gRPC
channel to a service, and turning a failed call into one line."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from webhooks_cli.errors import CliError, rpc_error_text
from webhooks_client.stubs import STUBS
from webhooks_config import PREFIX, Settings

CALL_TIMEOUT_SECONDS = 30.0
# webhooks_grpc.auth's (importing it would load the services' NATS and telemetry code):
# tests/unit/test_cli_startup.py holds them equal.
TENANT_HEADER = "x-webhooks-tenant"
DEFAULT_TENANT_HEADER = "x-webhooks-default-tenant"


def resolve_token(flag: str | None, settings: Settings) -> str:
    """--token, else WEBHOOKS_TOKEN, else the development token ``webhooks up`` wrote."""
    if flag:
        return flag
    if settings.token:
        return settings.token
    path = settings.dev_token_file
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        raise CliError(
            f"no token: pass --token, set WEBHOOKS_TOKEN, or run `webhooks up` "
            f"(it writes a development token to {path})"
        )
    return token


def requested_tenant(flag: str | None, settings: Settings) -> str | None:
    """The tenant the user named: --tenant, else WEBHOOKS_TENANT if set; None if neither
    (then settings.tenant is only a fallback for a platform token, see ``connect``)."""
    if flag is not None:
        return flag
    if PREFIX + "TENANT" in os.environ:
        return settings.tenant
    return None


@dataclass(frozen=True)
class Client:
    """A stub of one service plus what every call sends with it."""

    address: str
    metadata: tuple[tuple[str, str], ...]
    stub: Any  # the generated grpc modules have no type hints
    settings: Settings
    service: str = "the subscriptions service"

    def call(self, method: str, request: Any, timeout: float | None = CALL_TIMEOUT_SECONDS) -> Any:
        rpc: Callable[..., Any] = getattr(self.stub, method)
        try:
            return rpc(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as err:
            raise CliError(rpc_error_line(err, self.address, self.service)) from None

    def pages(self, method: str, request: Any, items: str, *, every: bool) -> Any:
        """The page the request asks for or, with ``every``, that page and all after it
        merged into one response (``items``: the response's repeated field); the merged
        response's next_page_token is the last page's (empty once all were read)."""
        result = self.call(method, request)
        while every and result.next_page_token:
            request.page_token = result.next_page_token
            page = self.call(method, request)
            getattr(result, items).extend(getattr(page, items))
            result.next_page_token = page.next_page_token
        return result

    def stream(self, method: str, request: Any) -> Iterator[Any]:
        """A server-streaming call; no deadline (a replay takes as long as it takes)."""
        rpc: Callable[..., Any] = getattr(self.stub, method)
        try:
            yield from rpc(request, metadata=self.metadata)
        except grpc.RpcError as err:
            raise CliError(rpc_error_line(err, self.address, self.service)) from None

    @contextmanager
    def other(self, service: str) -> Iterator[Client]:
        """A client of another service at its configured address, same token and tenant."""
        with _channel(self.settings, self.settings.address(service)) as channel:
            stub_class, label = STUBS[service]
            yield Client(
                address=self.settings.address(service),
                metadata=self.metadata,
                stub=stub_class(channel),
                settings=self.settings,
                service=label,
            )


@contextmanager
def _channel(settings: Settings, address: str) -> Iterator[grpc.Channel]:
    options = [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
    ]
    with grpc.insecure_channel(address, options=options) as channel:
        yield channel


def rpc_error_line(
    err: grpc.RpcError, address: str, service: str = "the subscriptions service"
) -> str:
    code = err.code() if isinstance(err, grpc.Call) else None
    if code == grpc.StatusCode.UNAVAILABLE:
        return (
            f"{service} is not reachable at {address} "
            "(start the platform with `webhooks up`, or pass --address)"
        )
    return rpc_error_text(err)


@contextmanager
def connect(
    settings: Settings,
    *,
    address: str,
    token: str,
    tenant: str | None,
    service: str = "subscriptions",
) -> Iterator[Client]:
    """``tenant``: the one the user named (``requested_tenant``), enforced by the server;
    "" the token's own; None: settings.tenant for a platform token, the token's own for a
    token bound to one tenant (which the server alone knows)."""
    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
    if tenant is None:
        metadata += ((DEFAULT_TENANT_HEADER, settings.tenant),)
    elif tenant:  # empty: the token's own tenant (a token bound to one refuses any other)
        metadata += ((TENANT_HEADER, tenant),)
    stub_class, label = STUBS[service]
    with _channel(settings, address) as channel:
        yield Client(
            address=address,
            metadata=metadata,
            stub=stub_class(channel),
            settings=settings,
            service=label,
        )
