"""Keeps the listing read model in step with the subscriptions event store.

Run after every save in the process that saved (so a list right after a create shows it)
and on a timer (so replicas sharing PostgreSQL see each other's changes). Each batch and
the position it reaches are written in one transaction; a batch another replica applied
first is discarded, never applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from webhooks_messaging.waiting import first_of
from webhooks_storage import PositionMoved
from webhooks_subscriptions.application import Subscriptions
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.certificate import ClientCertificate
from webhooks_subscriptions.domain.subscription import Subscription
from webhooks_subscriptions.folding import AggregateFolder
from webhooks_subscriptions.listing import (
    CertificateRow,
    Change,
    ListingRecorder,
    Removal,
    SubscriptionRow,
)
from webhooks_subscriptions.views import certificate_view, subscription_view

log = logging.getLogger(__name__)
BATCH = 500


def _micros(aggregate: Any, attribute: str) -> int:
    return int(getattr(aggregate, attribute).timestamp() * 1_000_000)


def listing_change(state: Any) -> Change | None:
    if isinstance(state, Subscription):
        if state.deleted:
            return Removal("subscription", state.tenant, str(state.id))
        return SubscriptionRow(
            tenant=state.tenant,
            id=str(state.id),
            name=state.name,
            name_key=rules.normalise_name(state.name),
            entity=state.entity,
            active=state.active,
            created_us=_micros(state, "created_on"),
            updated_us=_micros(state, "modified_on"),
            version=state.version,
            certificate_id=state.certificate_id,
            doc=subscription_view(state),
        )
    if isinstance(state, ClientCertificate):
        if state.deleted:
            return Removal("certificate", state.tenant, str(state.id))
        return CertificateRow(
            tenant=state.tenant,
            id=str(state.id),
            name=state.name,
            created_us=_micros(state, "created_on"),
            version=state.version,
            doc=certificate_view(state),
        )
    return None  # name reservations are not listed


class ListingProjector:
    def __init__(self, app: Subscriptions, recorder: ListingRecorder) -> None:
        self._app = app
        self._recorder = recorder
        self._folder = AggregateFolder(app)
        self._lock = threading.Lock()
        # The position this projector last applied or read. Another replica may have moved
        # the stored one further: then ``apply`` raises PositionMoved and it is read again.
        self._position: int | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Called from the thread that saved: project soon, off the request's path."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def applied(self) -> int:
        """The last notification id this projector applied or read (0: none yet)."""
        return self._position or 0

    def fresh(self) -> ListingRecorder:
        """The listing with every change stored so far applied: read-your-writes."""
        self.catch_up()
        return self._recorder

    def catch_up(self) -> int:
        """Applies every notification not yet in the listing; returns how many.

        Runs soon after every save and before every read, so it stops at the first batch
        shorter than BATCH rather than asking again: a notification stored after that
        query is applied by the next run.
        """
        applied = 0
        with self._lock:
            if self._position is None:
                self._position = self._recorder.position()
            position = self._position
            while True:
                notifications = self._app.recorder.select_notifications(
                    start=position, limit=BATCH, inclusive_of_start=False
                )
                if not notifications:
                    return applied
                changes = []
                for notification in notifications:
                    event = self._app.mapper.to_domain_event(notification)
                    change = listing_change(self._folder.fold(event))
                    if change is not None:
                        changes.append(change)
                last = notifications[-1].id
                try:
                    self._recorder.apply(position, last, changes)
                except PositionMoved:
                    # Another replica got there first: start again from where it is.
                    self._folder = AggregateFolder(self._app)
                    position = self._position = self._recorder.position()
                    continue
                position = self._position = last
                applied += len(notifications)
                if len(notifications) < BATCH:
                    return applied

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Projects after saves (woken) and on a timer (changes made by other replicas)."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()
            try:
                await asyncio.to_thread(self.catch_up)
            except Exception:  # keep serving; the next round retries
                log.exception("listing projection failed")
            await first_of(self._wake.wait(), stop, interval)
