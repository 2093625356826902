"""The composition root: the router's parts built from the settings and wired together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from webhooks_config import Settings
from webhooks_messaging import EVENTS, connect, declare_streams
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_router.consumer import EventConsumer
from webhooks_router.deadletters import DeadLetters, table_dead_letters
from webhooks_router.publishing import StreamStore
from webhooks_router.routes import RoutingTable


@dataclass
class Components:
    nc: Client
    js: JetStreamContext
    table: RoutingTable
    feed: SubscriptionFeed[RoutingTable]
    dead: DeadLetters
    consumer: EventConsumer
    store: StreamStore

    async def close(self) -> None:
        # Letters still queued are stored before the connection goes (briefly).
        await asyncio.gather(self.dead.close(), self.feed.dead.close())
        await self.nc.drain()


async def build(settings: Settings) -> Components:
    """Connected to NATS, streams declared, the ingest's stream store started: what the
    router runs on (its routing table filled by the feed once running)."""
    nc = await connect(settings, "router")
    js = nc.jetstream()
    await declare_streams(js, settings)
    table = RoutingTable()
    feed = SubscriptionFeed(table, dead=table_dead_letters(nc))
    dead = DeadLetters(nc)
    consumer = EventConsumer(table, feed, dead, nc)
    store = StreamStore(nc, EVENTS)
    await store.start()
    return Components(nc, js, table, feed, dead, consumer, store)
