"""``webhooks serve sender``: the directory of endpoints, the delivery consumer, the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import sender_pb2, sender_pb2_grpc
from webhooks_config import Settings
from webhooks_grpc import keep_running, run_service
from webhooks_messaging import connect, declare_streams
from webhooks_messaging.deadletters import SENDER, SENDER_DIRECTORY, DeadLetters
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_secrets import SecretBox
from webhooks_sender.api import SenderServicer
from webhooks_sender.attempts import AttemptPublisher
from webhooks_sender.consumer import JobConsumer
from webhooks_sender.credentials import Credentials
from webhooks_sender.delivery import Deliverer
from webhooks_sender.directory import Directory
from webhooks_sender.guard import OutboundGuard
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.transport import Outbound

SERVICE_NAME = sender_pb2.DESCRIPTOR.services_by_name["SenderService"].full_name
MAX_WSDL_BYTES = 4 * 1024 * 1024


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
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

    async def fetch(url: str) -> bytes:
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
    consumer = JobConsumer(
        js,
        directory,
        feed,
        deliverer,
        dead,
        settings,
        attempts,
    )
    servicer = SenderServicer(js, directory, feed, deliverer)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        sender_pb2_grpc.add_SenderServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def follow_subscriptions(stop: asyncio.Event) -> None:
        await keep_running("endpoint directory feed", lambda: feed.run(js, stop), stop)

    async def deliver(stop: asyncio.Event) -> None:
        await keep_running("delivery consumer", lambda: consumer.run(stop), stop)

    async def close() -> None:
        await outbound.close()
        await attempts.close()
        # Letters still queued are stored before the connection goes (briefly).
        await asyncio.gather(dead.close(), feed.dead.close())
        await nc.drain()

    await run_service(
        "sender",
        settings,
        register,
        background=[follow_subscriptions, deliver],
        on_shutdown=close,
        ready=ready,
        stop=stop,
    )
