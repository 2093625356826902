"""OnCertificateExpiring: an organisation is told when a webhook's client certificate nears
its end, once per (webhook, certificate, not_after).

Every ``WEBHOOKS_HEALTH_CERTIFICATE_CHECK_SECONDS`` the listing gives the active webhooks
that present a client certificate; each whose certificate expires within
``WEBHOOKS_HEALTH_CERTIFICATE_WARNING_DAYS`` (or has expired) is announced. "Once" holds
across restarts and replicas through a marker in WEBHOOK_NOTICES, created with a
create-only write (``notice_once``): whoever creates it announces. A claimed notice whose
event could not be published is kept here and published again every round until it is
(the event id is fixed, so EVENTS drops a copy within its duplicate window). A renewed
certificate (a new not_after) or another certificate is a new notice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue import ON_CERTIFICATE_EXPIRING
from webhooks_config import Settings
from webhooks_health import (
    announce,
    announcement_event_id,
    operator_event,
    rfc3339,
    shown_health,
)
from webhooks_messaging.waiting import first_of, sleep_unless
from webhooks_subscriptions.application import Subscriptions
from webhooks_subscriptions.domain.errors import NotFound
from webhooks_subscriptions.health import HealthWatch
from webhooks_subscriptions.projector import ListingProjector
from webhooks_subscriptions.published import subscription_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expiring:
    tenant: str
    subscription_id: str
    certificate_id: str
    certificate_name: str
    not_after: datetime

    @property
    def notice_key(self) -> str:
        """The WEBHOOK_NOTICES key: one per webhook, certificate and expiry."""
        stamp = int(self.not_after.timestamp())
        return f"{self.tenant}.{self.subscription_id}.{self.certificate_id}.{stamp}"


def expiring(
    in_use: list[tuple[str, str, dict[str, Any]]], now: datetime, warning: timedelta
) -> list[Expiring]:
    """The webhooks whose certificate's not_after is before ``now + warning`` (pure)."""
    found = []
    for tenant, subscription_id, certificate in in_use:
        not_after = datetime.fromisoformat(certificate["not_after"])
        if not_after <= now + warning:
            found.append(
                Expiring(tenant, subscription_id, certificate["id"], certificate["name"], not_after)
            )
    return found


class CertificateExpiry:
    def __init__(
        self,
        app: Subscriptions,
        projector: ListingProjector,
        health: HealthWatch,
        settings: Settings,
    ) -> None:
        self._app = app
        self._projector = projector
        self._health = health
        self._every = float(settings.health_certificate_check_seconds)
        self._warning = timedelta(days=settings.health_certificate_warning_days)
        self._unsent: dict[str, messages_pb2.PlatformEvent] = {}  # claimed, not yet published

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # The notices and the events need the broker: wait for the health watch's session.
            if not await first_of(self._health.connected.wait(), stop):
                return
            try:
                await self.check()
            except Exception as error:  # the broker or the store away: next round
                log.warning("certificate expiry check: %s", error)
            if await sleep_unless(stop, self._every):
                return

    async def check(self) -> None:
        session = self._health.session
        if session is None:
            return
        store, js = session
        for key, unsent in list(self._unsent.items()):
            await announce(js, unsent)
            del self._unsent[key]
        in_use = await asyncio.to_thread(lambda: self._projector.fresh().certificates_in_use())
        now = datetime.now(UTC)
        for found in expiring(in_use, now, self._warning):
            if found.notice_key in self._unsent or not await store.notice_once(found.notice_key):
                continue
            health = shown_health(store.cached(found.subscription_id), now)
            event: messages_pb2.PlatformEvent | None = await asyncio.to_thread(
                self._event, found, health, now
            )
            if event is None:
                continue
            self._unsent[found.notice_key] = event
            await announce(js, event)
            del self._unsent[found.notice_key]
            log.info(
                "webhook %s of %s: certificate %s expires %s (announced)",
                found.subscription_id,
                found.tenant,
                found.certificate_id,
                found.not_after.isoformat(),
            )

    def _event(
        self, found: Expiring, health: common_pb2.Health, now: datetime
    ) -> messages_pb2.PlatformEvent | None:
        try:
            subscription = self._app.get_subscription(found.tenant, found.subscription_id)
        except NotFound:
            return None  # deleted since the listing was read
        return operator_event(
            ON_CERTIFICATE_EXPIRING,
            tenant=found.tenant,
            subscription=subscription_state(subscription),
            health=health,
            event_id=announcement_event_id(
                ON_CERTIFICATE_EXPIRING,
                found.subscription_id,
                certificate_id=found.certificate_id,
                not_after=found.not_after,
            ),
            occurred_at=now,
            CertificateId=found.certificate_id,
            CertificateName=found.certificate_name,
            CertificateNotAfter=rfc3339(found.not_after),
        )
