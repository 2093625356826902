"""The subscriptions service's lag gauges (issue 14): ``webhooks.relay.lag``, stored domain
events the outbox relay has not read yet (so not on SUBSCRIPTIONS), and
``webhooks.projection.lag`` {projection: listing}, stored events the listing has not
applied.

Both are the store's newest notification id less a position the process keeps in memory.
The newest id is a query, so it is read here every few seconds by one task (started only
when metrics are exported), never from the exporter's thread; the gauges read the numbers.
"""

from __future__ import annotations

import asyncio
import logging

from webhooks_messaging.waiting import sleep_unless
from webhooks_subscriptions.application import Subscriptions
from webhooks_subscriptions.projector import ListingProjector
from webhooks_subscriptions.relay import OutboxRelay
from webhooks_telemetry import metrics

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
LISTING = {"projection": "listing"}


class Lags:
    def __init__(self, app: Subscriptions, relay: OutboxRelay, projector: ListingProjector) -> None:
        self._app = app
        self._relay = relay
        self._projector = projector
        self.newest: int | None = None  # the store's newest notification id; None: unread

    def export(self) -> None:
        metrics.observable_gauge(metrics.RELAY_LAG, self.relay_points)
        metrics.observable_gauge(metrics.PROJECTION_LAG, self.listing_points)

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                newest = await asyncio.to_thread(self._app.recorder.max_notification_id)
                self.newest = newest or 0
            except Exception as error:  # the store is away: the gauges go absent
                if self.newest is not None:  # once per outage, not every few seconds
                    log.warning("lag gauges: cannot read the newest notification: %s", error)
                self.newest = None
            if await sleep_unless(stop, REFRESH_SECONDS):
                return

    def relay_points(self) -> list[tuple[float, metrics.Attributes]]:
        if self.newest is None:
            return []
        return [(max(0, self.newest - self._relay.scanned), {})]

    def listing_points(self) -> list[tuple[float, metrics.Attributes]]:
        if self.newest is None:
            return []
        return [(max(0, self.newest - self._projector.applied), LISTING)]
