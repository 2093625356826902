"""The client side of every command that talks to the subscriptions service: which token,
tenant and address to use, the gRPC channel, and turning a failed call into one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from webhooks.v1 import subscriptions_pb2_grpc
from webhooks_cli.errors import CliError
from webhooks_config import Settings
from webhooks_grpc.errors import describe_rpc_error

CALL_TIMEOUT_SECONDS = 30.0


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


@dataclass(frozen=True)
class Client:
    """A stub of the subscriptions service plus what every call sends with it."""

    address: str
    metadata: tuple[tuple[str, str], ...]
    stub: Any  # SubscriptionServiceStub: the generated grpc module has no type hints

    def call(self, method: str, request: Any) -> Any:
        rpc: Callable[..., Any] = getattr(self.stub, method)
        try:
            return rpc(request, metadata=self.metadata, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as err:
            raise CliError(rpc_error_line(err, self.address)) from None


def rpc_error_line(err: grpc.RpcError, address: str) -> str:
    code = err.code() if isinstance(err, grpc.Call) else None
    if code == grpc.StatusCode.UNAVAILABLE:
        return (
            f"the subscriptions service is not reachable at {address} "
            "(start the platform with `webhooks up`, or pass --address)"
        )
    return describe_rpc_error(err)


@contextmanager
def connect(settings: Settings, *, address: str, token: str, tenant: str) -> Iterator[Client]:
    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
    if tenant:  # empty: the token's own tenant (a token bound to one refuses any other)
        metadata += (("x-webhooks-tenant", tenant),)
    options = [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
    ]
    with grpc.insecure_channel(address, options=options) as channel:
        stub_class: Any = subscriptions_pb2_grpc.SubscriptionServiceStub
        stub = stub_class(channel)
        yield Client(address=address, metadata=metadata, stub=stub)
