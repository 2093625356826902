"""Following a JetStream stream into a projection: what every projection shares.

A projection (the router's routing table, the sender's directory, the failures view) is
built by reading its stream from the position it already holds. ``StreamFollower`` owns
that reading:

- an ordered push consumer (ephemeral, in memory, no acks, flow-controlled, idle
  heartbeats) from the sequence after the projection's position;
- the stream sequence of each message (from its reply subject), its decoding and check;
- setting aside (deadletters.py) what cannot be decoded, checked or applied, with its
  stream and sequence, while the position moves past it;
- read-your-writes: ``stream_end`` (the last sequence of what it follows now), ``reached``
  and ``caught_up`` (waiting, bounded, for the projection to apply up to it).

A projection applied message by message implements ``position``, ``check``, ``apply``
and ``advance``; one that batches (the failures projector) overrides ``run`` and builds
on ``subscribe``, ``sequence_of``, ``decoded`` and ``progressed``.

nats-py's ordered consumer recreates its consumer from the last stream sequence it saw
when it detects a gap (a message lost on a reconnect) or misses two idle heartbeats (the
server restarted and its in-memory consumer is gone), so a reconnect needs nothing here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

import nats.js.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from webhooks_messaging.deadletters import (
    INVALID,
    NOT_APPLIED,
    UNDECODABLE,
    DeadLetters,
    Original,
)
from webhooks_messaging.positions import PositionWaiters

# Idle heartbeats of the ordered consumer: two missed ones make nats-py recreate it, so
# after a broker restart the projection follows the stream again within ~2 s.
IDLE_HEARTBEAT_SECONDS = 1.0
# The broker's flow control keeps far fewer bytes in flight than this (its window is a
# few MiB), so the client never drops a message as a "slow consumer" (nats-py would skip
# it silently: the ordered consumer tracks sequences before queueing).
PENDING_BYTES_LIMIT = 512 * 1024 * 1024
PENDING_MSGS_LIMIT = 4 * 1024 * 1024
STREAM_INFO_TIMEOUT = 5.0  # seconds, as js.stream_info's default
_NO_MESSAGE_FOUND = 10037  # JetStream API error code of a message get that finds none

M = TypeVar("M", bound=Message)


def stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream message's ack subject (v1 or v2 with domain)."""
    tokens = reply.split(".")
    # v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    # v2: $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.…
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


async def stream_end(js: JetStreamContext, stream: str) -> int:
    """The stream's last sequence now (a round trip to the broker).

    The STREAM.INFO request itself rather than ``js.stream_info``: that one turns the
    whole answer (configuration, limits, cluster) into objects, several times the cost of
    the request, and the router asks before every batch it routes.
    """
    nc = getattr(js, "_nc", None)
    prefix = getattr(js, "_prefix", None)
    if nc is None or not isinstance(prefix, str):  # another nats-py: the public way
        return int((await js.stream_info(stream)).state.last_seq)
    reply = json.loads(
        (await nc.request(f"{prefix}.STREAM.INFO.{stream}", b"", STREAM_INFO_TIMEOUT)).data
    )
    if "error" in reply:
        nats.js.errors.APIError.from_error(reply["error"])  # raises the matching error
    return int(reply["state"]["last_seq"])


async def subjects_end(js: JetStreamContext, stream: str, subjects: str) -> int:
    """The sequence of the last message on ``subjects`` (wildcards allowed) now, 0 when
    there is none: the end a follower of part of a stream reaches (its consumer is never
    sent the others). One STREAM.MSG.GET (``last_by_subj``); the server finds it from its
    per-subject index, the last block holding one of them."""
    nc = getattr(js, "_nc", None)
    prefix = getattr(js, "_prefix", None)
    if nc is None or not isinstance(prefix, str):  # another nats-py: the public way
        try:
            return int((await js.get_msg(stream, subject=subjects, direct=False)).seq or 0)
        except nats.js.errors.NotFoundError:
            return 0
    request = json.dumps({"last_by_subj": subjects}).encode()
    reply = json.loads(
        (await nc.request(f"{prefix}.STREAM.MSG.GET.{stream}", request, STREAM_INFO_TIMEOUT)).data
    )
    if "error" in reply:
        if reply["error"].get("err_code") == _NO_MESSAGE_FOUND:
            return 0
        nats.js.errors.APIError.from_error(reply["error"])  # raises the matching error
    return int(reply["message"]["seq"])


class StreamFollower(Generic[M]):
    """Follows ``stream`` (its ``subjects``, each message an ``message_type``) into a
    projection whose ``position`` is the last stream sequence it applied.

    ``whole_stream``: whether ``subjects`` take every message of the stream. When they do
    not (the failures view leaves out first attempts that succeeded), the position stops at
    the last message they take, so the end read-your-writes waits for is theirs
    (``subjects_end``), not the stream's."""

    def __init__(
        self,
        stream: str,
        subjects: str,
        message_type: type[M],
        dead: DeadLetters,
        *,
        whole_stream: bool = True,
    ) -> None:
        self.stream = stream
        self.subjects = subjects
        self.whole_stream = whole_stream
        self.message_type = message_type
        # What is set aside (undecodable, invalid, not applied): counted, logged, and kept
        # on DEADLETTERS when the service gave a DeadLetters with a connection.
        self.dead = dead
        self._waiters = PositionWaiters()  # reached() / caught_up() waiters, by sequence
        name = message_type.DESCRIPTOR.name
        self._undecodable = f"not {'an' if name[:1] in 'AEIOU' else 'a'} {name}"

    # ---- what a projection implements

    @property
    def position(self) -> int:
        """The last stream sequence applied (0: none)."""
        raise NotImplementedError

    def check(self, subject: str, message: M) -> str | None:
        """The problem that keeps ``message`` out of the projection, if any."""
        return None

    def apply(self, message: M, seq: int) -> None:
        """Applies ``message`` and moves the position to ``seq`` (message by message)."""
        raise NotImplementedError

    def advance(self, seq: int) -> None:
        """Moves the position past ``seq``, set aside (message by message)."""
        raise NotImplementedError

    # ---- following

    @property
    def skipped(self) -> dict[str, int]:
        """Messages set aside since start, by reason."""
        return dict(self.dead.counts)

    async def run(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        """Follow the stream until ``stop`` is set, message by message; raises if it cannot
        subscribe (the service restarts it then, and it resumes after ``position``)."""
        sub = await self.subscribe(js, self.on_message)
        try:
            await stop.wait()
        finally:
            await sub.unsubscribe()

    async def subscribe(
        self, js: JetStreamContext, cb: Callable[[Msg], Awaitable[None]]
    ) -> JetStreamContext.PushSubscription:
        """The ordered consumer, from the sequence after ``position``."""
        start = self.position + 1
        return await js.subscribe(
            self.subjects,
            stream=self.stream,
            cb=cb,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL if start <= 1 else DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=None if start <= 1 else start,
            ),
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT_SECONDS,
            pending_msgs_limit=PENDING_MSGS_LIMIT,
            pending_bytes_limit=PENDING_BYTES_LIMIT,
        )

    async def on_message(self, msg: Msg) -> None:
        # Everything is caught here: an exception would reach nats-py's error callback and
        # the message would be lost without advancing the position.
        seq = self.sequence_of(msg)
        if seq is None:
            seq = 0
        elif (message := self.decoded(msg.subject, msg.data, seq, msg.headers)) is not None:
            try:
                self.apply(message, seq)
            except Exception as error:
                detail = f"{type(error).__name__}: {error}"
                self.set_aside(NOT_APPLIED, detail, msg.subject, msg.data, seq, msg.headers)
            else:
                self.progressed()
                return
        self.advance(seq)
        self.progressed()

    def sequence_of(self, msg: Msg) -> int | None:
        """The message's stream sequence; None when its reply subject has none (it is set
        aside then)."""
        try:
            return stream_sequence(msg.reply)
        except (ValueError, IndexError):
            detail = "no stream sequence in the reply subject"
            self.set_aside(INVALID, detail, msg.subject, msg.data, 0, msg.headers)
            return None

    def decoded(
        self, subject: str, data: bytes, seq: int, headers: Mapping[str, str] | None = None
    ) -> M | None:
        """The message decoded and checked, or None when it was set aside (any thread)."""
        try:
            message = self.message_type.FromString(data)
        except DecodeError as error:
            detail = f"{self._undecodable}: {error}"
            self.set_aside(UNDECODABLE, detail, subject, data, seq, headers)
            return None
        problem = self.check(subject, message)
        if problem:
            self.set_aside(INVALID, problem, subject, data, seq, headers)
            return None
        return message

    def set_aside(
        self,
        reason: str,
        detail: str,
        subject: str,
        data: bytes | None,
        seq: int,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Sets a message aside (any thread); moving past it is the caller's."""
        original = Original(
            subject=subject, data=data or b"", headers=headers, stream=self.stream, sequence=seq
        )
        self.dead.set_aside(reason, detail, original)

    def progressed(self) -> None:
        """The position moved (on the event loop): the waiters it reached return."""
        self._waiters.reached(self.position)

    # ---- read-your-writes

    async def stream_end(self, js: JetStreamContext) -> int:
        """The last sequence of what this follower takes now (a round trip to the
        broker): the stream's, or that of its ``subjects`` when they are part of it."""
        if self.whole_stream:
            return await stream_end(js, self.stream)
        return await subjects_end(js, self.stream, self.subjects)

    async def reached(self, target: int) -> None:
        """Returns once the projection has applied ``target``."""
        if self.position < target:
            await self._waiters.wait(target)

    # A timeout parameter, not asyncio.timeout around the call: a timeout is an answer
    # (False) here, not an error.
    async def caught_up(
        self,
        js: JetStreamContext,
        timeout: float,  # noqa: ASYNC109
        *,
        target: int | None = None,
    ) -> bool:
        """Whether the projection has applied everything on the stream now, waiting up to
        ``timeout`` seconds for it.

        ``target``: the stream's last sequence (``stream_end``) when the caller asked for it
        itself, e.g. while it was fetching the work this check guards: one round trip less.
        "Now" is then when that answer was asked for.
        """
        if target is None:
            target = await self.stream_end(js)
        if self.position >= target:
            return True
        try:
            await asyncio.wait_for(self._waiters.wait(target), timeout)
            return True
        except TimeoutError:
            return False
