"""``webhooks.projection.lag`` {projection: failures_view} (issue 14): records on ATTEMPTS
the failures view has not applied, the stream's last sequence less the projector's.

The last sequence is a STREAM.INFO round trip, asked here every few seconds by one task
(started only when metrics are exported), never from the exporter's thread.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from webhooks_failures.projector import Projector
from webhooks_messaging import ATTEMPTS
from webhooks_messaging.following import stream_end
from webhooks_messaging.waiting import sleep_unless
from webhooks_telemetry import metrics

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
FAILURES_VIEW = {"projection": "failures_view"}


class ProjectionLag:
    def __init__(self, js: JetStreamContext, projector: Projector) -> None:
        self._js = js
        self._projector = projector
        self.stream_end: int | None = None  # ATTEMPTS' last sequence; None: unread

    def export(self) -> None:
        metrics.observable_gauge(metrics.PROJECTION_LAG, self.points)

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                self.stream_end = await stream_end(self._js, ATTEMPTS)
            except Exception as error:  # the broker is away: the gauge goes absent
                if self.stream_end is not None:  # once per outage, not every few seconds
                    log.warning("projection lag: cannot read %s: %s", ATTEMPTS, error)
                self.stream_end = None
            if await sleep_unless(stop, REFRESH_SECONDS):
                return

    def points(self) -> list[tuple[float, metrics.Attributes]]:
        if self.stream_end is None:
            return []
        return [(max(0, self.stream_end - self._projector.applied), FAILURES_VIEW)]
