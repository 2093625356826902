"""Setting aside: what a producer or consumer cannot publish, decode, validate or apply.

No single record may stop a stream's producer or consumer for everyone. Whatever cannot
be handled is *set aside* the same way everywhere (the outbox relay, the router's event
consumer and routing-table feed, the sender's job consumer and directory feed, the
failures projector), and the stream moves on:

- a letter (``webhooks.v1.DeadLetter``: where it was found, a 64 KiB sample, its headers,
  the reason and the detail, the original's stream sequence or notification id) is
  published on the DEADLETTERS stream as ``deadletters.<component>.<reason>.<origin>``,
  with a ``Nats-Msg-Id`` derived from the original; the stream keeps one letter per
  subject, so setting the same original aside again (a projection re-read at every start)
  never adds a letter. The stream is bounded (streams.py): the worst publisher can push
  old letters out, not fill the disk. The failures service lists them (ListDeadLetters);
- a counter per (component, reason) is kept in the process (``counts``), and the metric
  ``webhooks.deadletters`` {consumer: the component, reason} counts it for the SRE (this is
  the one place every process counts a record set aside);
- one log line per (component, reason) and minute at most, with how many were set aside
  since the last line.

``set_aside`` never blocks and may be called from any thread (the failures projector
decodes in a worker thread): letters are queued (bounded) and published by a task on the
event loop the object was made on. A JetStream message from a durable consumer is
terminated first (``terminate``); one from an ordered consumer has nothing to settle, and
a relay record is no NATS message at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import BadRequestError, NotFoundError

from webhooks.v1 import messages_pb2
from webhooks_messaging.streams import DEADLETTERS
from webhooks_telemetry import metrics
from webhooks_telemetry.logs import LogEvery

log = logging.getLogger(__name__)

# Components (the second subject token).
RELAY = "relay"
ROUTER = "router"
ROUTER_TABLE = "router-table"
SENDER = "sender"
SENDER_DIRECTORY = "sender-directory"
FAILURES_PROJECTOR = "failures-projector"
COMPONENTS = (RELAY, ROUTER, ROUTER_TABLE, SENDER, SENDER_DIRECTORY, FAILURES_PROJECTOR)

# Reasons (the third subject token).
UNDECODABLE = "undecodable"  # not the message the stream carries
INVALID = "invalid"  # decodes, breaks a rule (the detail names the field)
TOO_LARGE = "too-large"  # over the broker's max_payload or the stream's message size
UNPUBLISHABLE = "unpublishable"  # cannot be made into a message (the detail says why)
NOT_APPLIED = "not-applied"  # valid, and the projection still could not take it
REASONS = (UNDECODABLE, INVALID, TOO_LARGE, UNPUBLISHABLE, NOT_APPLIED)

SAMPLE_BYTES = 64 * 1024
MAX_HEADERS = 32
MAX_HEADER_CHARS = 256
MAX_SUBJECT_CHARS = 256
MAX_DETAIL_CHARS = 1000
LOG_EVERY_SECONDS = 60.0
QUEUE_LIMIT = 1000  # letters waiting to be published; beyond it they are counted only
PUBLISH_TIMEOUT_SECONDS = 5.0
RETRY_SECONDS = 2.0

SET_ASIDE = metrics.counter(metrics.DEADLETTERS)
# Made once per (component, reason): both sets are bounded, so the cache is too.
_ATTRIBUTES: dict[tuple[str, str], dict[str, str]] = {}


def _attributes(component: str, reason: str) -> dict[str, str]:
    key = (component, reason)
    attributes = _ATTRIBUTES.get(key)
    if attributes is None:
        attributes = _ATTRIBUTES.setdefault(key, {"consumer": component, "reason": reason})
    return attributes


def letter_subject(component: str, reason: str, origin: str) -> str:
    return f"deadletters.{component}.{reason}.{origin}"


def origin_token(stream: str, sequence: int, notification_id: int, data: bytes) -> str:
    """One subject token naming the original: its stream and sequence, its notification
    id, or (neither known) a digest of its payload."""
    if stream and sequence:
        return f"{stream}-{sequence}"
    if notification_id:
        return f"notification-{notification_id}"
    return f"sha256-{hashlib.sha256(data).hexdigest()[:32]}"


@dataclass(frozen=True)
class Original:
    """What is known of a record set aside."""

    subject: str = ""
    data: bytes = b""
    headers: Mapping[str, str] | None = None
    stream: str = ""
    sequence: int = 0
    notification_id: int = 0


def build_letter(
    component: str, reason: str, detail: str, original: Original
) -> messages_pb2.DeadLetter:
    """The letter, every field bounded (a hostile message must not make a huge letter)."""
    headers: dict[str, str] = {}
    for key, value in (original.headers or {}).items():
        if len(headers) >= MAX_HEADERS:
            break
        if isinstance(key, str) and isinstance(value, str):
            headers[key[:MAX_HEADER_CHARS]] = value[:MAX_HEADER_CHARS]
    letter = messages_pb2.DeadLetter(
        subject=original.subject[:MAX_SUBJECT_CHARS],
        data=original.data[:SAMPLE_BYTES],
        headers=headers,
        reason=reason,
        component=component,
        detail=_text(detail)[:MAX_DETAIL_CHARS],
        stream=original.stream,
        stream_sequence=max(original.sequence, 0),
        notification_id=original.notification_id,
        data_size=len(original.data),
    )
    letter.terminated_at.FromDatetime(datetime.now(UTC))
    return letter


def _text(value: str) -> str:
    """Valid UTF-8 for a protobuf string (an exception's text may quote raw bytes)."""
    return value.encode("utf-8", "replace").decode("utf-8", "replace")


class DeadLetters:
    """The setting aside of one component. ``nc``: the connection letters go out on
    (None: counted and logged only, until ``use`` gives one)."""

    def __init__(self, component: str, nc: NATS | None = None) -> None:
        self.component = component
        self.counts: Counter[str] = Counter()  # by reason
        self.published = 0  # letters the broker stored
        self.dropped = 0  # letters not kept (queue full)
        self._nc = nc
        self._lock = threading.Lock()
        self._log_every = LogEvery(LOG_EVERY_SECONDS)  # keys: reasons, and "warn"
        self._queue: list[tuple[str, str, messages_pb2.DeadLetter]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._worker: asyncio.Task[None] | None = None

    def use(self, nc: NATS | None) -> None:
        """Publish on ``nc`` from now on (the relay reconnects with a new client)."""
        self._nc = nc
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._wake()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def set_aside(self, reason: str, detail: str, original: Original) -> None:
        """Counts, logs (rate-limited) and queues a letter; never blocks, any thread."""
        letter = build_letter(self.component, reason, detail, original)
        origin = origin_token(
            original.stream, original.sequence, original.notification_id, original.data
        )
        subject = letter_subject(self.component, reason, origin)
        msg_id = f"{self.component}:{origin}"
        with self._lock:
            self.counts[reason] += 1
            total = self.counts[reason]
            if len(self._queue) < QUEUE_LIMIT:
                self._queue.append((subject, msg_id, letter))
            else:
                self.dropped += 1
        SET_ASIDE.add(1, _attributes(self.component, reason))
        held = self._log_every.due(reason)
        if held is not None:
            log.warning(
                "%s set aside %s (%s): %s; %d set aside for this reason since the last such "
                "line, %d since start; listed by `webhooks deadletters`",
                self.component,
                original.subject[:MAX_SUBJECT_CHARS] or origin,
                reason,
                letter.detail,
                held + 1,
                total,
            )
        self._wake()

    async def terminate(self, msg: Msg, reason: str, detail: str, *, stream: str = "") -> None:
        """Terminates a message of a durable consumer (never redelivered), sets it aside."""
        with contextlib.suppress(Exception):  # already settled, or the broker is away
            await msg.term()
        sequence = 0
        with contextlib.suppress(Exception):
            metadata = msg.metadata
            sequence = int(metadata.sequence.stream)
            stream = stream or metadata.stream
        self.set_aside(
            reason,
            detail,
            Original(
                subject=msg.subject,
                data=msg.data or b"",
                headers=msg.headers,
                stream=stream,
                sequence=sequence,
            ),
        )

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._start_worker()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._start_worker)

    def _start_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._publish_queued())

    async def _publish_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                subject, msg_id, letter = self._queue[0]
            nc = self._nc
            if nc is None or not nc.is_connected:
                return  # use() or the next letter tries again
            try:
                await nc.jetstream().publish(
                    subject,
                    letter.SerializeToString(),
                    stream=DEADLETTERS,
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    headers={"Nats-Msg-Id": msg_id},
                )
            except (BadRequestError, NotFoundError) as error:
                # The broker answered no (no such stream, refused): it will not say yes.
                self._warn(f"a dead letter dropped: {error}")
                with self._lock:
                    self._queue.pop(0)
                    self.dropped += 1
                continue
            except Exception as error:  # the broker is away: keep it, try again later
                self._warn(f"dead letters not stored yet: {error}")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            with self._lock:
                self._queue.pop(0)
                self.published += 1

    def _warn(self, text: str) -> None:
        if self._log_every.due("warn") is not None:
            log.warning("%s: %s", self.component, text)

    async def flush(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109 - an answer
        """Waits until every queued letter is stored; False if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queue:
                    return True
            self._wake()
            await asyncio.sleep(0.02)
        return False

    async def close(self) -> None:
        """Stores what is queued (briefly) and stops the publishing task."""
        await self.flush(2.0)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker
