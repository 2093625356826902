"""Publishing delivery jobs onto DELIVERIES: each in its own span, acknowledged by the broker.

Jobs are sent asynchronously (no task or request per job, many in flight on one
connection) and their acknowledgements awaited together, so a caller knows all of an
event's jobs are stored before it acknowledges the event. Routing uses ``JobPublisher``
(one confirmation per event, one wait per batch); replay the simpler ``publish_jobs``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import nats.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, StatusCode

from webhooks_messaging import DELIVERIES
from webhooks_messaging.handling import is_transient
from webhooks_messaging.publisher import ConfirmedPublisher, Duplicate, PublisherClosed
from webhooks_router.jobs import OutgoingJob, RoutedJob, trace_fields
from webhooks_telemetry import inject_headers

tracer = trace.get_tracer("webhooks.router")
# An acknowledgement that never comes (a broker lost mid-publish) must not hang routing.
CONFIRM_TIMEOUT_SECONDS = 10.0
STORE_TIMEOUT_SECONDS = 5.0  # nats-py's js.publish default


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


class Confirmation:
    """The broker's verdict on one event's jobs: ``error`` is None when all are stored.

    A failed event is nakked, and set aside after a few deliveries when the failure was
    not the broker's (``transient`` False: see webhooks_messaging.handling); ``kind``
    names the failure (the exception's type) for the rate-limited log line. Called with
    each job's outcome (webhooks_messaging.publisher): itself the callback, so a job
    costs no callback object.
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

    def __call__(self, outcome: BaseException | None) -> None:
        """One job answered: stored (None), or the broker's reason it is not."""
        if outcome is not None:
            self.fail(_reason(outcome))
        self.remaining -= 1  # _answered, inlined: once per job
        if self.remaining == 0:
            self._batch._answered()

    def _answered(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self._batch._answered()


def _reason(outcome: BaseException) -> str:
    if isinstance(outcome, NoStreamResponseError):
        return "no stream stores the job's subject"
    if isinstance(outcome, TimeoutError):
        return f"not confirmed: {outcome}"
    if isinstance(outcome, PublisherClosed):
        return "publisher closed"
    return f"broker refused a job: {outcome}"


class Batch:
    """The confirmations of a batch of events, awaited together."""

    __slots__ = ("_done", "_first", "_last", "_publisher", "open")

    def __init__(self, publisher: JobPublisher, first: int) -> None:
        self._publisher = publisher
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._first = first  # the tokens of its jobs: first <= token < last
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
            self._last = self._publisher.sent + 1
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
            late = TimeoutError(f"no PubAck within {timeout:g} s")
            await self._publisher.give_up(range(self._first, self._last), late)


class JobPublisher:
    """Publishes jobs onto DELIVERIES, confirmed per event, without a task or future per job.

    Every job's outcome is counted down on its event's confirmation (the callback of
    webhooks_messaging.publisher); a batch of events is then awaited as a whole. The same
    wire messages as ``js.publish_async`` (with ``Nats-Expected-Stream``), a fraction of
    its per-message work.
    """

    def __init__(self, nc: NATS, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._publisher = ConfirmedPublisher(
            nc, DELIVERIES, confirm_timeout=CONFIRM_TIMEOUT_SECONDS, max_in_flight=max_in_flight
        )

    @property
    def sent(self) -> int:
        return self._publisher.sent

    async def start(self) -> None:
        await self._publisher.start()

    async def close(self) -> None:
        await self._publisher.close()

    def batch(self) -> Batch:
        return Batch(self, self._publisher.sent + 1)

    async def give_up(self, tokens: range, error: BaseException) -> None:
        await self._publisher.give_up(tokens, error)

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
        confirmation.remaining += 1
        confirmation.jobs += 1
        try:
            await self._publisher.publish(
                job.subject,
                job.serialize(trace_context),
                {"Nats-Msg-Id": job.job_id, **trace_headers},
                confirmation,
            )
        except BaseException:
            confirmation.remaining -= 1
            confirmation.jobs -= 1
            raise


class StreamStore:
    """Stores messages on a stream and tells new ones from duplicates, like ``js.publish``,
    but with one reply subscription for every acknowledgement: a future and a timer per
    call rather than an inbox, a task and a timer per message."""

    def __init__(self, nc: NATS, stream: str) -> None:
        # Each call times out by itself (and gives up on its messages): no sweep.
        self._publisher = ConfirmedPublisher(nc, stream, confirm_timeout=None, tell_duplicates=True)

    async def start(self) -> None:
        await self._publisher.start()

    async def close(self) -> None:
        await self._publisher.close()

    async def store(
        self,
        messages: Sequence[tuple[str, bytes, dict[str, str]]],
        timeout: float = STORE_TIMEOUT_SECONDS,  # noqa: ASYNC109
    ) -> list[bool]:
        """Stores each (subject, payload, headers); whether each was a duplicate. Raises as
        ``js.publish`` does: the broker's APIError, NoStreamResponseError, TimeoutError."""
        call = _Stored(len(messages))
        tokens: list[int] = []
        try:
            for index, (subject, payload, headers) in enumerate(messages):
                then = functools.partial(call.answer, index)
                tokens.append(await self._publisher.publish(subject, payload, headers, then))
            call.sent()
            try:
                return await asyncio.wait_for(asyncio.shield(call.done), timeout)
            except TimeoutError:
                raise nats.errors.TimeoutError from None
        finally:
            if call.remaining:  # an error, a timeout, or not all sent: the rest is dropped
                if not call.done.done():
                    call.done.cancel()
                elif not call.done.cancelled():
                    call.done.exception()  # retrieved: no "never retrieved" warning
                await self._publisher.give_up(tokens, nats.errors.TimeoutError())


class _Stored:
    """The answers to one ``store`` call: ``done`` holds the duplicates, or the first error."""

    __slots__ = ("done", "duplicates", "remaining")

    def __init__(self, count: int) -> None:
        self.done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self.duplicates = [False] * count
        self.remaining = count + 1  # plus one while the messages are being sent

    def answer(self, index: int, outcome: BaseException | None) -> None:
        if self.done.done():
            return
        if isinstance(outcome, Duplicate):
            self.duplicates[index] = True
        elif outcome is not None:
            self.done.set_exception(outcome)
            return
        self.sent()

    def sent(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(self.duplicates)
