"""Publishing delivery jobs onto DELIVERIES: each in its own span, acknowledged by the broker.

Jobs are sent asynchronously (no task or request per job, many in flight on one
connection) and their acknowledgements awaited together, so a caller knows all of an
event's jobs are stored before it acknowledges the event. Routing uses ``JobPublisher``
(one confirmation per event, one wait per batch); replay the simpler ``publish_jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, StatusCode

from webhooks_messaging import DELIVERIES
from webhooks_messaging.handling import is_transient
from webhooks_router.jobs import OutgoingJob, RoutedJob, trace_fields
from webhooks_telemetry import inject_headers

tracer = trace.get_tracer("webhooks.router")
# An acknowledgement that never comes (a broker lost mid-publish) must not hang routing.
CONFIRM_TIMEOUT_SECONDS = 10.0
EXPECTED_STREAM = "Nats-Expected-Stream"
STATUS_HEADER = "Status"  # where nats-py puts the status of a status message


async def send_job(js: JetStreamContext, outgoing: OutgoingJob) -> asyncio.Future[PubAck]:
    """Sends one job; the returned future resolves when the broker has stored it."""
    job = outgoing.job
    with tracer.start_as_current_span(
        f"publish {DELIVERIES}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": outgoing.subject,
            "webhooks.delivery_id": job.delivery_id,
            "webhooks.subscription_id": job.subscription_id,
        },
    ):
        headers = inject_headers({"Nats-Msg-Id": outgoing.msg_id})
        job.trace_context.update({k: v for k, v in headers.items() if k != "Nats-Msg-Id"})
        return await js.publish_async(
            outgoing.subject, job.SerializeToString(), stream=DELIVERIES, headers=headers
        )


async def send_traced(
    publisher: JobPublisher, confirmation: Confirmation, job: RoutedJob, parent: Context
) -> None:
    """Sends one job through ``publisher`` in its own publish span, a child of ``parent``."""
    span = tracer.start_span(
        f"publish {DELIVERIES}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": job.subject,
            "webhooks.delivery_id": job.delivery_id,
            "webhooks.subscription_id": job.subscription_id,
        },
    )
    try:
        headers = inject_headers({}, trace.set_span_in_context(span, parent))
        await publisher.send(confirmation, job, headers)
    except Exception as error:
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, str(error))
        raise
    finally:
        span.end()


async def confirm(acks: Sequence[asyncio.Future[PubAck]]) -> None:
    """Every job stored, or an exception: then the event may not be acknowledged."""
    if acks:
        await asyncio.wait_for(asyncio.gather(*acks), CONFIRM_TIMEOUT_SECONDS)


async def publish_jobs(js: JetStreamContext, jobs: Sequence[OutgoingJob]) -> None:
    await confirm([await send_job(js, job) for job in jobs])


# Jobs published and not yet acknowledged by the broker, at most (like publish_async's
# pending limit): past it, sending waits until half of them are confirmed.
MAX_IN_FLIGHT = 4000
NO_RESPONDERS = "503"


class Confirmation:
    """The broker's verdict on one event's jobs: ``error`` is None when all are stored.

    A failed event is nakked, and set aside after a few deliveries when the failure was
    not the broker's (``transient`` False: see webhooks_messaging.handling); ``kind``
    names the failure (the exception's type) for the rate-limited log line.
    """

    __slots__ = ("_batch", "error", "jobs", "kind", "remaining", "transient")

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self.jobs = 0
        self.error: str | None = None
        self.transient = True
        self.kind = ""
        # Jobs sent and not yet answered, plus one while the event is still being sent.
        self.remaining = 1

    def fail(self, reason: str, error: BaseException | None = None) -> None:
        """The first failure is the event's. ``error``: the exception raised, if one was;
        without it ``reason`` is the broker's answer (refused, none, too late): transient."""
        if self.error is None:
            self.error = reason
            self.transient = error is None or is_transient(error)
            self.kind = "broker" if error is None else type(error).__name__

    def _answered(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self._batch._answered()


class Batch:
    """The confirmations of a batch of events, awaited together."""

    __slots__ = ("_done", "_first", "_last", "_publisher", "open")

    def __init__(self, publisher: JobPublisher, first: int) -> None:
        self._publisher = publisher
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._first = first  # the reply tokens of its jobs: first <= token < last
        self._last = first
        # Confirmations not yet complete, plus one while the batch is still being sent.
        self.open = 1

    def event(self) -> Confirmation:
        """A confirmation for the next event's jobs; ``seal`` it once they are sent."""
        self.open += 1
        return Confirmation(self)

    def seal(self, confirmation: Confirmation | None = None) -> None:
        """No more jobs for ``confirmation`` (or, without one, no more events)."""
        if confirmation is not None:
            confirmation._answered()
        else:
            self._last = self._publisher._next
            self._answered()

    def _answered(self) -> None:
        self.open -= 1
        if self.open == 0 and not self._done.done():
            self._done.set_result(None)

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until every job is answered, or ``timeout``: then the unanswered ones fail."""
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            self._publisher._give_up(range(self._first, self._last))


class JobPublisher:
    """Publishes jobs onto DELIVERIES, confirmed per event, without a task or future per job.

    Every job is published with a reply subject under one inbox subscription, whose handler
    counts the broker's acknowledgements down on the job's event; a batch of events is then
    awaited as a whole. The same wire messages as ``js.publish_async`` (with the
    ``Nats-Expected-Stream`` header), a fraction of its per-message work.
    """

    def __init__(self, nc: NATS, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._nc = nc
        self._max_in_flight = max_in_flight
        self._prefix = ""
        self._sub: Subscription | None = None
        self._waiting: dict[str, Confirmation] = {}
        self._next = 0
        self._room = asyncio.Event()
        self._room.set()

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        for confirmation in self._waiting.values():
            confirmation.fail("publisher closed")
            confirmation._answered()
        self._waiting.clear()

    def batch(self) -> Batch:
        return Batch(self, self._next)

    async def send(
        self,
        confirmation: Confirmation,
        job: RoutedJob,
        trace_headers: dict[str, str],
        trace_context: bytes | None = None,
    ) -> None:
        """Publishes one job; its answer is counted on ``confirmation``. Raises if it
        could not be sent (then it is not counted). ``trace_context``: ``trace_headers``
        serialized by ``trace_fields`` when the caller has them (shared by many jobs)."""
        if trace_context is None:
            trace_context = trace_fields(trace_headers)
        if len(self._waiting) >= self._max_in_flight:
            await asyncio.wait_for(self._room.wait(), CONFIRM_TIMEOUT_SECONDS)
        headers = {"Nats-Msg-Id": job.job_id, **trace_headers, EXPECTED_STREAM: DELIVERIES}
        token = str(self._next)
        self._next += 1
        self._waiting[token] = confirmation
        confirmation.remaining += 1
        confirmation.jobs += 1
        try:
            await self._nc.publish(
                job.subject,
                job.serialize(trace_context),
                reply=self._prefix + token,
                headers=headers,
            )
        except BaseException:
            if self._waiting.pop(token, None) is not None:
                confirmation.remaining -= 1
                confirmation.jobs -= 1
            raise
        if len(self._waiting) >= self._max_in_flight:
            self._room.clear()

    async def _on_reply(self, msg: Msg) -> None:
        confirmation = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if confirmation is None:
            return  # given up on already
        if msg.headers and msg.headers.get(STATUS_HEADER) == NO_RESPONDERS:
            confirmation.fail("no stream stores the job's subject")
        elif b'"error"' in msg.data:
            try:
                error = json.loads(msg.data).get("error")
            except ValueError:
                error = msg.data[:200]
            if error:
                confirmation.fail(f"broker refused a job: {error}")
        confirmation._answered()
        if not self._room.is_set() and len(self._waiting) <= self._max_in_flight // 2:
            self._room.set()

    def _give_up(self, tokens: range) -> None:
        for token in tokens:
            confirmation = self._waiting.pop(str(token), None)
            if confirmation is not None:
                confirmation.fail(f"not confirmed within {CONFIRM_TIMEOUT_SECONDS:.0f} s")
                confirmation._answered()
        if not self._room.is_set() and len(self._waiting) <= self._max_in_flight // 2:
            self._room.set()


STORE_TIMEOUT_SECONDS = 5.0  # nats-py's js.publish default


class StreamStore:
    """Stores messages on a stream and tells new ones from duplicates, like ``js.publish``,
    but with one reply subscription for every acknowledgement: a future per message and
    one timer per call rather than an inbox, a task and a timer per message."""

    def __init__(self, nc: NATS, stream: str) -> None:
        self._nc = nc
        self._stream = stream
        self._prefix = ""
        self._sub: Subscription | None = None
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._next = 0

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def store(
        self,
        messages: Sequence[tuple[str, bytes, dict[str, str]]],
        timeout: float = STORE_TIMEOUT_SECONDS,  # noqa: ASYNC109
    ) -> list[bool]:
        """Stores each (subject, payload, headers); whether each was a duplicate. Raises as
        ``js.publish`` does: the broker's APIError, NoStreamResponseError, TimeoutError."""
        loop = asyncio.get_running_loop()
        tokens: list[str] = []
        futures: list[asyncio.Future[bool]] = []
        try:
            for subject, payload, headers in messages:
                token = str(self._next)
                self._next += 1
                future: asyncio.Future[bool] = loop.create_future()
                self._waiting[token] = future
                tokens.append(token)
                futures.append(future)
                headers[EXPECTED_STREAM] = self._stream
                await self._nc.publish(
                    subject, payload, reply=self._prefix + token, headers=headers
                )
            try:
                return await asyncio.wait_for(asyncio.gather(*futures), timeout)
            except TimeoutError:
                raise nats.errors.TimeoutError from None
        finally:
            for token in tokens:
                self._waiting.pop(token, None)
            for future in futures:
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # retrieved: no "never retrieved" warnings

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get(STATUS_HEADER) == NO_RESPONDERS:
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            reply = json.loads(msg.data)
        except ValueError as error:
            future.set_exception(error)
            return
        if "error" in reply:
            try:
                nats.js.errors.APIError.from_error(reply["error"])  # raises the right subclass
            except Exception as error:  # an APIError, or whatever an odd reply causes
                future.set_exception(error)
        else:
            future.set_result(bool(reply.get("duplicate", False)))
