"""``webhooks serve sender``: the directory of endpoints, the delivery consumer, the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import sender_pb2, sender_pb2_grpc
from webhooks_config import Settings
from webhooks_grpc import keep_running, run_service
from webhooks_sender import delivery_metrics
from webhooks_sender.api import SenderServicer
from webhooks_sender.bootstrap import build

SERVICE_NAME = sender_pb2.DESCRIPTOR.services_by_name["SenderService"].full_name


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    delivery_metrics.configure(settings)
    parts = await build(settings)
    servicer = SenderServicer(parts.js, parts.directory, parts.feed, parts.deliverer)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        sender_pb2_grpc.add_SenderServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def follow_subscriptions(stop: asyncio.Event) -> None:
        await keep_running("endpoint directory feed", lambda: parts.feed.run(parts.js, stop), stop)

    async def watch_health(stop: asyncio.Event) -> None:
        await keep_running("endpoint health watch", lambda: parts.health.store.run(stop), stop)

    async def deliver(stop: asyncio.Event) -> None:
        await keep_running("delivery consumer", lambda: parts.consumer.run(stop), stop)

    await run_service(
        "sender",
        settings,
        register,
        background=[follow_subscriptions, watch_health, deliver],
        on_shutdown=parts.close,
        ready=ready,
        stop=stop,
    )
