"""Following the SUBSCRIPTIONS stream into an in-memory projection.

The router's routing table and the sender's directory of endpoints are both projections of
this stream. This module decodes and applies it (the reading itself, set-aside and
``caught_up`` are following.StreamFollower's): each SubscriptionDomainEvent from sequence 1
or from where the projection already is, ``ready`` once the projection holds what the
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
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Generic, Protocol, TypeVar

from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2
from webhooks_messaging.checks import subscription_message_problem
from webhooks_messaging.deadletters import DeadLetters
from webhooks_messaging.following import StreamFollower
from webhooks_messaging.streams import SUBSCRIPTIONS

log = logging.getLogger(__name__)

SUBJECTS = "subscriptions.>"


class Projection(Protocol):
    """What the feed applies the stream to. ``applied_seq`` is the last stream sequence
    applied (0: none); every method advances it to ``stream_seq``."""

    applied_seq: int

    def apply(self, state: messages_pb2.SubscriptionState, stream_seq: int) -> None: ...

    def apply_certificate(self, state: messages_pb2.CertificateState, stream_seq: int) -> None: ...

    def advance(self, stream_seq: int) -> None: ...

    def __len__(self) -> int: ...


P = TypeVar("P", bound=Projection)


class SubscriptionFeed(StreamFollower[messages_pb2.SubscriptionDomainEvent], Generic[P]):
    """Applies the SUBSCRIPTIONS stream to ``table``: in full at start, then as it grows,
    message by message in the subscription's callback."""

    def __init__(
        self, table: P, stream: str = SUBSCRIPTIONS, dead: DeadLetters | None = None
    ) -> None:
        super().__init__(
            stream,
            SUBJECTS,
            messages_pb2.SubscriptionDomainEvent,
            dead if dead is not None else DeadLetters("subscriptions-feed"),
        )
        self.table = table
        self.ready = asyncio.Event()
        self._build_target = 0
        self._build_started = 0.0

    @property
    def position(self) -> int:
        return self.table.applied_seq

    async def run(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        """Follow the stream until ``stop`` is set; raises if it cannot subscribe (the
        service restarts it then, and it resumes after ``table.applied_seq``)."""
        self._build_started = time.monotonic()
        self._build_target = await self.stream_end(js)
        self._check_ready()
        await super().run(js, stop)

    def check(self, subject: str, message: messages_pb2.SubscriptionDomainEvent) -> str | None:
        return subscription_message_problem(subject, message)

    def apply(self, message: messages_pb2.SubscriptionDomainEvent, seq: int) -> None:
        if message.HasField("subscription"):
            self.table.apply(message.subscription, seq)
        else:
            self.table.apply_certificate(message.certificate, seq)

    def advance(self, seq: int) -> None:
        # Safe to move past: the next change of the same subscription or certificate
        # carries its whole state and supersedes the message set aside.
        self.table.advance(seq)

    def progressed(self) -> None:
        super().progressed()
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
