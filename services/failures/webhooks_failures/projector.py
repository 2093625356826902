"""Follows ATTEMPTS into the failures view, in batches, from the position the view holds.

It reads every record but those of first attempts that succeeded (``SUBJECTS``), so its
position is the last record it takes, and read-your-writes waits for the last of those
(``stream_end``), not the stream's last.

An ordered push consumer (``webhooks_messaging.following``: ephemeral, in memory, no acks,
flow-controlled, idle heartbeats) starts after ``view.position()``. Its callback only
queues (stream sequence, bytes) into a bounded inbox; the loop takes up to ``batch_size``
messages (waiting ``linger`` seconds for a batch to fill when the stream is quiet) and
decodes and applies them in a worker thread, so the event loop never waits on the
database. While the inbox is full the callback waits, nats-py's pending queue grows, and
the broker's flow control stops sending: memory stays bounded during a replay of millions
of attempts.

Each batch moves the stored position by compare-and-set: when it moved under us (another
replica on the same PostgreSQL, or a rebuild swapped in a view further ahead), the batch
is dropped and the consumer is recreated from the stored position. A restart after a
crash resumes after the last committed batch, so a record is never applied twice; the
history key makes even that harmless.

Nothing is applied unchecked: each record is decoded and checked
(``checks.attempt_record_problem``: its subject's tenant and subscription are its own,
enumerations known, timestamps and numbers in range) before its batch is written, and what
fails is set aside (``webhooks_messaging.deadletters``: counted, logged once a minute, kept
on DEADLETTERS) while the position moves past it. Skipping is safe: a record is one attempt
of one delivery, so the view loses that row of one trial history and nothing else, and a
poison record can no longer stop the view for every tenant.

A record whose message carries a sampled ``traceparent`` (the sender sets it to its
attempt's span) gets an ``apply attempt`` CONSUMER span under that attempt, spanning the
batch's write; unsampled messages cost one header lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from webhooks.v1 import messages_pb2
from webhooks_failures.view import FailuresView
from webhooks_messaging import ATTEMPTS
from webhooks_messaging.checks import attempt_record_problem
from webhooks_messaging.deadletters import FAILURES_PROJECTOR, NOT_APPLIED, DeadLetters
from webhooks_messaging.following import StreamFollower
from webhooks_messaging.subjects import FAILURES_VIEW_SUBJECTS
from webhooks_messaging.waiting import sleep_unless
from webhooks_storage import PositionMoved
from webhooks_telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("webhooks.failures")

# Every attempt record but a first attempt that succeeded (``attempts.<t>.<s>.ok``: a
# delivery that never failed, nothing for the view), so the broker sends this consumer only
# what can make or change a failed event. An ordered consumer is made anew with this filter
# at every start: no stored consumer keeps an older one.
SUBJECTS = FAILURES_VIEW_SUBJECTS
# Up to this many messages per transaction when they are waiting (a replay, a backlog): a
# delivery's attempts in one batch fold into one row update, and each batch pays a few
# lookups and statements, so larger batches apply more attempts per CPU second (figures:
# bench/README.md). A quiet stream still gets small batches after ``linger``.
BATCH_SIZE = 4000
LINGER_SECONDS = 0.005
# Messages queued ahead of the database: a few batches, so the next one is ready when a
# write returns, and flow control holds the rest on the broker.
INBOX_LIMIT = 4 * BATCH_SIZE

# (stream sequence, subject, message data, its traceparent when sampled, else None)
Raw = tuple[int, str, bytes, str | None]
# The last hex digit of a traceparent's flags with the sampled bit set.
_SAMPLED = frozenset("13579bdf")


class _Inbox:
    """From the subscription's callback to the batching loop, bounded."""

    def __init__(self, batch_size: int, limit: int) -> None:
        self.items: list[Raw] = []
        self.batch_size = batch_size
        self.limit = limit
        self.closed = False
        self._ready = asyncio.Event()  # items (or closed)
        self._full = asyncio.Event()  # a whole batch is waiting
        self._room = asyncio.Event()
        self._room.set()

    def offer(self, item: Raw) -> bool:
        """Queue ``item`` if there is room (the common case: no coroutine per message)."""
        if len(self.items) >= self.limit and not self.closed:
            return False
        self.items.append(item)
        self._ready.set()
        if len(self.items) >= self.batch_size:
            self._full.set()
        return True

    async def put(self, item: Raw) -> None:
        while not self.offer(item):
            self._room.clear()
            await self._room.wait()

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self._full.set()
        self._room.set()

    async def take(self, linger: float) -> list[Raw]:
        """The next batch; [] once closed."""
        await self._ready.wait()
        if not self._full.is_set() and linger > 0:
            # A quiet stream: a few ms for more to arrive, so a burst is one transaction.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), linger)
        if self.closed:
            return []
        batch = self.items[: self.batch_size]
        del self.items[: self.batch_size]
        if len(self.items) < self.batch_size:
            self._full.clear()
        if not self.items:
            self._ready.clear()
        self._room.set()
        return batch


class Projector(StreamFollower[messages_pb2.AttemptRecord]):
    """Applies ATTEMPTS to ``view`` in batches; one ``run`` at a time per projector."""

    def __init__(
        self,
        view: FailuresView,
        *,
        stream: str = ATTEMPTS,
        batch_size: int = BATCH_SIZE,
        linger: float = LINGER_SECONDS,
        dead: DeadLetters | None = None,
    ) -> None:
        super().__init__(
            stream,
            SUBJECTS,
            messages_pb2.AttemptRecord,
            dead if dead is not None else DeadLetters(FAILURES_PROJECTOR),
            whole_stream=False,
        )
        self.view = view
        self.batch_size = batch_size
        self.linger = linger
        # The stream sequence applied (what the view's position was after our last write
        # or read); -1 until run() has read it.
        self._position = -1
        self.records_applied = 0  # records decoded and handed to the view by this object
        self.batches_applied = 0
        # Held while a batch is written; rebuild() holds it to stop the projector between
        # two batches (a consistent point: the view and its position agree).
        self._lock = asyncio.Lock()

    @property
    def position(self) -> int:
        return self._position

    def check(self, subject: str, message: messages_pb2.AttemptRecord) -> str | None:
        return attempt_record_problem(subject, message)

    @property
    def applied(self) -> int:
        """The ATTEMPTS sequence this projector has applied (or read from the view)."""
        return max(self._position, 0)

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No batch is applied inside; entered between two batches."""
        async with self._lock:
            yield

    async def run(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        """Follow the stream until ``stop`` is set; raises when it cannot subscribe (the
        service's keep_running restarts it, and it resumes from the stored position)."""
        while not stop.is_set():
            self._set_position(await asyncio.to_thread(self.view.position))
            try:
                await self._follow(js, stop)
                return
            except PositionMoved:
                log.info("%s: position moved under the projector; resuming from it", self.stream)

    async def _follow(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        inbox = _Inbox(self.batch_size, max(INBOX_LIMIT, 2 * self.batch_size))

        async def on_message(msg: Msg) -> None:
            seq = self.sequence_of(msg)
            if seq is None:
                return  # set aside
            traceparent = msg.headers.get("traceparent") if msg.headers else None
            if traceparent is not None and traceparent[-1:] not in _SAMPLED:
                traceparent = None
            item = (seq, msg.subject, msg.data, traceparent)
            if not inbox.offer(item):
                await inbox.put(item)

        sub = await self.subscribe(js, on_message)
        closer = asyncio.create_task(_close_when(stop, inbox))
        try:
            while True:
                batch = await inbox.take(self.linger)
                if not batch:
                    return  # stopped
                async with self._lock:
                    await self._apply(batch)
        finally:
            closer.cancel()
            inbox.close()  # release a callback waiting for room
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _apply(self, batch: list[Raw]) -> None:
        previous = self._position
        fresh = [item for item in batch if item[0] > previous]
        if not fresh:
            return
        position = fresh[-1][0]
        work = asyncio.ensure_future(
            asyncio.to_thread(self._decode_and_apply, previous, position, fresh)
        )
        try:
            records = await asyncio.shield(work)
        except asyncio.CancelledError:
            # A write in a thread cannot be interrupted: it finishes before the cancellation
            # goes on, so whoever cancelled finds the view, its position and ``applied``
            # in agreement (and a restart reads where this one ended).
            while not work.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(work)
            if not work.cancelled() and work.exception() is None:
                self._set_position(position)
            raise
        self.records_applied += records
        self.batches_applied += 1
        self._set_position(position)

    def _decode_and_apply(self, previous: int, position: int, batch: Sequence[Raw]) -> int:
        """In a worker thread: decoding a thousand records is milliseconds of CPU.

        Every record is decoded and checked before the batch's write, and whatever fails
        is set aside: one bad record must not cost the good ones of its batch. Should the
        write still fail, the batch is applied record by record and the one the view
        refuses is set aside (``_apply_one_by_one``)."""
        records: list[tuple[int, messages_pb2.AttemptRecord]] = []
        traced: list[tuple[str, messages_pb2.AttemptRecord]] = []
        raws: dict[int, Raw] = {}
        for raw in batch:
            seq, subject, data, traceparent = raw
            record = self.decoded(subject, data, seq)
            if record is None:
                continue  # set aside
            records.append((seq, record))
            raws[seq] = raw
            if traceparent is not None:
                traced.append((traceparent, record))
        started = time.time_ns()
        try:
            # The position covers the skipped messages too: they are never read again.
            self.view.apply(previous, records, position=position)
        except PositionMoved:
            raise
        except Exception as error:
            if not records:
                raise  # nothing but the position: the database itself is failing
            log.warning(
                "%s: a batch of %d records was not applied (%s: %s); applying them one by one",
                self.stream,
                len(records),
                type(error).__name__,
                error,
            )
            return self._apply_one_by_one(previous, position, records, raws)
        if traced:
            _trace_applied(traced, started, time.time_ns())
        return len(records)

    def _apply_one_by_one(
        self,
        previous: int,
        position: int,
        records: Sequence[tuple[int, messages_pb2.AttemptRecord]],
        raws: dict[int, Raw],
    ) -> int:
        """Each record in its own transaction; one the view refuses twice is set aside,
        provided the view still takes a move of its position alone (if not, the database
        is what fails, and that is raised: the projector restarts and tries again)."""
        applied = 0
        at = previous
        for seq, record in records:
            error: Exception | None = None
            for _ in range(2):
                try:
                    self.view.apply(at, [(seq, record)], position=seq)
                    error = None
                    break
                except PositionMoved:
                    raise
                except Exception as failed:
                    error = failed
            if error is None:
                applied += 1
            else:
                self.view.apply(at, [], position=seq)  # raises when the database fails
                # Safe: a record is one attempt of one delivery; skipping it loses that
                # row of its trial history (or, when it was the delivery's only failure,
                # the failed event), nothing of any other delivery.
                _, subject, data, _ = raws[seq]
                self.set_aside(NOT_APPLIED, f"{type(error).__name__}: {error}", subject, data, seq)
            at = seq
        if position > at:
            self.view.apply(at, [], position=position)
        return applied

    def _set_position(self, position: int) -> None:
        self._position = position
        self.progressed()

    # ---- retention

    async def expire_loop(
        self, stop: asyncio.Event, max_age_seconds: int, every_seconds: float = 60
    ) -> None:
        """Every ``every_seconds`` until ``stop``: failed events whose last attempt is
        older than ``max_age_seconds`` leave the view (0 or less: kept forever)."""
        if max_age_seconds <= 0:
            await stop.wait()
            return
        while not stop.is_set():
            before = datetime.now(UTC) - timedelta(seconds=max_age_seconds)
            started = time.monotonic()
            removed = await asyncio.to_thread(self.view.expire, before)
            if removed:
                log.info(
                    "retention: %d failed events older than %s removed in %.2f s",
                    removed,
                    before.isoformat(timespec="seconds"),
                    time.monotonic() - started,
                )
            await sleep_unless(stop, every_seconds)

    # The service wiring calls it by this name.
    retention = expire_loop


def _trace_applied(
    traced: Sequence[tuple[str, messages_pb2.AttemptRecord]], started: int, ended: int
) -> None:
    """An ``apply attempt`` span per record, under the attempt that made it, spanning the
    write of its batch."""
    for traceparent, record in traced:
        span = tracer.start_span(
            "apply attempt",
            context=extract_context({"traceparent": traceparent}),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "webhooks.tenant": record.tenant,
                "webhooks.delivery_id": record.delivery_id,
                "webhooks.series": record.series,
                "webhooks.attempt": record.attempt,
                "webhooks.outcome": messages_pb2.AttemptOutcome.Name(record.outcome),
            },
            start_time=started,
        )
        span.end(end_time=ended)


async def _close_when(stop: asyncio.Event, inbox: _Inbox) -> None:
    await stop.wait()
    inbox.close()
