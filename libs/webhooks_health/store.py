"""The health records over NATS KV: the WEBHOOK_HEALTH bucket, cached by a watch, changed by
compare-and-set; WEBHOOK_NOTICES (operator events raised once); WEBHOOK_RATE_SLOTS (the
per-webhook rate limit's next free slot, shared by every sender replica).

Every sender and the subscriptions service hold a ``HealthStore``. Reads on the hot path
(``cached``) are a dict lookup in the watch's cache; writes happen only when health changes,
each a read, a pure decision and a conditional write that retries when another replica wrote
first, so no change is lost and none is applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable

import nats.errors
from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import APIError, BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from webhooks.v1 import messages_pb2
from webhooks_health.record import (
    HEALTH_BUCKET,
    NOTICES_BUCKET,
    RATE_BUCKET,
    health_key,
    subscription_of_key,
)
from webhooks_health.rules import NO_CHANGE, Change

log = logging.getLogger(__name__)

# A change that lost this many compare-and-sets in a row is given up (write=False): the
# writers that won have recorded their attempts, and the next attempt tries again.
# Conflicts come only from other sender replicas (one process changes a record one change at
# a time, see ``change``): a few tries, apart by a random pause, are enough.
CHANGE_ATTEMPTS = 8
CHANGE_PAUSE_SECONDS = (0.005, 0.05)
# Rate slots are contended by every job of a burst: more tries, spread by a short pause.
RATE_SLOT_ATTEMPTS = 200
# Notices are remembered this long (an OnCertificateExpiring per certificate and expiry).
NOTICES_MAX_AGE_SECONDS = 400 * 86400
# A rate slot not taken for a day is forgotten (its next free time is long past).
RATE_SLOTS_MAX_AGE_SECONDS = 86400
# A rate slot's value is the next free time in epoch microseconds, as ASCII digits; the
# stream's bound counts the whole message (subject and compare-and-set header too).
RATE_SLOT_MAX_MESSAGE = 1024
# JetStream API error codes: a stream of that name exists with another configuration; the
# expected last sequence of the subject did not match (an optimistic write lost).
_STREAM_NAME_EXISTS = 10058
_WRONG_LAST_SEQUENCE = (10071, 10164)
# The watch is set up again after this pause when it fails (NATS down, say).
_WATCH_RETRY_SECONDS = 1.0


class RateSlotContention(Exception):
    """The rate slot kept being taken by other replicas: try the job again shortly."""


class HealthStore:
    """The three buckets, and a cache of WEBHOOK_HEALTH kept by a watch (``run``)."""

    def __init__(self, health: KeyValue, notices: KeyValue, rates: KeyValue) -> None:
        self._health = health
        self._notices = notices
        self._rates = rates
        self._cache: dict[str, messages_pb2.EndpointHealth] = {}
        # The last revision applied per subscription: an older one arriving late is ignored.
        self._revisions: dict[str, int] = {}
        self.ready = asyncio.Event()  # set once the watch has delivered the initial values
        self.undecodable = 0  # values that were not an EndpointHealth (logged, ignored)
        # The changes waiting in this process, by key: one at a time per record. Ten attempts
        # to one webhook failing together would otherwise race each other's compare-and-set,
        # and the losers' failures (the one that opens the circuit among them) be dropped.
        self._changing: dict[str, tuple[asyncio.Lock, int]] = {}

    @classmethod
    async def open(cls, js: JetStreamContext, *, replicas: int) -> HealthStore:
        """Create the buckets, or bind to them as they are."""
        health = await _bucket(
            js,
            KeyValueConfig(
                bucket=HEALTH_BUCKET,
                description="Endpoint health per webhook (<tenant>.<subscription id>)",
                history=1,
                replicas=replicas,
                direct=True,
            ),
        )
        notices = await _bucket(
            js,
            KeyValueConfig(
                bucket=NOTICES_BUCKET,
                description="Operator events raised once (OnCertificateExpiring)",
                history=1,
                replicas=replicas,
                ttl=NOTICES_MAX_AGE_SECONDS,
                direct=True,
            ),
        )
        rates = await _bucket(
            js,
            KeyValueConfig(
                bucket=RATE_BUCKET,
                description="Per-webhook rate limit: the next free slot (epoch microseconds)",
                history=1,
                replicas=replicas,
                ttl=RATE_SLOTS_MAX_AGE_SECONDS,
                max_value_size=RATE_SLOT_MAX_MESSAGE,
                direct=True,
            ),
        )
        return cls(health, notices, rates)

    # ---- the cache

    def cached(self, subscription_id: str) -> messages_pb2.EndpointHealth | None:
        """The webhook's record as last watched (None: healthy). Do not modify it."""
        return self._cache.get(subscription_id)

    def all_cached(self) -> Iterable[messages_pb2.EndpointHealth]:
        """A snapshot of every record held."""
        return list(self._cache.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Watch WEBHOOK_HEALTH until ``stop``, keeping the cache; set ``ready`` once the
        initial values are in. A failed watch is set up again (it replays every key)."""
        while not stop.is_set():
            try:
                await self._watch(stop)
            except (nats.errors.Error, APIError, OSError, TimeoutError) as err:
                log.warning("health watch failed (%s); watching again", err)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _WATCH_RETRY_SECONDS)

    async def _watch(self, stop: asyncio.Event) -> None:
        watcher = await self._health.watchall()
        stopped = False

        async def stop_watching() -> None:
            nonlocal stopped
            await stop.wait()
            stopped = True
            await watcher.stop()  # type: ignore[no-untyped-call]

        stopper = asyncio.create_task(stop_watching())
        try:
            async for entry in watcher:
                if entry is None:  # the initial values are all in
                    self.ready.set()
                    continue
                self._apply(entry.key, entry.revision, entry.operation, entry.value)
        finally:
            stopper.cancel()
            if not stopped:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]

    def _apply(self, key: str, revision: int, operation: str | None, value: bytes | None) -> None:
        subscription_id = subscription_of_key(key)
        if revision <= self._revisions.get(subscription_id, 0):
            return  # already applied (our own write), or older than what is held
        self._revisions[subscription_id] = revision
        if operation in (KV_DEL, KV_PURGE):
            self._cache.pop(subscription_id, None)
            return
        record = self._decode(key, value or b"")
        if record is None:
            self._cache.pop(subscription_id, None)
        else:
            self._cache[subscription_id] = record

    def _hold(
        self, subscription_id: str, revision: int, record: messages_pb2.EndpointHealth
    ) -> None:
        """Our own write, in the cache before the watch brings it back."""
        if revision > self._revisions.get(subscription_id, 0):
            self._revisions[subscription_id] = revision
            self._cache[subscription_id] = record

    def _decode(self, key: str, value: bytes) -> messages_pb2.EndpointHealth | None:
        try:
            return messages_pb2.EndpointHealth.FromString(value)
        except DecodeError as err:
            # Set aside: a record nobody can read is no health at all (healthy); the next
            # change of this webhook writes a good one over it.
            self.undecodable += 1
            log.warning(
                "health record %s is not an EndpointHealth (%s; %d bytes): ignored",
                key,
                err,
                len(value),
            )
            return None

    # ---- changes

    async def change(
        self,
        tenant: str,
        subscription_id: str,
        decide: Callable[[messages_pb2.EndpointHealth | None], Change],
    ) -> Change:
        """Read the record fresh, ``decide``, and write what was decided if nobody wrote in
        between (else read and decide again, at most CHANGE_ATTEMPTS times).

        Returns the change applied: ``write=False`` when ``decide`` stored nothing or every
        compare-and-set lost (then nothing is to be announced either).
        """
        key = health_key(tenant, subscription_id)
        lock, users = self._changing.get(key) or (asyncio.Lock(), 0)
        self._changing[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._change(key, subscription_id, decide)
        finally:
            lock, users = self._changing[key]
            if users == 1:
                del self._changing[key]
            else:
                self._changing[key] = (lock, users - 1)

    async def _change(
        self,
        key: str,
        subscription_id: str,
        decide: Callable[[messages_pb2.EndpointHealth | None], Change],
    ) -> Change:
        for attempt in range(CHANGE_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(*CHANGE_PAUSE_SECONDS))
            record, revision = await self._read(key)
            decided = decide(record)
            if not decided.write or (decided.record is None and record is None):
                return decided
            try:
                if decided.record is None:
                    await self._health.delete(key, last=revision)
                    # The delete marker comes after ``revision``: older entries are stale.
                    self._revisions[subscription_id] = revision + 1
                    self._cache.pop(subscription_id, None)
                else:
                    data = decided.record.SerializeToString()
                    written = await self._health.update(key, data, last=revision)
                    self._hold(subscription_id, written, decided.record)
            except (KeyWrongLastSequenceError, APIError) as err:
                if not _lost_race(err):
                    raise
                continue
            return decided
        log.info("health of %s changed by others %d times in a row", key, CHANGE_ATTEMPTS)
        return NO_CHANGE

    async def _read(self, key: str) -> tuple[messages_pb2.EndpointHealth | None, int]:
        """The record and its revision (the delete marker's, or 0, when there is none)."""
        try:
            entry = await self._health.get(key)
        except KeyNotFoundError as gone:
            return None, (gone.entry.revision if gone.entry is not None else 0)
        return self._decode(key, entry.value or b""), entry.revision or 0

    async def delete(self, tenant: str, subscription_id: str) -> None:
        """Forget the webhook's health (re-enabled, or its endpoint changed): healthy."""
        await self._health.delete(health_key(tenant, subscription_id))
        self._cache.pop(subscription_id, None)

    # ---- notices and rate slots

    async def notice_once(self, key: str) -> bool:
        """True the first time ``key`` is noticed (across every replica), then False."""
        try:
            await self._notices.create(key, b"1")
        except KeyWrongLastSequenceError:
            return False
        return True

    async def reserve_rate_slot(
        self, tenant: str, subscription_id: str, per_second: int, now: float
    ) -> float:
        """The epoch time at which this delivery may be sent: the next free slot, taken.

        Slots are ``1 / per_second`` apart across every sender replica (a compare-and-set on
        the webhook's next free time). Raises RateSlotContention when others kept taking it.
        """
        if per_second <= 0:
            return now
        key = health_key(tenant, subscription_id)
        spacing = max(1, round(1_000_000 / per_second))
        now_us = int(now * 1_000_000)
        for _ in range(RATE_SLOT_ATTEMPTS):
            next_free, revision = await self._next_free(key)
            slot = max(now_us, next_free)
            try:
                await self._rates.update(key, str(slot + spacing).encode(), last=revision)
            except (KeyWrongLastSequenceError, APIError) as err:
                if not _lost_race(err):
                    raise
                await asyncio.sleep(random.random() * 0.002)  # let the winner's write land
                continue
            return slot / 1_000_000
        raise RateSlotContention(f"rate slot of {key}: taken by others {RATE_SLOT_ATTEMPTS} times")

    async def _next_free(self, key: str) -> tuple[int, int]:
        try:
            entry = await self._rates.get(key)
        except KeyNotFoundError as gone:
            return 0, (gone.entry.revision if gone.entry is not None else 0)
        try:
            return int(entry.value or b"0"), entry.revision or 0
        except ValueError:
            shown = (entry.value or b"")[:32]
            log.warning("rate slot %s is not a time: %r; taken as free", key, shown)
            return 0, entry.revision or 0


def _lost_race(err: Exception) -> bool:
    return isinstance(err, KeyWrongLastSequenceError) or (
        isinstance(err, APIError) and err.err_code in _WRONG_LAST_SEQUENCE
    )


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """Create the bucket, or bind to it when it exists with another configuration (another
    replica count, say: changing it is an operator's decision, not a start-up's)."""
    try:
        return await js.create_key_value(config)
    except BadRequestError as err:
        if err.err_code != _STREAM_NAME_EXISTS:
            raise
        return await js.key_value(config.bucket)
