"""``webhooks serve subscriptions``: the gRPC service, its projector and its outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from webhooks_config import Settings
from webhooks_grpc import run_service
from webhooks_subscriptions.api import SubscriptionsServicer
from webhooks_subscriptions.bootstrap import build
from webhooks_subscriptions.certificate_expiry import CertificateExpiry
from webhooks_subscriptions.lag import Lags

SERVICE_NAME = subscriptions_pb2.DESCRIPTOR.services_by_name["SubscriptionService"].full_name


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    components = await asyncio.to_thread(build, settings)
    # The listing is current before the first list request is served.
    await asyncio.to_thread(components.projector.catch_up)
    # SQLite takes one writer at a time: more threads would only fight over it and the GIL;
    # PostgreSQL overlaps round trips (figures: bench/README.md).
    workers = 1 if settings.store == "sqlite" else 4
    health = components.health
    servicer = SubscriptionsServicer(
        components.app, components.projector, components.relay, health, workers
    )
    expiry = CertificateExpiry(components.app, components.projector, health, settings)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        subscriptions_pb2_grpc.add_SubscriptionServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def project(stop: asyncio.Event) -> None:
        await components.projector.run(stop, settings.relay_poll_seconds)

    async def close() -> None:
        await asyncio.to_thread(components.close)

    background = [components.relay.run, project, health.run, expiry.run]
    if settings.metrics_addresses.get("subscriptions") or settings.otlp_endpoint:
        # The lag gauges' query every few seconds only when something reads them.
        lags = Lags(components.app, components.relay, components.projector)
        lags.export()
        health.export()
        background.append(lags.run)
    await run_service(
        "subscriptions",
        settings,
        register,
        background=background,
        on_shutdown=close,
        ready=ready,
        stop=stop,
    )
