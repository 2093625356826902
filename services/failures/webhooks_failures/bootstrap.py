"""The composition root: the failures service's parts built from the settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext

from webhooks_config import Settings
from webhooks_failures.projector import Projector
from webhooks_failures.view import FailuresView, PostgresFailuresView, SQLiteFailuresView
from webhooks_messaging import connect, declare_streams
from webhooks_messaging.backlog import BacklogWatch
from webhooks_messaging.deadletters import FAILURES_PROJECTOR, DeadLetters


@dataclass
class Components:
    nc: Client
    js: JetStreamContext
    view: FailuresView
    projector: Projector
    backlog: BacklogWatch  # every stream's and durable's backlog, for the gauges

    async def close(self) -> None:
        await self.projector.dead.close()  # letters still queued, stored (briefly)
        await self.nc.drain()
        await asyncio.to_thread(self.view.close)


def open_view(settings: Settings) -> FailuresView:
    """The live view on the configured store (``WEBHOOKS_STORE``), its tables created."""
    if settings.store == "postgres":
        return PostgresFailuresView(settings.postgres_url, settings.postgres_schema)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteFailuresView(settings.sqlite_path("failures"))


async def build(settings: Settings) -> Components:
    """Connected to NATS, streams declared, the view open: what the service runs on."""
    nc = await connect(settings, "failures")
    js = nc.jetstream()
    await declare_streams(js, settings)
    view = await asyncio.to_thread(open_view, settings)
    projector = Projector(view, dead=DeadLetters(FAILURES_PROJECTOR, nc))
    return Components(nc, js, view, projector, BacklogWatch(js))
