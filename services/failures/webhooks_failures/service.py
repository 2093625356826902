"""``webhooks serve failures``: the projector of ATTEMPTS into the view, retention, the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc.aio

from webhooks.v1 import failures_pb2, failures_pb2_grpc
from webhooks_config import Settings
from webhooks_failures.api import FailuresServicer
from webhooks_failures.projector import Projector
from webhooks_failures.view import FailuresView, PostgresFailuresView, SQLiteFailuresView
from webhooks_grpc import keep_running, run_service
from webhooks_messaging import connect, declare_streams
from webhooks_messaging.deadletters import FAILURES_PROJECTOR, DeadLetters

SERVICE_NAME = failures_pb2.DESCRIPTOR.services_by_name["FailuresService"].full_name


def open_view(settings: Settings) -> FailuresView:
    if settings.store == "postgres":
        return PostgresFailuresView(settings.postgres_url, settings.postgres_schema)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteFailuresView(settings.sqlite_path("failures"))


async def run(
    settings: Settings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    nc = await connect(settings, "failures")
    js = nc.jetstream()
    await declare_streams(js, settings)
    view = await asyncio.to_thread(open_view, settings)
    projector = Projector(view, dead=DeadLetters(FAILURES_PROJECTOR, nc))
    servicer = FailuresServicer(js, view, projector)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        failures_pb2_grpc.add_FailuresServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def project(stop: asyncio.Event) -> None:
        await keep_running("failures projector", lambda: projector.run(js, stop), stop)

    async def retain(stop: asyncio.Event) -> None:
        await keep_running(
            "failures retention",
            lambda: projector.expire_loop(stop, settings.failures_max_age_seconds),
            stop,
        )

    async def close() -> None:
        await projector.dead.close()  # letters still queued, stored (briefly)
        await nc.drain()
        await asyncio.to_thread(view.close)

    await run_service(
        "failures",
        settings,
        register,
        background=[project, retain],
        on_shutdown=close,
        ready=ready,
        stop=stop,
    )
