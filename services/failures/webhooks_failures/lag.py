"""``webhooks.projection.lag`` {projection: failures_view} (issue 14): how far the failures
view is behind on ATTEMPTS, the last sequence of the records it reads less the projector's.

The view does not read first attempts that succeeded (``projector.SUBJECTS``), so the
stream's own last sequence is no measure: after a run of deliveries that never failed it
stays ahead of a view that has applied everything. ``run`` reads the last sequence of the
view's subjects every few seconds (one small request, ``StreamFollower.stream_end``), and
the gauge's callback reads what it cached: it never waits on NATS from the exporter's
thread. The figure counts stream sequences, the skipped records between included: 0 when
the view has applied everything it reads.
"""

from __future__ import annotations

import logging
import time
from asyncio import Event

from nats.js import JetStreamContext

from webhooks_failures.projector import Projector
from webhooks_messaging.backlog import REFRESH_SECONDS, STALE_AFTER_SECONDS
from webhooks_messaging.waiting import sleep_unless
from webhooks_telemetry import metrics

FAILURES_VIEW = {"projection": "failures_view"}

log = logging.getLogger(__name__)


class ProjectionLag:
    def __init__(
        self, js: JetStreamContext, projector: Projector, interval: float = REFRESH_SECONDS
    ) -> None:
        self._js = js
        self._projector = projector
        self._interval = interval
        self._end: tuple[float, int] | None = None  # (unix time read, last sequence)

    def export(self) -> None:
        metrics.observable_gauge(metrics.PROJECTION_LAG, self.points)

    async def refresh(self) -> None:
        try:
            self._end = (time.time(), await self._projector.stream_end(self._js))
        except Exception as error:  # the broker away: the gauge goes absent when stale
            log.debug("failures view lag: the end of ATTEMPTS not read: %s", error)

    async def run(self, stop: Event) -> None:
        while not stop.is_set():
            await self.refresh()
            if await sleep_unless(stop, self._interval):
                return

    def points(self) -> list[tuple[float, metrics.Attributes]]:
        """None until the end is read, or when it is stale: the gauge goes absent."""
        if self._end is None or time.time() - self._end[0] > STALE_AFTER_SECONDS:
            return []
        return [(max(0, self._end[1] - self._projector.applied), FAILURES_VIEW)]
