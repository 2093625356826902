"""The console's only way to the platform: the services' gRPC APIs, with the signed-in
person's token and organisation on every call.

One channel per service for the life of the process (gRPC channels are thread-safe and
reconnect by themselves); the stubs are the clients' (``webhooks_client.stubs.STUBS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from webhooks_client.stubs import STUBS
from webhooks_config import Settings
from webhooks_grpc.auth import TENANT_HEADER

CALL_TIMEOUT_SECONDS = 15.0
SERVICES = ("subscriptions", "sender", "failures")


@dataclass(frozen=True)
class Caller:
    """Who the console acts for: a token and, for a platform token, the organisation."""

    token: str
    tenant: str  # "": the token's own organisation

    def metadata(self) -> tuple[tuple[str, str], ...]:
        metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {self.token}"),)
        if self.tenant:
            metadata += ((TENANT_HEADER, self.tenant),)
        return metadata


class Gateway:
    def __init__(self, settings: Settings) -> None:
        options = [
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ]
        self.addresses = {service: settings.address(service) for service in SERVICES}
        self._channels = {
            service: grpc.insecure_channel(address, options=options)
            for service, address in self.addresses.items()
        }
        self._stubs = {
            service: STUBS[service][0](channel) for service, channel in self._channels.items()
        }

    def call(
        self,
        caller: Caller,
        service: str,
        method: str,
        request: Any,
        timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> Any:
        """One unary call; a grpc.RpcError goes to the caller (views decide what it means)."""
        rpc: Callable[..., Any] = getattr(self._stubs[service], method)
        return rpc(request, metadata=caller.metadata(), timeout=timeout)

    def service_label(self, service: str) -> str:
        return str(STUBS[service][1])

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
