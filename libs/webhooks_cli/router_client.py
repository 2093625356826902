"""The client side of the commands that talk to the router (``events publish``, ``replay``):
its address (``--address``, else WEBHOOKS_ROUTER_ADDR / settings.address("router")), the
same token and tenant as every other command, and failed calls as one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from webhooks.v1 import router_pb2_grpc
from webhooks_cli.client import CALL_TIMEOUT_SECONDS, resolve_token
from webhooks_cli.errors import CliError
from webhooks_config import Settings
from webhooks_grpc.errors import describe_rpc_error


@dataclass(frozen=True)
class RouterClient:
    """A RouterService stub plus what every call sends with it."""

    address: str
    metadata: tuple[tuple[str, str], ...]
    stub: Any  # RouterServiceStub: the generated grpc module has no type hints
    max_message_bytes: int = 4 * 1024 * 1024

    def call(self, method: str, request: Any, timeout: float | None = CALL_TIMEOUT_SECONDS) -> Any:
        rpc: Callable[..., Any] = getattr(self.stub, method)
        try:
            return rpc(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as err:
            raise CliError(router_error_line(err, self.address)) from None

    def stream(self, method: str, request: Any) -> Iterator[Any]:
        """A server-streaming call; no deadline (a replay takes as long as it takes)."""
        rpc: Callable[..., Any] = getattr(self.stub, method)
        try:
            yield from rpc(request, metadata=self.metadata)
        except grpc.RpcError as err:
            raise CliError(router_error_line(err, self.address)) from None


RouterHandler = Callable[[argparse.Namespace, RouterClient], int]


def router_error_line(err: grpc.RpcError, address: str) -> str:
    code = err.code() if isinstance(err, grpc.Call) else None
    if code == grpc.StatusCode.UNAVAILABLE:
        return (
            f"the router is not reachable at {address} "
            "(start the platform with `webhooks up`, or pass --address)"
        )
    return describe_rpc_error(err)


@contextmanager
def connect_router(
    settings: Settings, *, address: str, token: str, tenant: str
) -> Iterator[RouterClient]:
    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
    if tenant:
        metadata += (("x-webhooks-tenant", tenant),)
    options = [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
    ]
    with grpc.insecure_channel(address, options=options) as channel:
        stub_class: Any = router_pb2_grpc.RouterServiceStub
        yield RouterClient(
            address=address,
            metadata=metadata,
            stub=stub_class(channel),
            max_message_bytes=settings.grpc_max_message_bytes,
        )


def run_router_command(args: argparse.Namespace, settings: Settings) -> int:
    """Connect to the router and run the command's ``router_handler``."""
    address = args.address or settings.address("router")
    token = resolve_token(args.token, settings)
    tenant = settings.tenant if args.tenant is None else args.tenant
    handler: RouterHandler = args.router_handler
    with connect_router(settings, address=address, token=token, tenant=tenant) as client:
        return handler(args, client)
