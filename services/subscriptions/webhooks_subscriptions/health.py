"""The platform's verdicts on the webhooks' endpoints, as this service uses them.

The senders keep each webhook's health in the KV bucket WEBHOOK_HEALTH (webhooks_health);
this service watches it (HealthStore keeps a local copy) to

- show it: ``Subscription.health`` in GetSubscription and ListSubscriptions, one dict lookup
  per row (the webhook's own ``disabled_reason`` first: a disable is a fact of the aggregate);
- apply a disable: a DISABLED record decided after the webhook's last activation or endpoint
  change deactivates an active webhook (``DisabledByPlatform``, actor ``platform``). Every
  replica may apply the same record: the aggregate takes it once, the others find it inactive;
- clear it: re-activation, an endpoint change and deletion delete the record (a new start).
  A delete that fails (the broker away) is tried again every round, and a DISABLED record
  found older than the webhook's last reset is deleted too, so a stale verdict cannot keep a
  re-enabled webhook's jobs waiting after a restart either.

Without the broker the API still answers: every webhook shows its aggregate's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import Settings
from webhooks_health import STATE_NAMES, HealthStore, shown_health
from webhooks_messaging import connect
from webhooks_messaging.waiting import sleep_unless
from webhooks_subscriptions.application import Subscriptions
from webhooks_subscriptions.domain.errors import DomainError, NotFound
from webhooks_telemetry import metrics

log = logging.getLogger(__name__)
HS = common_pb2.HealthState
# How often the watched copy is looked at for disables to apply and deletes to retry: a
# verdict takes effect within this (the sender defers the webhook's jobs meanwhile anyway).
APPLY_EVERY_SECONDS = 1.0
RECONNECT_SECONDS = 1.0
# How long a command's reply waits for the record's delete (the relay's wait, likewise):
# beyond it the reply goes and the delete is retried every round.
DELETE_WAIT_SECONDS = 2.0
PAUSED_LOG_EVERY_SECONDS = 60.0
# The states the gauge counts: every state name but healthy's (no record is healthy).
UNHEALTHY = tuple(dict.fromkeys(name for name in STATE_NAMES.values() if name != "healthy"))


def disabled_health(reason: str) -> common_pb2.Health:
    return common_pb2.Health(state=HS.HEALTH_STATE_DISABLED, reason=reason)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _decided_at(record: messages_pb2.EndpointHealth) -> datetime | None:
    if record.HasField("disabled_at"):
        return record.disabled_at.ToDatetime(tzinfo=UTC)
    if record.health.HasField("last_failure_at"):
        return record.health.last_failure_at.ToDatetime(tzinfo=UTC)
    return None


class HealthWatch:
    def __init__(self, app: Subscriptions, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._store: HealthStore | None = None
        self._js: JetStreamContext | None = None
        # subscription id -> the disabled_at (ms) of the DISABLED record already applied
        self._applied: dict[str, int] = {}
        self._deletes: set[tuple[str, str]] = set()  # (tenant, id) still to delete
        self.connected = asyncio.Event()  # set while a store is ready

    # The API's side: no I/O.

    def health(self, view: dict[str, Any], now: datetime) -> common_pb2.Health | None:
        """What GetSubscription / ListSubscriptions show of the webhook ``view``; None:
        healthy (no record), which the caller sets as a bare state: that is most rows of a
        listing, and a Health message built and copied per row costs more than the lookup."""
        reason = view.get("disabled_reason") or ""  # absent from rows listed before it existed
        if reason and not view["active"]:
            return disabled_health(reason)
        store = self._store
        record = store.cached(view["id"]) if store is not None else None
        return None if record is None else shown_health(record, now)

    @property
    def session(self) -> tuple[HealthStore, JetStreamContext] | None:
        """The store and the JetStream context while connected (for notices and events)."""
        if self._store is None or self._js is None:
            return None
        return self._store, self._js

    async def reset(self, tenant: str, subscription_id: str) -> None:
        """The webhook starts afresh (re-enabled, a new endpoint, deleted): its record goes.
        Never fails the caller's command: a delete that cannot be made now is retried."""
        self._applied.pop(subscription_id, None)
        if not await self._delete(tenant, subscription_id):
            self._deletes.add((tenant, subscription_id))

    # The watch.

    async def run(self, stop: asyncio.Event) -> None:
        paused_at, paused_why = -PAUSED_LOG_EVERY_SECONDS, ""
        while not stop.is_set():
            nc: NATS | None = None
            watching: asyncio.Task[None] | None = None
            try:
                nc = await connect(self._settings, "subscriptions-health")
                js = nc.jetstream()
                store = await HealthStore.open(js, replicas=self._settings.stream_replicas)
                watching = asyncio.create_task(store.run(stop))
                await self._follow(store, js, watching, stop)
            except Exception as error:  # the broker away or refusing: the API goes on
                now, why = time.monotonic(), str(error)
                if why != paused_why or now - paused_at >= PAUSED_LOG_EVERY_SECONDS:
                    log.warning("health watch paused: %s", error)
                    paused_at, paused_why = now, why
                await sleep_unless(stop, RECONNECT_SECONDS)
            finally:
                self.connected.clear()
                self._js = None  # the last copy stays shown until a new one is ready
                if watching is not None:
                    watching.cancel()
                    with contextlib.suppress(BaseException):
                        await watching
                if nc is not None and not nc.is_closed:
                    with contextlib.suppress(Exception):
                        await nc.close()

    async def _follow(
        self,
        store: HealthStore,
        js: JetStreamContext,
        watching: asyncio.Task[None],
        stop: asyncio.Event,
    ) -> None:
        ready = asyncio.ensure_future(store.ready.wait())
        try:
            await asyncio.wait({ready, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if watching.done():
            watching.result()  # raises why the watch ended
            raise RuntimeError("the health watch ended before it was ready")
        self._store, self._js = store, js
        self.connected.set()
        while not stop.is_set() and not watching.done():
            await self._retry_deletes()
            await self._apply_disables(store.all_cached())
            await sleep_unless(stop, APPLY_EVERY_SECONDS)
        if watching.done() and not stop.is_set():
            watching.result()
            raise RuntimeError("the health watch ended")

    async def _apply_disables(self, records: Iterable[messages_pb2.EndpointHealth]) -> None:
        disabled = [r for r in records if r.health.state == HS.HEALTH_STATE_DISABLED]
        held = {record.subscription_id for record in disabled}
        for gone in [ident for ident in self._applied if ident not in held]:
            del self._applied[gone]  # its record was deleted: forget it
        for record in disabled:
            subscription_id = record.subscription_id
            decided_at = _decided_at(record)
            if decided_at is None:
                continue  # not a verdict this service can date against the webhook's resets
            stamp = _ms(decided_at)
            if self._applied.get(subscription_id) == stamp:
                continue
            try:
                outcome = await asyncio.to_thread(self._verdict, record, decided_at)
            except DomainError as error:  # changing too fast: next round
                log.warning("health: disabling %s: %s", subscription_id, error)
                continue
            self._applied[subscription_id] = stamp
            if outcome == "disabled":
                log.warning(
                    "health: webhook %s of %s disabled by the platform: %s",
                    subscription_id,
                    record.tenant,
                    record.health.reason,
                )
            elif outcome == "stale":
                await self.reset(record.tenant, subscription_id)

    def _verdict(self, record: messages_pb2.EndpointHealth, decided_at: datetime) -> str:
        """disabled: applied now; stale: the webhook was reset (or deleted) since the
        verdict, so its record goes; kept: inactive already (by its owner or a replica)."""
        tenant, subscription_id = record.tenant, record.subscription_id
        reason = record.health.reason or "disabled by the platform"
        if self._app.disable_by_platform(tenant, subscription_id, reason, decided_at):
            return "disabled"
        try:
            subscription = self._app.get_subscription(tenant, subscription_id)
        except NotFound:
            return "stale"
        if subscription.active and subscription.health_reset_at >= decided_at:
            return "stale"
        return "kept"

    async def _retry_deletes(self) -> None:
        for tenant, subscription_id in list(self._deletes):
            if await self._delete(tenant, subscription_id):
                self._deletes.discard((tenant, subscription_id))

    async def _delete(self, tenant: str, subscription_id: str) -> bool:
        store = self._store
        if store is None or self._js is None:
            return False
        try:
            await asyncio.wait_for(store.delete(tenant, subscription_id), DELETE_WAIT_SECONDS)
        except Exception as error:
            log.warning("health: cannot clear the record of %s yet: %s", subscription_id, error)
            return False
        return True

    # The gauge.

    def export(self) -> None:
        metrics.observable_gauge(metrics.SUBSCRIPTIONS_HEALTH, self.points)

    def points(self) -> list[tuple[float, metrics.Attributes]]:
        """Webhooks per state other than healthy (no record is healthy: not counted here);
        absent until the first copy is ready."""
        store = self._store
        if store is None:
            return []
        now = datetime.now(UTC)
        counts = Counter(STATE_NAMES[shown_health(r, now).state] for r in store.all_cached())
        return [(float(counts.get(state, 0)), {"state": state}) for state in UNHEALTHY]
