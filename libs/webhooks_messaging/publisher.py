"""Publishing onto one JetStream stream, each message confirmed by the broker's PubAck.

What nats-py's ``js.publish_async`` does, without its per-message costs (a urandom token
and a NUID, a ``wait_for`` on its semaphore, a future, a PubAck object from the JSON): one
reply subscription for every acknowledgement, replies numbered by a counter, and one
callback per message, called from the reply's handler. The router's job and event
publishers and the sender's attempt records all go through it (it is every message's path).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header
from nats.js.errors import APIError, NoStreamResponseError

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10.0  # a message not confirmed by then is taken as not stored
SWEEP_SECONDS = 1.0
EXPECTED_STREAM = Header.EXPECTED_STREAM.value
STATUS = Header.STATUS.value  # where nats-py puts the status of a status message
NO_RESPONDERS = "503"


class Duplicate(Exception):
    """Not a failure: the broker had stored the message already (the same ``Nats-Msg-Id``
    within the stream's duplicate window). Told only by publishers made with
    ``tell_duplicates``; the others report a duplicate as stored (None)."""


DUPLICATE = Duplicate("stored before")


class PublisherClosed(ConnectionError):
    """The publisher closed before the broker answered: the message may or may not be stored."""


# What a callback is told, once: None (stored), DUPLICATE, or why the message is not
# (known) stored: the broker's APIError subclass, NoStreamResponseError (no stream takes
# the subject), TimeoutError (no PubAck in time), PublisherClosed. An awaitable it returns
# is awaited in the reply's handler, so it must not wait long.
Outcome = BaseException | None
Confirmed = Callable[[Outcome], Awaitable[None] | None]


class ConfirmedPublisher:
    """Publishes onto ``stream`` (``Nats-Expected-Stream``: stored there or an error, never
    elsewhere) and calls each message's callback exactly once with its outcome.

    Deadlines cost nothing per message: tokens are consecutive, so the sweep notes the
    last token sent once a second and gives up on every token below a note older than
    ``confirm_timeout`` (between one and two sweeps late); None: no sweep, the caller
    gives up itself (``give_up``). ``max_in_flight``: past it, publishing waits until half
    of the unanswered messages are answered.
    """

    def __init__(
        self,
        nc: NATS,
        stream: str,
        *,
        confirm_timeout: float | None = CONFIRM_TIMEOUT_SECONDS,
        max_in_flight: int | None = None,
        tell_duplicates: bool = False,
    ) -> None:
        self._nc = nc
        self._stream = stream
        self._confirm_timeout = confirm_timeout
        self._max_in_flight = sys.maxsize if max_in_flight is None else max_in_flight
        self._tell_duplicates = tell_duplicates
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._waiting: dict[str, Confirmed] = {}  # by token, in publish order
        self._notes: deque[tuple[float, int]] = deque()  # (when, last token sent then)
        self._sent = 0  # the last token handed out
        self._full = False
        self._room = asyncio.Event()
        self._room.set()

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    @property
    def sent(self) -> int:
        """The last token handed out: the next message's is one more."""
        return self._sent

    async def start(self) -> None:
        if self._subscription is None:
            self._prefix = self._nc.new_inbox() + "."
            self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._reply)
            if self._confirm_timeout is not None:
                self._sweeper = asyncio.create_task(self._sweep(self._confirm_timeout))

    async def close(self) -> None:
        """Stops listening; every message still unanswered is told PublisherClosed."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        waiting, self._waiting = self._waiting, {}
        self._notes.clear()
        self._make_room()
        for then in waiting.values():
            await _call(then, PublisherClosed(f"the publisher of {self._stream} closed"))

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str], then: Confirmed
    ) -> int:
        """Sends one message and returns its token; ``then`` is called once with its
        outcome. ``headers`` gains ``Nats-Expected-Stream``. Raises (and ``then`` is not
        called) when the message could not even be sent."""
        if self._subscription is None:
            raise RuntimeError(f"the publisher of {self._stream} is not started")
        if self._full:
            await asyncio.wait_for(self._room.wait(), CONFIRM_TIMEOUT_SECONDS)
        self._sent += 1
        token = self._sent
        key = str(token)
        headers[EXPECTED_STREAM] = self._stream
        self._waiting[key] = then
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + key, headers=headers)
        except BaseException:
            self._waiting.pop(key, None)
            raise
        if len(self._waiting) >= self._max_in_flight:
            self._full = True
            self._room.clear()
        return token

    async def give_up(self, tokens: Iterable[int], error: BaseException) -> None:
        """Tells ``error`` to each of ``tokens`` still unanswered; a late PubAck is ignored."""
        for token in tokens:
            then = self._waiting.pop(str(token), None)
            if then is not None:
                await _call(then, error)
        self._make_room()

    async def _reply(self, msg: Msg) -> None:
        then = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if then is None:
            return  # given up on already, or a second reply
        data = msg.data
        outcome: Outcome
        if data.startswith(b'{"stream":') and b'"error"' not in data:
            outcome = None  # a stored message's PubAck, recognized without parsing it
        else:
            outcome = _refusal(msg)
        if outcome is None and self._tell_duplicates and b'"duplicate"' in data:
            outcome = _duplicate(data)
        try:
            answered = then(outcome)
            if answered is not None:
                await answered
        except Exception:
            log.exception("a publish callback of %s failed", self._stream)
        if self._full:
            self._make_room()

    def _make_room(self) -> None:
        if self._full and len(self._waiting) <= self._max_in_flight // 2:
            self._full = False
            self._room.set()

    async def _sweep(self, confirm_timeout: float) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            self._notes.append((now, self._sent))
            below = 0
            while self._notes and self._notes[0][0] <= now - confirm_timeout:
                below = self._notes.popleft()[1] + 1
            overdue = []
            for key in self._waiting:  # oldest first
                if int(key) >= below:
                    break
                overdue.append(key)
            if overdue:
                late = TimeoutError(f"no PubAck within {confirm_timeout:g} s")
                await self.give_up(map(int, overdue), late)


def _refusal(msg: Msg) -> BaseException | None:
    """None when ``msg`` is the PubAck of a stored message, else the broker's error."""
    if msg.headers and msg.headers.get(STATUS) == NO_RESPONDERS:
        return NoStreamResponseError()
    try:
        reply = json.loads(msg.data)
    except ValueError:
        return APIError(description=f"unreadable PubAck: {msg.data[:200]!r}")
    error = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(error, dict):
        try:
            APIError.from_error(error)  # raises the matching APIError subclass
        except APIError as refused:
            return refused
    if error is not None or not isinstance(reply, dict) or "stream" not in reply:
        return APIError(description=f"not a PubAck: {msg.data[:200]!r}")
    return None


def _duplicate(data: bytes) -> Outcome:
    """DUPLICATE when the PubAck says so (the broker writes ``"duplicate": true``)."""
    with contextlib.suppress(ValueError, AttributeError):
        if json.loads(data).get("duplicate") is True:
            return DUPLICATE
    return None


async def _call(then: Confirmed, outcome: Outcome) -> None:
    try:
        answered = then(outcome)
        if answered is not None:
            await answered
    except Exception:
        log.exception("a publish callback failed")
