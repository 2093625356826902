"""Endpoint health in the delivery path (the rules are ``webhooks_health``'s; this is the
sender's use of them): before an attempt, whether the job may go (``admission``: the
circuit is open, the endpoint throttled or disabled: it waits, its retries unspent; the
first job after an open circuit's cool-down goes as its one probe); after it, what the
attempt says of the endpoint (``observe``).

Observing never delays a job: the attempt counts in this replica's failure window at once
(a dict lookup and a bucket), and only a failure, or any attempt to an endpoint that has a
health record, updates the shared record, in a background task (at most
``MOST_OBSERVING`` at a time: beyond that an attempt's update is skipped and counted,
never queued without bound; a failed update is logged, never fails the job). The change's
operator events (``Webhook`` entity) are then published on EVENTS.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2
from webhooks_catalogue import WEBHOOK_ENTITY
from webhooks_config import Settings
from webhooks_health import (
    NO_CHANGE,
    Admission,
    AttemptFacts,
    Change,
    FailureWindow,
    HealthRules,
    HealthStore,
    admit,
    after_attempt,
    announce_notices,
    decide_probe,
    unchanged_by_success,
)
from webhooks_sender import delivery_metrics
from webhooks_sender.delivery import AttemptResult

log = logging.getLogger(__name__)

FC = messages_pb2.FailureClass
MOST_OBSERVING = 1000  # health updates in flight at most (each one KV round trip or two)
SEND = Admission(send=True)
# A probe claim lost to a replica that kept winning the compare-and-set: try again soon.
CLAIM_LOST_SECONDS = (1.0, 3.0)
# Transitions of the rules (Change.transitions) as the breaker metric's "to".
_BREAKER_TO = {"opened": "open", "reopened": "open", "closed": "closed"}


class HealthGate:
    def __init__(self, js: JetStreamContext, store: HealthStore, settings: Settings) -> None:
        self._js = js
        self._store = store
        self._rules = HealthRules.of(settings)
        self._window = FailureWindow(settings.health_breaker_window_seconds)
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0  # observations not made: too many in flight
        self.failed = 0  # observations that raised (logged)

    @property
    def store(self) -> HealthStore:
        return self._store

    async def admission(self, job: messages_pb2.DeliveryJob) -> Admission:
        """Whether ``job`` may be attempted now: send (``probe``: as the open circuit's one
        probe), or wait until ``until`` (``reason``: the deferral metric's label)."""
        record = self._store.cached(job.subscription_id)
        if record is None:
            return SEND  # the common case: a healthy endpoint has no record
        now = datetime.now(UTC)
        admission = admit(record, now, self._rules)
        if not admission.probe:
            return admission
        return await self._claim_probe(job, now)

    async def _claim_probe(self, job: messages_pb2.DeliveryJob, now: datetime) -> Admission:
        """One probe across every replica: the compare-and-set that marks the probe out
        decides which job it is; the others wait as the fresh record says."""
        fresh: list[messages_pb2.EndpointHealth | None] = [None]

        def decide(record: messages_pb2.EndpointHealth | None) -> Change:
            fresh[0] = record  # the last read: what the losers wait by
            return decide_probe(record, now, self._rules)

        change = await self._store.change(job.tenant, job.subscription_id, decide)
        if change.write:
            delivery_metrics.breaker_moved("half_open")
            return Admission(send=True, probe=True)
        record = fresh[0]
        if record is None:
            return SEND  # closed meanwhile
        admission = admit(record, now, self._rules)
        if admission.probe:  # the compare-and-set kept losing
            later = now + timedelta(seconds=random.uniform(*CLAIM_LOST_SECONDS))
            return Admission(send=False, until=later, reason="circuit_open")
        return admission

    def probe_not_sent(self, job: messages_pb2.DeliveryJob, *, probe: bool) -> None:
        """``job`` was admitted (as the probe when ``probe``) but parked before its attempt:
        its probe is given back at once, rather than after PROBE_STALE_SECONDS. (Should a
        probe of another replica be out too, its result decides as well: two probes.)"""
        if probe:
            self._spawn(self._give_back_probe(job.tenant, job.subscription_id))

    async def _give_back_probe(self, tenant: str, subscription_id: str) -> None:
        def decide(record: messages_pb2.EndpointHealth | None) -> Change:
            if record is None or not record.HasField("probe_started_at"):
                return NO_CHANGE
            given_back = messages_pb2.EndpointHealth()
            given_back.CopyFrom(record)
            given_back.ClearField("probe_started_at")
            return Change(write=True, record=given_back, announcements=(), transitions=())

        try:
            await self._store.change(tenant, subscription_id, decide)
        except Exception:
            self.failed += 1
            log.warning("probe of subscription %s not given back", subscription_id, exc_info=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> bool:
        """Runs a health update in the background; False when too many are in flight."""
        if len(self._tasks) >= MOST_OBSERVING:
            coroutine.close()
            self.skipped += 1
            if self.skipped % 1000 == 1:
                log.warning("health updates skipped: %d in flight", len(self._tasks))
            return False
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def observe(
        self,
        job: messages_pb2.DeliveryJob,
        state: messages_pb2.SubscriptionState,
        result: AttemptResult,
        *,
        exhausted: bool,
        probe: bool,
    ) -> None:
        """What the attempt says of the endpoint; ``exhausted``: no attempt follows it."""
        if result.failure_class == FC.FAILURE_CLASS_SUBSCRIPTION_GONE:
            return  # says nothing of the endpoint
        failed = not result.succeeded
        subscription_id = job.subscription_id
        now = time.time()
        self._window.record(subscription_id, now, failed)
        if not failed:
            record = self._store.cached(subscription_id)
            if record is None or unchanged_by_success(record):
                # The hot path: healthy and still healthy. A healthy record kept only for its
                # OnRetriesExhausted notice (up to an hour) has nothing a success changes.
                return
        if len(self._tasks) >= MOST_OBSERVING:
            self.skipped += 1
            if self.skipped % 1000 == 1:
                log.warning("health updates skipped: %d in flight", len(self._tasks))
            return  # before the facts are made: skipping costs nothing
        facts = AttemptFacts(
            succeeded=not failed,
            status_code=result.status_code,
            failure_class=result.failure_class,
            message=result.message,
            retry_after=result.retry_after,
            exhausted=failed and exhausted,
            probe=probe,
            announces=job.entity != WEBHOOK_ENTITY,  # loop rule 2: operator events never do
            subscription_version=job.subscription_version,
            delivery_id=job.delivery_id,
            event_id=job.event_id,
        )
        self._spawn(self._update(job.tenant, state, facts))

    async def _update(
        self,
        tenant: str,
        state: messages_pb2.SubscriptionState,
        facts: AttemptFacts,
    ) -> None:
        try:
            now = datetime.now(UTC)

            def decide(record: messages_pb2.EndpointHealth | None) -> Change:
                # The window as it is now, not when the attempt was observed: of attempts
                # failing together, whichever update is applied last sees them all.
                window = self._window.verdict(state.id, time.time())
                return after_attempt(
                    record,
                    facts,
                    now,
                    self._rules,
                    tenant=tenant,
                    subscription_id=state.id,
                    window=window,
                )

            change = await self._store.change(tenant, state.id, decide)
            if not change.write:
                return
            for transition in change.transitions:
                if transition == "closed":
                    # The failures that opened it must not open it again at the next one.
                    self._window.forget(state.id)
                if transition in _BREAKER_TO:
                    delivery_metrics.breaker_moved(_BREAKER_TO[transition])
                elif transition == "disabled":
                    delivery_metrics.platform_disabled()
            if change.notices:
                await announce_notices(
                    self._js, change.notices, tenant=tenant, subscription=state, occurred_at=now
                )
        except Exception:
            self.failed += 1
            log.warning("health of subscription %s not updated", state.id, exc_info=True)

    async def close(self) -> None:
        """Lets the updates in flight finish (briefly): they are the only record of what
        their attempts said of the endpoints."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
