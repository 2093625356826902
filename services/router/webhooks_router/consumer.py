"""Routing: the durable consumers of EVENTS, one per lane (intake.py: the standard lane
first), that turn each event into delivery jobs on its lane.

Every message ends in exactly one of: ack (all its jobs are stored on DELIVERIES), nak
(routing it failed: it comes back), term (malformed: see deadletters; or routing it
failed for a reason not the broker's on each of its first five deliveries: see
webhooks_messaging.handling). Before a batch is routed the routing table is brought up
to the SUBSCRIPTIONS stream's current end, so a deactivation already on the stream is
never routed past.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from opentelemetry import propagate, trace
from opentelemetry.trace import StatusCode

from webhooks.v1 import messages_pb2
from webhooks_grpc.collector import collect_less_often
from webhooks_messaging import BULK_EVENT_SUBJECTS, EVENT_SUBJECTS, EVENTS, is_bulk_event, pulling
from webhooks_messaging.consumers import durable_pull
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_messaging.handling import Retrying, describe
from webhooks_messaging.heartbeats import ACK_WAIT_SECONDS, Heartbeats
from webhooks_messaging.waiting import first_of
from webhooks_router.deadletters import DeadLetters
from webhooks_router.intake import Intake
from webhooks_router.jobs import EventJobs, trace_fields
from webhooks_router.matching import webhook_event_about
from webhooks_router.publishing import (
    CONFIRM_TIMEOUT_SECONDS,
    Batch,
    Confirmation,
    JobPublisher,
    send_traced,
)
from webhooks_router.routes import RoutingTable
from webhooks_router.validation import InvalidEvent, validate_event
from webhooks_telemetry import extract_context, inject_headers, metrics

log = logging.getLogger(__name__)
tracer = trace.get_tracer("webhooks.router")

# The headers the configured propagators read (by default traceparent, tracestate, baggage).
_TRACE_FIELDS = frozenset(propagate.get_global_textmap().fields)
DURABLE = "router"
BULK_DURABLE = "router-bulk"
JOBS_ROUTED = metrics.counter(metrics.JOBS_ROUTED)
LANES = {False: {"lane": "standard"}, True: {"lane": "bulk"}}  # is bulk -> attributes
FETCH_BATCH = 256
MAX_SETTLING_BATCHES = 4  # batches sent whose acknowledgements are still awaited
CATCH_UP_TIMEOUT_SECONDS = 5.0
RETRY_DELAY_SECONDS = 2.0


@dataclass(slots=True)
class Decoded:
    msg: Msg
    event: messages_pb2.PlatformEvent
    data: dict[str, Any]


@dataclass(slots=True)
class Sent:
    """A batch whose jobs are sent: each event with the confirmation of its jobs, and
    every message of the batch (held until the batch is settled)."""

    batch: Batch
    events: list[tuple[Decoded, Confirmation]]
    messages: list[Msg]


def _consumer_config(subjects: str) -> ConsumerConfig:
    """The durable consumer of one lane of EVENTS (made or updated at every start)."""
    return ConsumerConfig(
        filter_subject=subjects,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=20_000,
    )


async def _hand_back(batches: list[tuple[list[Msg], int]]) -> None:
    """Batches fetched and not routed (the router stops): back to the broker now."""
    for messages, _ in batches:
        with contextlib.suppress(Exception):
            await asyncio.gather(*(m.nak() for m in messages))


class EventConsumer:
    def __init__(
        self,
        table: RoutingTable,
        feed: SubscriptionFeed[RoutingTable],
        dead: DeadLetters,
        nc: NATS,
    ) -> None:
        self._table = table
        self._feed = feed
        self._dead = dead
        self._nc = nc
        self._retrying = Retrying(dead, delay=RETRY_DELAY_SECONDS)
        # A batch waits up to CONFIRM_TIMEOUT_SECONDS for its jobs' confirmations, around
        # the consumer's short ack_wait: heartbeats keep its events from another router.
        self._heartbeats = Heartbeats()
        self.routed_events = 0
        self.published_jobs = 0

    async def run(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        # One durable consumer per lane, each shared by every router replica: each event
        # goes to one. The standard lane is routed first (intake.py).
        standard = await durable_pull(js, EVENTS, DURABLE, _consumer_config(EVENT_SUBJECTS))
        bulk = await durable_pull(js, EVENTS, BULK_DURABLE, _consumer_config(BULK_EVENT_SUBJECTS))
        intake: Intake[tuple[list[Msg], int]] = Intake(
            lambda: self._next_batch(js, standard), lambda: self._next_batch(js, bulk)
        )
        publisher = JobPublisher(self._nc)
        settling: set[asyncio.Task[None]] = set()
        heartbeats = asyncio.create_task(self._heartbeats.run())
        try:
            await publisher.start()
            await first_of(self._feed.ready.wait(), stop)
            # The routing table is built: from here on the start-up is not traversed.
            collect_less_often()
            intake.start()
            while (taken := await intake.next(stop)) is not None:
                (messages, end), _ = taken
                if not await self._feed.caught_up(js, CATCH_UP_TIMEOUT_SECONDS, target=end):
                    log.warning("routing table behind SUBSCRIPTIONS; retrying the batch later")
                    await asyncio.gather(*(m.nak(delay=RETRY_DELAY_SECONDS) for m in messages))
                    continue
                # The next batch is fetched and sent while this one's acknowledgements are
                # awaited: waiting for the broker, not Python, would otherwise set the pace.
                sent = await self.send(publisher, messages)
                task = asyncio.create_task(self.settle(sent))
                settling.add(task)
                task.add_done_callback(settling.discard)
                if len(settling) >= MAX_SETTLING_BATCHES:
                    await asyncio.wait(settling, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _hand_back(await intake.stop())
            if settling:
                await asyncio.wait(settling)
            heartbeats.cancel()
            await publisher.close()
            # A restart (after an error) subscribes again: do not leave these behind.
            for subscription in (standard, bulk):
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            # What this replica did since it started: how routing spread over replicas.
            log.info(
                "routing consumer stopped: %d events routed, %d jobs published since start",
                self.routed_events,
                self.published_jobs,
            )

    async def _next_batch(
        self, js: JetStreamContext, subscription: JetStreamContext.PullSubscription
    ) -> tuple[list[Msg], int]:
        """The next event as soon as there is one, with whatever else is already waiting,
        and the SUBSCRIPTIONS stream's last sequence asked for once the first had come.

        The stream's end is asked for while the waiting messages are fetched
        (webhooks_messaging.pulling), not after: the routing table must have applied
        everything stored before the batch is routed, and this saves a round trip per batch.
        """
        messages = await pulling.first(subscription)
        end = asyncio.ensure_future(self._feed.stream_end(js))
        try:
            messages += await pulling.waiting(subscription, FETCH_BATCH - 1)
        except BaseException:
            end.cancel()
            raise
        return messages, await end

    async def send(self, publisher: JobPublisher, messages: list[Msg]) -> Sent:
        """Sends the jobs of every valid event; invalid ones are terminated here. The
        messages are held (kept alive) until ``settle`` is done with the batch."""
        sent = Sent(publisher.batch(), [], messages)
        for msg in messages:
            self._heartbeats.hold(msg)
        try:
            for msg in messages:
                item = await self._decode(msg)
                if item is not None:
                    sent.events.append((item, await self._send(publisher, sent.batch, item)))
        except BaseException:
            self._release(sent)  # not settled: the broker redelivers them after ack_wait
            raise
        finally:
            sent.batch.seal()
        return sent

    def _release(self, sent: Sent) -> None:
        for msg in sent.messages:
            self._heartbeats.settled(msg)

    async def settle(self, sent: Sent) -> None:
        """Acknowledges each event whose jobs are all stored; the others come back, or
        are set aside when they keep failing for a reason not the broker's."""
        jobs = 0
        try:
            await sent.batch.wait(CONFIRM_TIMEOUT_SECONDS)
            for item, confirmation in sent.events:
                if confirmation.error is not None:
                    await self._retrying.failed(
                        item.msg,
                        confirmation.error,
                        transient=confirmation.transient,
                        kind=confirmation.kind,
                        what=f"event {item.event.event_id}",
                    )
                    continue
                await item.msg.ack()
                self.routed_events += 1
                jobs += confirmation.jobs
        finally:
            self._release(sent)
            self.published_jobs += jobs
            if jobs:  # one batch is one lane's (intake.py): counted once per batch
                JOBS_ROUTED.add(jobs, LANES[is_bulk_event(sent.events[0][0].msg.subject)])

    async def _decode(self, msg: Msg) -> Decoded | None:
        event = messages_pb2.PlatformEvent()
        try:
            event.ParseFromString(msg.data or b"")
        except DecodeError as error:
            await self._dead.terminate(msg, "undecodable", str(error))
            return None
        try:
            data = validate_event(event, subject=msg.subject)
        except InvalidEvent as error:
            await self._dead.terminate(msg, "invalid", str(error))
            return None
        except Exception as error:  # a value the rules did not foresee: still this event's
            await self._dead.terminate(msg, "invalid", f"{type(error).__name__}: {error}")
            return None
        return Decoded(msg, event, data)

    async def _send(self, publisher: JobPublisher, batch: Batch, item: Decoded) -> Confirmation:
        """Sends the event's jobs in its routing span; a failure is the confirmation's."""
        event = item.event
        headers = item.msg.headers
        # Most of the propagator's work is for nothing when no header of it is there.
        parent = (
            extract_context(headers) if headers and not _TRACE_FIELDS.isdisjoint(headers) else None
        )
        span = tracer.start_span(
            "route event",
            context=parent,
            attributes={
                "webhooks.event_id": event.event_id,
                "webhooks.tenant": event.tenant,
                "webhooks.entity": event.entity,
                "webhooks.trigger": event.trigger,
            },
        )
        confirmation = batch.event()
        try:
            entries = self._table.route(event, about=webhook_event_about(event, item.data))
            span.set_attribute("webhooks.jobs", len(entries))
            if entries:
                context = trace.set_span_in_context(span, parent)
                jobs = EventJobs(event, item.data, bulk=is_bulk_event(item.msg.subject))
                if span.is_recording():
                    for entry in entries:
                        await send_traced(publisher, confirmation, jobs.job(entry), context)
                else:
                    # Not sampled: no span per job (none would be recorded); every job
                    # carries the routing span's context, flagged as not sampled.
                    trace_headers = inject_headers({}, context)
                    trace_context = trace_fields(trace_headers)
                    for entry in entries:
                        await publisher.send(
                            confirmation, jobs.job(entry), trace_headers, trace_context
                        )
        except Exception as error:  # the broker refused a send, or a bug: see settle
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, str(error))
            confirmation.fail(describe(error), error)
        finally:
            span.end()
            batch.seal(confirmation)
        return confirmation
