"""``webhooks serve router``: ingest API, routing table, routing consumer, replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import router_pb2, router_pb2_grpc
from webhooks_config import Settings
from webhooks_grpc import keep_running, run_service
from webhooks_router.api import RouterServicer
from webhooks_router.bootstrap import build

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    components = await build(settings)
    js, feed, consumer = components.js, components.feed, components.consumer
    servicer = RouterServicer(js, components.table, settings, components.store)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        router_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def follow_subscriptions(stop: asyncio.Event) -> None:
        await keep_running("routing table feed", lambda: feed.run(js, stop), stop)

    async def route_events(stop: asyncio.Event) -> None:
        await keep_running("routing consumer", lambda: consumer.run(js, stop), stop)

    await run_service(
        "router",
        settings,
        register,
        background=[follow_subscriptions, route_events],
        on_shutdown=components.close,
        ready=ready,
        stop=stop,
    )
