"""Following the SUBSCRIPTIONS stream into an in-memory projection.

The router's routing table and the sender's directory of endpoints are both projections of
this stream. This module owns the reading of it: an ordered push consumer (ephemeral, in
memory, no acks, flow-controlled) from sequence 1 or from where the projection already is,
the decoding of each SubscriptionDomainEvent, ``ready`` once the projection holds what the
stream held at start-up, and ``caught_up`` — the check that the projection has applied
everything on the stream now, which the router makes before routing (so that a deactivation
on the stream stops deliveries) and the sender before taking a job of an unknown
subscription version.

Nothing is applied unchecked (checks.subscription_message_problem: the subject's tenant and
id are the state's, the version is positive, timestamps and enumerations are in range).
A message that does not decode, check or apply is set aside (deadletters.py) and the feed
moves past it. That is safe because every message carries the whole state of its
subscription or certificate: the next change supersedes a skipped one, and until then the
projection keeps the state it had (a forged message never replaces a real one).

nats-py's ordered consumer recreates its consumer from the last stream sequence it saw
when it detects a gap (a message lost on a reconnect) or misses two idle heartbeats (the
server restarted and its in-memory consumer is gone), so a reconnect needs nothing here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Generic, Protocol, TypeVar

import nats.js.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from webhooks.v1 import messages_pb2
from webhooks_messaging.checks import subscription_message_problem
from webhooks_messaging.deadletters import (
    INVALID,
    NOT_APPLIED,
    UNDECODABLE,
    DeadLetters,
    Original,
)
from webhooks_messaging.positions import PositionWaiters
from webhooks_messaging.streams import SUBSCRIPTIONS

log = logging.getLogger(__name__)

SUBJECTS = "subscriptions.>"
# Idle heartbeats of the ordered consumer: two missed ones make nats-py recreate it, so
# after a broker restart the table follows the stream again within ~2 s.
IDLE_HEARTBEAT_SECONDS = 1.0
# The broker's flow control keeps far fewer bytes in flight than this (its window is a
# few MiB), so the client never drops a message as a "slow consumer" (nats-py would skip
# it silently: the ordered consumer tracks sequences before queueing).
PENDING_BYTES_LIMIT = 512 * 1024 * 1024
PENDING_MSGS_LIMIT = 4 * 1024 * 1024
STREAM_INFO_TIMEOUT = 5.0  # seconds, as js.stream_info's default


class Projection(Protocol):
    """What the feed applies the stream to. ``applied_seq`` is the last stream sequence
    applied (0: none); every method advances it to ``stream_seq``."""

    applied_seq: int

    def apply(self, state: messages_pb2.SubscriptionState, stream_seq: int) -> None: ...

    def apply_certificate(self, state: messages_pb2.CertificateState, stream_seq: int) -> None: ...

    def advance(self, stream_seq: int) -> None: ...

    def __len__(self) -> int: ...


P = TypeVar("P", bound=Projection)


def stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream message's ack subject (v1 or v2 with domain)."""
    tokens = reply.split(".")
    # v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    # v2: $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.…
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


class SubscriptionFeed(Generic[P]):
    """Applies the SUBSCRIPTIONS stream to ``table``: in full at start, then as it grows."""

    def __init__(
        self, table: P, stream: str = SUBSCRIPTIONS, dead: DeadLetters | None = None
    ) -> None:
        self.table = table
        self.stream = stream
        self.ready = asyncio.Event()
        # What is set aside (undecodable, invalid, not applied): counted, logged, and kept
        # on DEADLETTERS when the service gave a DeadLetters with a connection.
        self.dead = dead if dead is not None else DeadLetters("subscriptions-feed")
        self._caught_up = PositionWaiters()  # caught_up() waiters, by stream sequence
        self._build_target = 0
        self._build_started = 0.0

    @property
    def skipped(self) -> dict[str, int]:
        """Messages set aside since start, by reason."""
        return dict(self.dead.counts)

    async def run(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        """Follow the stream until ``stop`` is set; raises if it cannot subscribe (the
        service restarts it then, and it resumes after ``table.applied_seq``)."""
        self._build_started = time.monotonic()
        self._build_target = (await js.stream_info(self.stream)).state.last_seq
        self._check_ready()
        start = self.table.applied_seq + 1
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL if start <= 1 else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if start <= 1 else start,
        )
        sub = await js.subscribe(
            SUBJECTS,
            stream=self.stream,
            cb=self._on_message,
            config=config,
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT_SECONDS,
            pending_msgs_limit=PENDING_MSGS_LIMIT,
            pending_bytes_limit=PENDING_BYTES_LIMIT,
        )
        try:
            await stop.wait()
        finally:
            await sub.unsubscribe()

    # A timeout parameter, not asyncio.timeout around the call: a timeout is an answer
    # (False) here, not an error.
    async def caught_up(
        self,
        js: JetStreamContext,
        timeout: float,  # noqa: ASYNC109
        *,
        target: int | None = None,
    ) -> bool:
        """Whether the table has applied everything on the stream now, waiting up to
        ``timeout`` seconds for it.

        ``target``: the stream's last sequence (``stream_end``) when the caller asked for it
        itself, e.g. while it was fetching the work this check guards: one round trip less.
        "Now" is then when that answer was asked for.
        """
        if target is None:
            target = await self.stream_end(js)
        if self.table.applied_seq >= target:
            return True
        try:
            await asyncio.wait_for(self._caught_up.wait(target), timeout)
            return True
        except TimeoutError:
            return False

    async def stream_end(self, js: JetStreamContext) -> int:
        """The stream's last sequence now (a round trip to the broker).

        The STREAM.INFO request itself rather than ``js.stream_info``: that one turns the
        whole answer (configuration, limits, cluster) into objects, several times the cost
        of the request, and the router asks before every batch it routes.
        """
        nc = getattr(js, "_nc", None)
        prefix = getattr(js, "_prefix", None)
        if nc is None or not isinstance(prefix, str):  # another nats-py: the public way
            return int((await js.stream_info(self.stream)).state.last_seq)
        reply = json.loads(
            (await nc.request(f"{prefix}.STREAM.INFO.{self.stream}", b"", STREAM_INFO_TIMEOUT)).data
        )
        if "error" in reply:
            nats.js.errors.APIError.from_error(reply["error"])  # raises the matching error
        return int(reply["state"]["last_seq"])

    async def _on_message(self, msg: Msg) -> None:
        # Everything is caught here: an exception would reach nats-py's error callback and
        # the message would be lost without advancing applied_seq.
        try:
            seq = stream_sequence(msg.reply)
        except (ValueError, IndexError):
            self._skip(INVALID, "no stream sequence in the reply subject", msg, 0)
            return
        try:
            event = messages_pb2.SubscriptionDomainEvent.FromString(msg.data)
        except DecodeError as error:
            self._skip(UNDECODABLE, f"not a SubscriptionDomainEvent: {error}", msg, seq)
            return
        problem = subscription_message_problem(msg.subject, event)
        if problem:
            self._skip(INVALID, problem, msg, seq)
            return
        try:
            if event.HasField("subscription"):
                self.table.apply(event.subscription, seq)
            else:
                self.table.apply_certificate(event.certificate, seq)
        except Exception as error:
            self._skip(NOT_APPLIED, f"{type(error).__name__}: {error}", msg, seq)
            return
        self._progressed()

    def _skip(self, reason: str, detail: str, msg: Msg, seq: int) -> None:
        """Sets the message aside and moves past it: the next change of the same
        subscription or certificate carries its whole state and supersedes it."""
        self.dead.set_aside(
            reason,
            detail,
            Original(
                subject=msg.subject,
                data=msg.data or b"",
                headers=msg.headers,
                stream=self.stream,
                sequence=seq,
            ),
        )
        self.table.advance(seq)
        self._progressed()

    def _progressed(self) -> None:
        self._caught_up.reached(self.table.applied_seq)
        if not self.ready.is_set():
            self._check_ready()

    def _check_ready(self) -> None:
        if self.ready.is_set() or self.table.applied_seq < self._build_target:
            return
        self.ready.set()
        log.info(
            "%s projection built: %d subscriptions in %.2f s",
            self.stream,
            len(self.table),
            time.monotonic() - self._build_started,
        )
