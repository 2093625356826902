"""After an attempt: its record on ATTEMPTS, then its next attempt scheduled, then the job
acknowledged, in that order (why: ``Recorder._stored``); and the attempt shown to the
endpoint's health (``health_gate.HealthGate.observe``), which never delays any of it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2
from webhooks_messaging import is_bulk_job
from webhooks_sender import delivery_metrics
from webhooks_sender.attempts import AttemptPublisher, attempt_record
from webhooks_sender.delivery import AttemptResult
from webhooks_sender.health_gate import HealthGate
from webhooks_sender.nats_schedules import schedule_retry
from webhooks_sender.retries import RetryPolicy
from webhooks_sender.settlement import (
    DELIVERED,
    FAILED,
    HANDED_BACK,
    Settlement,
    handling_failed,
)

# Runs a coroutine as one of the consumer's tasks (drained at shutdown).
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Recorder:
    def __init__(
        self,
        js: JetStreamContext,
        attempts: AttemptPublisher,
        settlement: Settlement,
        health: HealthGate,
        *,
        retry_after_max_seconds: int,
        settled: Callable[[Msg], None],
        spawn: Spawn,
    ) -> None:
        self._js = js
        self._attempts = attempts
        self._settlement = settlement
        self._health = health
        self._retry_after_max = retry_after_max_seconds
        self._settled = settled  # one job held less
        self._spawn = spawn

    async def record(
        self,
        msg: Msg,
        job: messages_pb2.DeliveryJob,
        state: messages_pb2.SubscriptionState | None,
        result: AttemptResult,
        *,
        probe: bool = False,
    ) -> bool:
        """Publishes the attempt record and returns True: the job is acknowledged once the
        broker has stored the record (``_stored``), not before, and once the next attempt,
        if there is one, has been scheduled after it. ``probe``: the attempt was the open
        circuit's probe."""
        policy = RetryPolicy.of(state or messages_pb2.SubscriptionState(), self._retry_after_max)
        next_at = None
        if not result.succeeded:
            next_at = policy.next_attempt_at(
                job.attempt,
                datetime.now(UTC),
                final=result.final,
                retry_after=result.retry_after,
            )
        record = attempt_record(
            job, result, max_attempts=policy.max_attempts, next_attempt_at=next_at
        )
        delivery_metrics.attempted(job, state, result)
        succeeded = result.succeeded
        retry = None if next_at is None else (next_at, dict(result.span_context))
        # A partial, not a closure over a coroutine: the publisher's call is _stored's own.
        stored = functools.partial(self._stored, msg, job, succeeded, retry=retry)
        await self._attempts.publish(record, result.span_context or job.trace_context, stored)
        if state is not None:
            self._health.observe(job, state, result, exhausted=next_at is None, probe=probe)
        return True

    async def _stored(
        self,
        msg: Msg,
        job: messages_pb2.DeliveryJob,
        succeeded: bool,
        error: BaseException | None,
        retry: tuple[datetime, dict[str, str]] | None = None,
    ) -> None:
        """The broker's answer to a job's attempt record: the job is settled, once its next
        attempt (``retry``: when, and the attempt's span context) is scheduled.

        The next attempt is scheduled only after this one's record is stored, so ATTEMPTS
        holds a delivery's attempts in the order they were made: were it scheduled first
        and the record lost (no PubAck while the stream elects a leader), the next attempt
        could be recorded before this one's record is made again by the job's next run,
        and the failures view, which follows the stream's order, would show a delivery
        whose last attempt failed for good as still retrying."""
        if error is None and retry is not None:
            # Not here: this runs in the publisher's reply handler, which must not wait.
            self._spawn(self._schedule_then_ack(msg, job, *retry))
            return
        try:
            if error is not None:
                await self._settlement.settle(msg, handling_failed(error, job))
                return
            await self._settlement.settle(msg, DELIVERED if succeeded else FAILED)
        finally:
            self._settled(msg)

    async def _schedule_then_ack(
        self,
        msg: Msg,
        job: messages_pb2.DeliveryJob,
        at: datetime,
        previous_attempt: dict[str, str],
    ) -> None:
        """Schedules the next attempt of a job whose record is stored, then acknowledges
        it; if the schedule is not stored, the job comes back (its record, a duplicate
        then, is dropped by the broker) and the attempt is made and scheduled again."""
        try:
            bulk = is_bulk_job(msg.subject)
            await schedule_retry(self._js, job, at, previous_attempt, bulk=bulk)
            await self._settlement.settle(msg, FAILED)
        except asyncio.CancelledError:
            await self._settlement.settle(msg, HANDED_BACK)
            raise
        except Exception as error:
            await self._settlement.settle(msg, handling_failed(error, job))
        finally:
            self._settled(msg)
