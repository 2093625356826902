"""``webhooks.projection.lag`` {projection: failures_view} (issue 14): records on ATTEMPTS
the failures view has not applied, the stream's last sequence less the projector's.

The last sequence comes from the backlog watch's snapshot (``webhooks_messaging.backlog``),
which reads every stream's STREAM.INFO every few seconds in this same process for the
stream gauges: no request of its own, and nothing from the exporter's thread.
"""

from __future__ import annotations

import time

from webhooks_failures.projector import Projector
from webhooks_messaging import ATTEMPTS
from webhooks_messaging.backlog import BacklogWatch
from webhooks_telemetry import metrics

FAILURES_VIEW = {"projection": "failures_view"}


class ProjectionLag:
    def __init__(self, watch: BacklogWatch, projector: Projector) -> None:
        self._watch = watch
        self._projector = projector

    def export(self) -> None:
        metrics.observable_gauge(metrics.PROJECTION_LAG, self.points)

    def points(self) -> list[tuple[float, metrics.Attributes]]:
        """None while ATTEMPTS is unread or the snapshot stale: the gauge goes absent."""
        snapshot = self._watch.snapshot
        attempts = snapshot.stream(ATTEMPTS)
        if attempts is None or not snapshot.is_fresh(time.time()):
            return []
        return [(max(0, attempts.last_seq - self._projector.applied), FAILURES_VIEW)]
