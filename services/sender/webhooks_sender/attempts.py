"""The record of every attempt, success or failure, on ATTEMPTS: what the failures view and
anyone auditing deliveries read. It names the delivery, the event, the subscription and
what was sent and received; it never holds a secret (the Authorization header and the
signature are not part of it; URLs are shown without user info or query string).

Published with ``Nats-Msg-Id`` ``<delivery>:<series>:<attempt>`` so a sender that crashes
after publishing and before acknowledging the job, and sends the attempt again, does not
record it twice within the duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header
from nats.js.errors import APIError, NoStreamResponseError

from webhooks.v1 import messages_pb2
from webhooks_messaging import ATTEMPTS, attempts_subject
from webhooks_sender.delivery import AttemptResult

log = logging.getLogger(__name__)

RESPONSE_SNIPPET_BYTES = 8 * 1024
CONFIRM_TIMEOUT_SECONDS = 10.0  # a record not confirmed by then is taken as not stored
SWEEP_SECONDS = 1.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXPECTED_STREAM = Header.EXPECTED_STREAM.value
STATUS = Header.STATUS.value
NO_RESPONDERS = "503"


def attempt_record(
    job: messages_pb2.DeliveryJob,
    result: AttemptResult,
    *,
    max_attempts: int,
    next_attempt_at: datetime | None,
) -> messages_pb2.AttemptRecord:
    record = messages_pb2.AttemptRecord(
        delivery_id=job.delivery_id,
        series=job.series,
        attempt=job.attempt,
        tenant=job.tenant,
        subscription_id=job.subscription_id,
        subscription_name=job.subscription_name,
        event_id=job.event_id,
        entity=job.entity,
        trigger=job.trigger,
        subchannel=job.subchannel,
        duration_ms=result.duration_ms,
        outcome=(
            messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
            if result.succeeded
            else messages_pb2.ATTEMPT_OUTCOME_FAILED
        ),
        failure_class=result.failure_class,  # type: ignore[arg-type]
        status_code=result.status_code,
        error_message=result.message,
        response_snippet=result.response_snippet[:RESPONSE_SNIPPET_BYTES],
        request_body=result.request_body,
        request_content_type=result.request_content_type,
        will_retry=next_attempt_at is not None,
        max_attempts=max_attempts,
        manual=job.manual,
        replay=job.replay,
        url=result.url,
        subscription_version=job.subscription_version,
    )
    if result.request_body != job.payload_json:
        # SOAP (or nothing sent): keep what a manual redelivery must send again.
        record.payload_json = job.payload_json
    if job.HasField("occurred_at"):
        record.occurred_at.CopyFrom(job.occurred_at)
    if job.HasField("channel"):
        record.channel = job.channel
    _set_timestamp(record.started_at, result.started_at)
    if next_attempt_at is not None:
        _set_timestamp(record.next_attempt_at, next_attempt_at)
    return record


def _set_timestamp(timestamp: Timestamp, at: datetime) -> None:
    """``Timestamp.FromDatetime`` in integer arithmetic: a sixth of its cost, once per
    attempt. ``at`` is timezone-aware (the sender's times are UTC)."""
    delta = at - _EPOCH
    timestamp.seconds = delta.days * 86_400 + delta.seconds
    timestamp.nanos = delta.microseconds * 1000


# Called once per published record: with None once the broker has stored it, or with the
# error (the broker's refusal, no PubAck in time, the publisher closing).
Stored = Callable[[BaseException | None], Awaitable[None]]


class AttemptPublisher:
    """Publishes records on ATTEMPTS; each publish is followed by one call of its ``then``
    once the broker has stored the record (its PubAck), or with the reason it was not.

    What nats-py's ``publish_async`` does, without its per-message costs (a urandom token
    and a NUID, a ``wait_for`` on its semaphore, a PubAck object from the JSON), a visible
    share of the sender's CPU (bench/README.md). One reply subscription, replies numbered
    by a counter; ``then`` is called from the reply's handler, so the consumer settles a
    job there, without a future, a timer and a wake-up of the job's task per record.
    Records without a reply after ``confirm_timeout`` seconds are given up on by a sweep
    once a second. The number of records in flight is bounded by the consumer (one per job
    it holds).
    """

    def __init__(self, nc: NATS, *, confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS) -> None:
        self._nc = nc
        self._confirm_timeout = confirm_timeout
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._waiting: dict[str, Stored] = {}
        self._deadlines: deque[tuple[float, str]] = deque()  # in publish order
        self._sweeper: asyncio.Task[None] | None = None
        self._sent = 0

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def start(self) -> None:
        if self._subscription is None:
            self._prefix = self._nc.new_inbox() + "."
            self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._reply)
            self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
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
        self._deadlines.clear()
        for then in waiting.values():
            await _call(then, ConnectionError("the attempt publisher closed"))

    async def publish(
        self, record: messages_pb2.AttemptRecord, trace_headers: Mapping[str, str], then: Stored
    ) -> None:
        """Sends the record; ``then`` is called once, when the broker has stored it (None)
        or with the reason it has not. Raises (and ``then`` is not called) when the record
        could not even be sent."""
        if self._subscription is None:
            raise RuntimeError("AttemptPublisher is not started")
        self._sent += 1
        token = str(self._sent)
        headers = {
            **trace_headers,
            "Nats-Msg-Id": f"{record.delivery_id}:{record.series}:{record.attempt}",
            EXPECTED_STREAM: ATTEMPTS,  # stored on ATTEMPTS or an error, nowhere else
        }
        self._waiting[token] = then
        try:
            await self._nc.publish(
                attempts_subject(record.tenant, record.subscription_id),
                record.SerializeToString(),
                reply=self._prefix + token,
                headers=headers,
            )
        except BaseException:
            self._waiting.pop(token, None)
            raise
        self._deadlines.append((time.monotonic() + self._confirm_timeout, token))

    async def _reply(self, msg: Msg) -> None:
        then = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if then is not None:
            await _call(then, _refusal(msg))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, token = self._deadlines.popleft()
                then = self._waiting.pop(token, None)
                if then is not None:
                    late = TimeoutError(f"no PubAck within {self._confirm_timeout:g} s")
                    await _call(then, late)


def _refusal(msg: Msg) -> BaseException | None:
    """None when ``msg`` is a PubAck of a stored record, else the broker's error."""
    data = msg.data
    if data.startswith(b'{"stream":') and b'"error"' not in data:
        return None  # what the broker sends for a stored record, without parsing it
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


async def _call(then: Stored, error: BaseException | None) -> None:
    try:
        await then(error)
    except Exception:
        log.exception("settling an attempt record failed")
