"""``webhooks serve failures``: the projector of ATTEMPTS into the view, retention, the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import failures_pb2, failures_pb2_grpc
from webhooks_config import Settings
from webhooks_failures.api import FailuresServicer
from webhooks_failures.bootstrap import build
from webhooks_failures.lag import ProjectionLag
from webhooks_grpc import keep_running, run_service
from webhooks_messaging.backlog import export_gauges

SERVICE_NAME = failures_pb2.DESCRIPTOR.services_by_name["FailuresService"].full_name


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    components = await build(settings)
    projector = components.projector
    servicer = FailuresServicer(components.js, components.view, projector)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        failures_pb2_grpc.add_FailuresServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def project(stop: asyncio.Event) -> None:
        await keep_running("failures projector", lambda: projector.run(components.js, stop), stop)

    async def retain(stop: asyncio.Event) -> None:
        await keep_running(
            "failures retention",
            lambda: projector.expire_loop(stop, settings.failures_max_age_seconds),
            stop,
        )

    async def watch_backlog(stop: asyncio.Event) -> None:
        await keep_running("backlog watch", lambda: components.backlog.run(stop), stop)

    # The stream and consumer gauges come from this one process, and only when something
    # reads them (a Prometheus endpoint or OTLP): otherwise the watch would cost NATS
    # requests every few seconds for nobody.
    lag = ProjectionLag(components.js, projector)

    async def watch_lag(stop: asyncio.Event) -> None:
        await keep_running("failures view lag", lambda: lag.run(stop), stop)

    background = [project, retain]
    if settings.metrics_addresses.get("failures") or settings.otlp_endpoint:
        export_gauges(components.backlog)
        background += [watch_backlog, watch_lag]
        lag.export()
    await run_service(
        "failures",
        settings,
        register,
        background=background,
        on_shutdown=components.close,
        ready=ready,
        stop=stop,
    )
