"""``webhooks serve router``: ingest API, routing table, routing consumer, replay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import router_pb2, router_pb2_grpc
from webhooks_config import Settings
from webhooks_grpc import keep_running, run_service
from webhooks_messaging import EVENTS, connect, declare_streams
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_router.api import RouterServicer
from webhooks_router.consumer import EventConsumer
from webhooks_router.deadletters import DeadLetters, table_dead_letters
from webhooks_router.publishing import StreamStore
from webhooks_router.routes import RoutingTable

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name

log = logging.getLogger(__name__)


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    nc = await connect(settings, "router")
    js = nc.jetstream()
    await declare_streams(js, settings)
    table = RoutingTable()
    feed = SubscriptionFeed(table, dead=table_dead_letters(nc))
    dead = DeadLetters(nc)
    consumer = EventConsumer(table, feed, dead, nc)
    store = StreamStore(nc, EVENTS)
    await store.start()
    servicer = RouterServicer(js, table, settings, store)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        router_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def follow_subscriptions(stop: asyncio.Event) -> None:
        await keep_running("routing table feed", lambda: feed.run(js, stop), stop)

    async def route_events(stop: asyncio.Event) -> None:
        await keep_running("routing consumer", lambda: consumer.run(js, stop), stop)

    async def close() -> None:
        # Letters still queued are stored before the connection goes (briefly).
        await asyncio.gather(dead.close(), feed.dead.close())
        await nc.drain()

    await run_service(
        "router",
        settings,
        register,
        background=[follow_subscriptions, route_events],
        on_shutdown=close,
        ready=ready,
        stop=stop,
    )
