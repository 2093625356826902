"""The composition root: the sender's parts built from the settings and wired together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from webhooks_config import Settings
from webhooks_health import HealthStore
from webhooks_messaging import connect, declare_streams
from webhooks_messaging.deadletters import SENDER, SENDER_DIRECTORY, DeadLetters
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_secrets import SecretBox
from webhooks_sender.attempts import AttemptPublisher
from webhooks_sender.consumer import JobConsumer
from webhooks_sender.credentials import Credentials
from webhooks_sender.delivery import Deliverer
from webhooks_sender.directory import Directory
from webhooks_sender.guard import OutboundGuard
from webhooks_sender.health_gate import HealthGate
from webhooks_sender.rate_limit import RateLimiter
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.transport import Outbound

MAX_WSDL_BYTES = 4 * 1024 * 1024


@dataclass
class Components:
    nc: Client
    js: JetStreamContext
    directory: Directory
    feed: SubscriptionFeed[Directory]
    outbound: Outbound
    deliverer: Deliverer
    attempts: AttemptPublisher
    dead: DeadLetters
    health: HealthGate
    consumer: JobConsumer

    async def close(self) -> None:
        await self.health.close()
        await self.outbound.close()
        await self.attempts.close()
        # Letters still queued are stored before the connection goes (briefly).
        await asyncio.gather(self.dead.close(), self.feed.dead.close())
        await self.nc.drain()


async def build(settings: Settings) -> Components:
    """Connected to NATS, streams declared, the outbound session and the attempt publisher
    started: what the sender runs on."""
    nc = await connect(settings, "sender")
    js = nc.jetstream()
    await declare_streams(js, settings)
    directory = Directory(SecretBox.from_settings(settings))
    feed = SubscriptionFeed(directory, dead=DeadLetters(SENDER_DIRECTORY, nc))
    outbound = Outbound(
        OutboundGuard(settings.outbound_allow, settings.dns_servers),
        ca_bundle=settings.ca_bundle,
        timeout=settings.sender_timeout_seconds,
        limit=settings.sender_concurrency,
    )
    await outbound.start()

    async def fetch(url: str) -> bytes:  # a WSDL and its imports
        return await outbound.get(url, max_bytes=MAX_WSDL_BYTES)

    deliverer = Deliverer(
        outbound,
        SoapEnvelopes(fetch),
        Credentials(outbound.httpx_client),
        timeout=settings.sender_timeout_seconds,
    )
    attempts = AttemptPublisher(nc)
    await attempts.start()
    dead = DeadLetters(SENDER, nc)
    store = await HealthStore.open(js, replicas=settings.stream_replicas)
    health = HealthGate(js, store, settings)
    rate = RateLimiter(store)
    consumer = JobConsumer(js, directory, feed, deliverer, dead, settings, attempts, health, rate)
    return Components(
        nc, js, directory, feed, outbound, deliverer, attempts, dead, health, consumer
    )
