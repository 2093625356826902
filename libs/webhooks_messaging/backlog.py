"""The backlog an SRE watches: each stream's size and each durable consumer's waiting work.

A ``Snapshot`` is plain data (no I/O): per stream its messages and bytes, per durable
consumer what is not yet delivered to it (``num_pending``), delivered and not yet
acknowledged (``num_ack_pending``), and when the oldest message it has not acknowledged
was stored. ``collect(js)`` reads one from JetStream (STREAM.INFO, CONSUMER.LIST and one
STREAM.MSG.GET per consumer with work waiting), bounded by a timeout; ``BacklogWatch``
refreshes one every few seconds for the gauges of the failures service, whose callbacks
read the cached snapshot and never wait on NATS.

Consumers are listed from the server, not named here, so a durable added later (another
lane) shows without a change; only durables count: the ephemeral consumers of replays and
followers come and go under random names (unbounded labels) and hold nobody's work.

The oldest unacknowledged message is the first message after the consumer's ack floor
that its filter takes: every message up to the floor is acknowledged, and on the work
queue (DELIVERIES) acknowledged ones are gone, so the server's "next message on this
subject from sequence n" (``next_by_subj``, wildcards allowed) finds it in one request per
filter subject, skipping other lanes' subjects and removed messages. Its age is counted
from when it was stored: a retry counts from when it came due (the schedule publishes
it then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from webhooks_messaging.streams import DEADLETTERS, DELIVERIES, STREAMS
from webhooks_messaging.waiting import sleep_unless
from webhooks_telemetry import metrics

Point = tuple[float, dict[str, str]]  # a gauge's value and its attributes

REFRESH_SECONDS = 5.0
COLLECT_TIMEOUT_SECONDS = 4.0  # one collection, every request included
# A snapshot older than this is not exported: values from before NATS became unreachable
# would show a backlog that nobody is measuring any more (the gauges go absent instead).
STALE_AFTER_SECONDS = 6 * REFRESH_SECONDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamBacklog:
    stream: str
    messages: int
    bytes: int
    last_seq: int = 0  # the stream's last sequence: how far a projection of it has to go


@dataclass(frozen=True)
class ConsumerBacklog:
    stream: str
    consumer: str
    pending: int  # stored, matching its filter, not yet delivered to it
    ack_pending: int  # delivered, not yet acknowledged
    oldest_at: float | None  # unix time the oldest unacknowledged message was stored

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unacknowledged message has waited at ``now``; 0 when none."""
        if self.oldest_at is None:
            return 0.0
        return max(0.0, now - self.oldest_at)


@dataclass(frozen=True)
class Snapshot:
    taken_at: float  # unix time; 0: never taken
    streams: tuple[StreamBacklog, ...] = ()
    consumers: tuple[ConsumerBacklog, ...] = ()
    problems: tuple[str, ...] = field(default=())  # what could not be read, and why

    def stream(self, name: str) -> StreamBacklog | None:
        return next((s for s in self.streams if s.stream == name), None)

    def consumers_of(self, stream: str) -> tuple[ConsumerBacklog, ...]:
        return tuple(c for c in self.consumers if c.stream == stream)

    @property
    def deadletters(self) -> int | None:
        """Letters on DEADLETTERS; None when the stream could not be read."""
        found = self.stream(DEADLETTERS)
        return None if found is None else found.messages

    @property
    def retries_scheduled(self) -> int | None:
        """Retries waiting on DELIVERIES (``scheduled_retries``); None when unread."""
        found = self.stream(DELIVERIES)
        if found is None:
            return None
        return scheduled_retries(found.messages, self.consumers_of(DELIVERIES))

    def is_fresh(self, now: float) -> bool:
        return self.taken_at > 0 and now - self.taken_at <= STALE_AFTER_SECONDS


EMPTY = Snapshot(taken_at=0.0)


def scheduled_retries(stream_messages: int, consumers: Iterable[ConsumerBacklog]) -> int:
    """The retry schedules on DELIVERIES: a work queue keeps a job until its consumer
    acknowledges it, so what the stream holds beyond its consumers' pending and
    unacknowledged jobs is on no consumer's subject: the ``deliveries.retry.`` schedules
    (one per retrying delivery). Counting them so costs no per-subject listing, which
    would be one entry per retrying delivery."""
    held = sum(c.pending + c.ack_pending for c in consumers)
    return max(0, stream_messages - held)


def filter_subjects(info: ConsumerInfo) -> list[str]:
    """The subjects a consumer takes (every subject when it has no filter)."""
    config = info.config
    if config.filter_subjects:
        return list(config.filter_subjects)
    return [config.filter_subject] if config.filter_subject else [">"]


async def oldest_unacknowledged(
    js: JetStreamContext, stream: str, info: ConsumerInfo
) -> float | None:
    """When the oldest message the consumer has not acknowledged was stored (unix
    time); None when it has none waiting."""
    if not (info.num_pending or info.num_ack_pending):
        return None
    after = (info.ack_floor.stream_seq if info.ack_floor else 0) or 0
    stored: list[float] = []
    for subject in filter_subjects(info):
        try:
            msg = await js.get_msg(stream, seq=after + 1, subject=subject, next=True)
        except NotFoundError:
            continue  # nothing on this subject after the floor (removed meanwhile)
        if msg.time is not None:
            stored.append(msg.time.timestamp())
    return min(stored, default=None)


async def _consumers(js: JetStreamContext, stream: str) -> list[ConsumerBacklog]:
    found = []
    for info in await js.consumers_info(stream):
        if not info.config.durable_name:
            continue
        found.append(
            ConsumerBacklog(
                stream=stream,
                consumer=info.name,
                pending=info.num_pending or 0,
                ack_pending=info.num_ack_pending or 0,
                oldest_at=await oldest_unacknowledged(js, stream, info),
            )
        )
    return sorted(found, key=lambda c: c.consumer)


async def _read(
    js: JetStreamContext,
    names: Sequence[str],
    streams: list[StreamBacklog],
    consumers: list[ConsumerBacklog],
    problems: list[str],
) -> None:
    """Appends what it reads as it goes, so a timeout keeps what was read before it."""
    for name in names:
        try:
            info = await js.stream_info(name)
            state = info.state
            streams.append(StreamBacklog(name, state.messages, state.bytes, state.last_seq))
            consumers.extend(await _consumers(js, name))
        except NotFoundError:
            problems.append(f"{name}: no such stream")
        except Exception as err:  # one stream's failure leaves the others readable
            problems.append(f"{name}: {type(err).__name__}: {err}")


async def collect(
    js: JetStreamContext,
    streams: Sequence[str] = STREAMS,
    *,
    timeout: float = COLLECT_TIMEOUT_SECONDS,  # noqa: ASYNC109 - the whole collection's bound
) -> Snapshot:
    """A snapshot of ``streams`` and their durable consumers; what could not be read
    within ``timeout`` is missing from it and named in ``problems``."""
    problems: list[str] = []
    streams_read: list[StreamBacklog] = []
    consumers_read: list[ConsumerBacklog] = []
    try:
        async with asyncio.timeout(timeout):
            await _read(js, streams, streams_read, consumers_read, problems)
    except TimeoutError:
        problems.append(f"not all read within {timeout:g} s")
    return Snapshot(
        taken_at=time.time(),
        streams=tuple(streams_read),
        consumers=tuple(consumers_read),
        problems=tuple(problems),
    )


class BacklogWatch:
    """The latest snapshot, refreshed every ``interval`` seconds by ``run``; readers
    (gauge callbacks, on the exporter's thread) only read ``snapshot``."""

    def __init__(self, js: JetStreamContext, interval: float = REFRESH_SECONDS) -> None:
        self._js = js
        self._interval = interval
        self.snapshot = EMPTY

    async def refresh(self) -> Snapshot:
        snapshot = await collect(self._js, timeout=min(COLLECT_TIMEOUT_SECONDS, self._interval))
        if snapshot.problems and snapshot.problems != self.snapshot.problems:
            log.warning("backlog: %s", "; ".join(snapshot.problems))  # once per change
        self.snapshot = snapshot  # one reference swap: readers see a whole snapshot
        return snapshot

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            if await sleep_unless(stop, self._interval):
                return


def stream_points(snapshot: Snapshot, now: float, value: str) -> list[Point]:
    """``messages`` or ``bytes`` of each stream; none from a stale snapshot."""
    if not snapshot.is_fresh(now):
        return []
    return [(float(getattr(s, value)), {"stream": s.stream}) for s in snapshot.streams]


def consumer_points(snapshot: Snapshot, now: float, value: str) -> list[Point]:
    """``pending``, ``ack_pending`` or ``oldest_age`` (at ``now``) of each durable."""
    if not snapshot.is_fresh(now):
        return []
    points: list[Point] = []
    for c in snapshot.consumers:
        number = c.oldest_age(now) if value == "oldest_age" else float(getattr(c, value))
        points.append((number, {"stream": c.stream, "consumer": c.consumer}))
    return points


def export_gauges(watch: BacklogWatch) -> None:
    """The stream and consumer gauges of the metrics contract, read from ``watch``'s
    latest snapshot at each collection (one process exports them: the failures service)."""

    def streams(value: str) -> metrics.GaugeCallback:
        return lambda: stream_points(watch.snapshot, time.time(), value)

    def consumers(value: str) -> metrics.GaugeCallback:
        return lambda: consumer_points(watch.snapshot, time.time(), value)

    metrics.observable_gauge(metrics.STREAM_MESSAGES, streams("messages"))
    metrics.observable_gauge(metrics.STREAM_BYTES, streams("bytes"))
    metrics.observable_gauge(metrics.CONSUMER_PENDING, consumers("pending"))
    metrics.observable_gauge(metrics.CONSUMER_ACK_PENDING, consumers("ack_pending"))
    metrics.observable_gauge(metrics.CONSUMER_OLDEST_AGE, consumers("oldest_age"))
