"""Delivering: the durable pull consumers of DELIVERIES that every sender process shares,
one per lane (intake.py: the bulk lane's jobs hold at most half the process).

Every job ends in exactly one of these, decided in one place (``settlement.py``):
- ack, after its attempt is recorded on ATTEMPTS and, when it failed with attempts left,
  the next one is scheduled (retries.py) — so a crash anywhere before the ack only
  repeats the attempt (at least once; receivers deduplicate on ``webhook-id``);
- ack after parking, when its endpoint already has every slot busy and a queue of waiting
  jobs: it comes back in a few seconds and does not hold a consumer slot meanwhile;
- ack after deferring (parking until a given time, no attempt made, retries unspent), when
  its endpoint's health says wait (circuit open, throttled, disabled: health_gate.py) or
  its webhook's rate limit has its slot later (rate_limit.py);
- nak, when the broker refused a publish (the job comes back in a second), or handling
  it raised anything else: then it comes back too, but is terminated and set aside
  (NOT_APPLIED) once it has failed so on five deliveries (webhooks_messaging.handling);
- term, when it is malformed: it does not decode, or breaks checks.delivery_job_problem
  (its subject's tenant and subscription are not its own, a required field is missing, a
  value is out of range); it is set aside on DEADLETTERS (webhooks_messaging.deadletters).
  Skipping it is safe: a job is one delivery of one event to one subscription, and a job
  that cannot be trusted must not be sent anywhere; the event it came from is still on
  EVENTS and can be replayed.

Concurrency: up to ``sender_concurrency`` jobs are taken at a time; each endpoint
(scheme, host, port) may have ``sender_endpoint_concurrency`` requests in flight, and as
many jobs waiting as it serves in about one sender timeout at its mean request duration
(at least that limit; at most half of the jobs taken; the limit until a request to it has
been timed); beyond that its jobs are parked, and so is a job still waiting after two
timeouts (the endpoint turned slow). A slow or dead endpoint therefore holds at most its
own slots and a limit's worth of waiting jobs, jobs for healthy endpoints keep flowing past
it, and a fast endpoint's burst waits for it instead of being parked and fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from webhooks.v1 import messages_pb2
from webhooks_config import Settings
from webhooks_grpc.collector import collect_less_often
from webhooks_health import Admission
from webhooks_messaging import DELIVERIES, is_bulk_job
from webhooks_messaging import DELIVERY_BULK_SUBJECTS as BULK_JOBS
from webhooks_messaging import DELIVERY_JOBS_SUBJECTS as JOBS
from webhooks_messaging.checks import delivery_job_problem
from webhooks_messaging.consumers import durable_pull
from webhooks_messaging.deadletters import DeadLetters
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_messaging.handling import Retrying
from webhooks_messaging.heartbeats import ACK_WAIT_SECONDS, Heartbeats
from webhooks_messaging.waiting import first_of
from webhooks_sender import delivery_metrics
from webhooks_sender.attempts import AttemptPublisher
from webhooks_sender.delivery import Deliverer, gone, unusable
from webhooks_sender.directory import Directory, EndpointUnusable
from webhooks_sender.endpoint_slots import EndpointSlots, WaitedTooLong
from webhooks_sender.health_gate import HealthGate
from webhooks_sender.intake import all_lanes, bulk_free, take_lane
from webhooks_sender.job_tracing import parent_context, previous_attempt, unsampled_headers
from webhooks_sender.rate_limit import RateLimiter, without_slot
from webhooks_sender.recording import Recorder
from webhooks_sender.settlement import (
    HANDED_BACK,
    Settlement,
    handling_failed,
    malformed,
    parked,
)

log = logging.getLogger(__name__)

DURABLE = "sender"
BULK_DURABLE = "sender-bulk"
CATCH_UP_TIMEOUT_SECONDS = 5.0
# In-flight jobs get this long at shutdown (the service gives background tasks 10 s).
DRAIN_SECONDS = 8.0
EXPIRE_EVERY_SECONDS = 1.0  # how often jobs waiting too long for a slot are looked for
MEAN_WEIGHT = 0.2  # of the latest request in an endpoint's mean request duration
MEANS_KEPT = 10_000  # endpoints whose mean duration is remembered
RETRY_DELAY_SECONDS = 1.0  # a job whose handling failed comes back after this


class JobConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        directory: Directory,
        feed: SubscriptionFeed[Directory],
        deliverer: Deliverer,
        dead: DeadLetters,
        settings: Settings,
        attempts: AttemptPublisher,
        health: HealthGate,
        rate: RateLimiter,
    ) -> None:
        self._js = js
        self._directory = directory
        self._feed = feed
        self._deliverer = deliverer
        self._settlement = Settlement(js, dead, Retrying(dead, delay=RETRY_DELAY_SECONDS))
        self.stats = self._settlement.stats
        self._capacity = settings.sender_concurrency
        self._endpoint_limit = settings.sender_endpoint_concurrency
        self._share = settings.sender_subscription_share  # of an endpoint, per subscription
        self._health = health
        self._rate = rate
        self._recorder = Recorder(
            js,
            attempts,
            self._settlement,
            health,
            retry_after_max_seconds=settings.retry_after_max_seconds,
            settled=self._settled,
            spawn=self._spawn,
        )
        self._record = self._recorder.record
        # A job is held (waiting for a slot, sent, its record confirmed) longer than the
        # consumer's short ack_wait: heartbeats keep it from going to another sender.
        self._heartbeats = Heartbeats()
        self._endpoints: dict[str, EndpointSlots] = {}
        # Waiting for a slot: an endpoint's waiting jobs should all start within about one
        # sender timeout, judging by its mean request duration (seconds, by origin).
        self._wait_budget = settings.sender_timeout_seconds
        self._most_waiting = max(self._endpoint_limit, self._capacity // 2)
        self._mean_seconds: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Jobs taken and not settled yet: handled by a task, or their record published and
        # its confirmation awaited (the publisher then settles them, see _stored).
        self._held = 0
        self._held_bulk = 0  # of which from the bulk lane
        self._room = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        # A durable consumer per lane (intake.py): the bulk lane's jobs hold at most a share.
        standard = await durable_pull(self._js, DELIVERIES, DURABLE, self._config(JOBS))
        bulk = await durable_pull(self._js, DELIVERIES, BULK_DURABLE, self._config(BULK_JOBS))
        sweeper = asyncio.create_task(self._expire_waiters())
        heartbeats = asyncio.create_task(self._heartbeats.run())
        try:
            await first_of(self._feed.ready.wait(), stop)
            # Not before the health records are known: an open circuit's jobs would go.
            await first_of(self._health.store.ready.wait(), stop)
            collect_less_often()
            await all_lanes(
                take_lane(standard, stop, self._room, self._free, self._take),
                take_lane(bulk, stop, self._room, self._bulk_free, self._take_bulk),
            )
        finally:
            sweeper.cancel()
            await self._drain()
            heartbeats.cancel()  # what is still held goes to another sender after ack_wait
            for subscription in (standard, bulk):
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    def _config(self, subjects: str) -> ConsumerConfig:
        return ConsumerConfig(
            filter_subject=subjects,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            max_ack_pending=max(1000, 2 * self._capacity),
        )

    def _free(self) -> int:
        return self._capacity - self._held

    def _bulk_free(self) -> int:
        return bulk_free(self._capacity, self._held, self._held_bulk)

    def _take_bulk(self, messages: list[Msg]) -> None:
        self._held_bulk += len(messages)
        self._take(messages)

    def _take(self, messages: list[Msg]) -> None:
        self._held += len(messages)
        for msg in messages:
            task = asyncio.create_task(self._handle(msg))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    async def _expire_waiters(self) -> None:
        """Parks the jobs that waited for their endpoint longer than they may (the waiting
        bound rests on an estimate: an endpoint that turned slow does not keep them)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(EXPIRE_EVERY_SECONDS)
            now = loop.time()
            for slots in list(self._endpoints.values()):
                slots.expire(now)

    def _waiting_limit(self, origin: str) -> int:
        """How many jobs may wait for the endpoint's slots: as many as it serves in about
        one sender timeout at its mean request duration (at least its limit, at most half
        the jobs the consumer holds); its limit until a request to it has been timed."""
        mean = self._mean_seconds.get(origin)
        if mean is None:
            return self._endpoint_limit
        served = int(self._endpoint_limit * self._wait_budget / max(mean, 0.001))
        return min(self._most_waiting, max(self._endpoint_limit, served))

    def _slots_of(self, origin: str) -> EndpointSlots:
        slots = self._endpoints.get(origin)
        if slots is None:
            slots = self._endpoints[origin] = EndpointSlots(
                self._endpoint_limit, self._waiting_limit(origin), share=self._share
            )
        return slots

    def _timed(self, origin: str, slots: EndpointSlots, seconds: float) -> None:
        """One request to ``origin`` took ``seconds``: its mean and waiting bound follow."""
        mean = self._mean_seconds.get(origin)
        if mean is None and len(self._mean_seconds) >= MEANS_KEPT:
            self._mean_seconds.clear()
        self._mean_seconds[origin] = (
            seconds if mean is None else mean + MEAN_WEIGHT * (seconds - mean)
        )
        slots.waiting_limit = self._waiting_limit(origin)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Runs ``coroutine`` as one of the tasks drained at shutdown."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job handling failed", exc_info=task.exception())

    def _settled(self, msg: Msg) -> None:
        """One job held less: acknowledged, nakked, terminated or handed back."""
        self._heartbeats.settled(msg)
        self._held -= 1
        if is_bulk_job(msg.subject):
            self._held_bulk -= 1
        self._room.set()

    async def _drain(self) -> None:
        """Finish what is in flight (bounded), hand the rest back to the broker."""
        deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Records still to be confirmed: their jobs are settled when the broker answers
        # (or the publisher gives up on them, or closes: then they are nakked).
        while self._held > 0:
            self._room.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), left)

    async def _handle(self, msg: Msg) -> None:
        published = False  # the record is out: the publisher's answer settles the job
        self._heartbeats.hold(msg)
        try:
            try:
                job = messages_pb2.DeliveryJob.FromString(msg.data)
            except DecodeError as error:
                await self._settlement.settle(msg, malformed("undecodable", str(error)))
                return
            problem = delivery_job_problem(msg.subject, job)
            if problem:
                await self._settlement.settle(msg, malformed("invalid", problem))
                return
            try:
                published = await self._deliver(msg, job)
            except asyncio.CancelledError:
                # Shutting down: the job goes back to the broker for another sender now.
                await self._settlement.settle(msg, HANDED_BACK)
                raise
            except Exception as error:  # nakked; set aside if it keeps failing so
                await self._settlement.settle(msg, handling_failed(error, job))
        finally:
            if not published:
                self._settled(msg)

    async def _deliver(self, msg: Msg, job: messages_pb2.DeliveryJob) -> bool:
        """Attempts the job, or settles it without an attempt; True when its record was
        published (the job is then settled once the broker has stored it)."""
        state = self._directory.subscription(job.subscription_id)
        if state is None or state.version < job.subscription_version:
            # A subscription newer than the directory: catch up with the stream first.
            await self._feed.caught_up(self._js, CATCH_UP_TIMEOUT_SECONDS)
            state = self._directory.subscription(job.subscription_id)
        if state is None:
            return await self._record(msg, job, None, gone(job, "subscription does not exist"))
        if state.tenant != job.tenant:
            verdict = malformed("invalid", "job tenant differs from subscription's")
            await self._settlement.settle(msg, verdict)
            return False
        if state.deleted or not state.active:
            reason = "subscription deleted" if state.deleted else "subscription deactivated"
            return await self._record(msg, job, state, gone(job, reason))
        try:
            endpoint = self._directory.endpoint(state)
        except EndpointUnusable as error:
            return await self._record(msg, job, state, unusable(job, state.webhook.url, str(error)))
        admission = await self._admitted(msg, job, state)
        if admission is None:
            return False
        origin = endpoint.origin
        slots = self._slots_of(origin)
        if slots.full(job.subscription_id):
            await self._park(msg, job, probe=admission.probe)
            return False
        slots.holders += 1
        try:
            try:
                # Twice the budget: a waiting job starts within one by the estimate, so
                # only a wrong one (the endpoint turned slow) parks it. Heartbeats keep
                # the job from the broker's ack_wait while it waits and is sent.
                await slots.acquire(job.subscription_id, 2 * self._wait_budget)
            except WaitedTooLong:
                await self._park(msg, job, probe=admission.probe)
                return False
            try:
                untraced = unsampled_headers(job.trace_context)
                if untraced is not None:
                    result = await self._deliverer.attempt(endpoint, job, untraced=untraced)
                else:
                    result = await self._deliverer.attempt(
                        endpoint,
                        job,
                        parent=parent_context(job.trace_context),
                        links=previous_attempt(msg),
                    )
            finally:
                slots.release(job.subscription_id)
            self._timed(origin, slots, result.duration_ms / 1000)
        finally:
            slots.holders -= 1
            if slots.holders == 0:
                self._endpoints.pop(origin, None)
        return await self._record(msg, job, state, result, probe=admission.probe)

    async def _admitted(
        self, msg: Msg, job: messages_pb2.DeliveryJob, state: messages_pb2.SubscriptionState
    ) -> Admission | None:
        """The job's admission by its endpoint's health, once its rate limit's slot has
        come; or None when it was deferred instead (settled)."""
        admission = await self._health.admission(job)
        if not admission.send:
            await self._defer(msg, job, admission.until, admission.reason)
            return None
        per_second = state.webhook.rate_limit_per_second
        if per_second > 0:
            later = await self._rate.hold(job, msg.headers, per_second)
            if later is not None:
                self._health.probe_not_sent(job, probe=admission.probe)
                await self._defer(msg, job, later[0], "rate_limited", headers=later[1])
                return None
        return admission

    async def _park(self, msg: Msg, job: messages_pb2.DeliveryJob, *, probe: bool) -> None:
        """Back in a few seconds: its endpoint's slots are busy (a probe it was: another
        job may be the probe meanwhile)."""
        self._health.probe_not_sent(job, probe=probe)
        await self._settlement.settle(msg, parked(job, headers=without_slot(msg.headers)))

    async def _defer(
        self,
        msg: Msg,
        job: messages_pb2.DeliveryJob,
        until: datetime | None,
        reason: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Puts the job back until ``until`` (None: a few seconds), without an attempt: its
        attempt number and retries unspent. ``headers``: what it comes back with (by
        default the message's, less any rate-limit slot)."""
        if headers is None:
            headers = without_slot(msg.headers)
        await self._settlement.settle(msg, parked(job, at=until, headers=headers))
        delivery_metrics.deferred(reason or "circuit_open")
