"""Replay: a window of a tenant's past events, routed again to one subscription.

The events are re-read from EVENTS (from about when ``since`` was, by the time stored, up
to the end of the stream when the replay began), kept when
their occurred-at is inside the window and they match the subscription's current
triggers, and published as new deliveries marked as replays: fresh delivery ids, and job
ids naming the replay, so the broker does not drop them as duplicates of the originals.
The events are read from both lanes, and the jobs go on the bulk lane (a replay is a
burst by nature: it must not sit in front of other tenants' events).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from webhooks.v1 import messages_pb2, router_pb2
from webhooks_messaging import EVENTS
from webhooks_messaging.subjects import events_filters
from webhooks_router.jobs import OutgoingJob, build_job, shaper_for
from webhooks_router.matching import webhook_event_about
from webhooks_router.publishing import publish_jobs
from webhooks_router.routes import RouteEntry, RoutingTable, subscription_matches
from webhooks_router.validation import MAX_FUTURE_SECONDS, InvalidEvent, validate_event

FETCH_BATCH = 512


class ReplayRefused(Exception):
    """A replay that cannot start; ``field`` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class WindowInvalid(ReplayRefused):
    """The window is empty or reversed."""


class SubscriptionNotFound(ReplayRefused):
    """The tenant has no such subscription (never had, or it was deleted)."""


class SubscriptionInactive(ReplayRefused):
    """The subscription exists but is inactive: there is nothing to route to."""


class EventsExpired(ReplayRefused):
    """The window starts before the oldest event EVENTS still keeps."""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


async def available_since(js: JetStreamContext, max_age_seconds: int) -> datetime | None:
    """The oldest time still covered by EVENTS, or None when nothing was ever removed."""
    info = await js.stream_info(EVENTS)
    oldest: datetime | None = None
    if max_age_seconds > 0:
        oldest = datetime.now(UTC) - timedelta(seconds=max_age_seconds)
    if info.state.first_seq > 1 and info.state.messages > 0:
        first = await js.get_msg(EVENTS, seq=info.state.first_seq)
        if first.time is not None:
            stored = first.time.astimezone(UTC)
            oldest = stored if oldest is None else max(oldest, stored)
    return oldest


async def replay(
    js: JetStreamContext,
    table: RoutingTable,
    tenant: str,
    subscription_id: str,
    window: Window,
    *,
    dry_run: bool,
    max_age_seconds: int,
) -> AsyncIterator[router_pb2.ReplayProgress]:
    """The replay's progress, one snapshot per batch read and a last one marked done.

    Raises a ``ReplayRefused`` before the first snapshot when the replay cannot start.
    """
    _check_window(window)
    entry = _find_subscription(table, tenant, subscription_id)
    await _check_kept(js, window, max_age_seconds)
    progress = router_pb2.ReplayProgress(replay_id=str(uuid.uuid4()))
    end = (await js.stream_info(EVENTS)).state.last_seq
    if end > 0:
        consumer = await _subscribe_from(js, tenant, entry.entity, window.since)
        try:
            async for batch in _read_window(consumer, end):
                jobs = _select(batch, entry, window, progress, dry_run=dry_run)
                await publish_jobs(js, jobs)
                progress.published_jobs += len(jobs)
                yield _snapshot(progress)
        finally:
            await consumer.unsubscribe()
    progress.done = True
    yield progress


def _check_window(window: Window) -> None:
    if window.until <= window.since:
        raise WindowInvalid("until", "must be after since")


def _find_subscription(table: RoutingTable, tenant: str, subscription_id: str) -> RouteEntry:
    if table.status(tenant, subscription_id) in ("unknown", "deleted"):
        raise SubscriptionNotFound("subscription_id", f"subscription {subscription_id} not found")
    entry = table.get(tenant, subscription_id)
    if entry is None:
        raise SubscriptionInactive("subscription_id", "the subscription is inactive")
    return entry


async def _check_kept(js: JetStreamContext, window: Window, max_age_seconds: int) -> None:
    oldest = await available_since(js, max_age_seconds)
    if oldest is not None and window.since < oldest:
        raise EventsExpired(
            "since", f"events are kept from {oldest.isoformat()} to now; since is earlier"
        )


async def _subscribe_from(
    js: JetStreamContext, tenant: str, entity: str, since: datetime
) -> JetStreamContext.PullSubscription:
    return await js.pull_subscribe(
        "",
        stream=EVENTS,
        config=ConsumerConfig(
            filter_subjects=events_filters(tenant, entity),
            deliver_policy=DeliverPolicy.BY_START_TIME,
            # Stored at or after it occurred, give or take the publisher's clock (validation
            # accepts an occurred-at up to MAX_FUTURE_SECONDS ahead): start that much early.
            opt_start_time=since - timedelta(seconds=MAX_FUTURE_SECONDS),
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60,
        ),
    )


async def _read_window(
    consumer: JetStreamContext.PullSubscription, end: int
) -> AsyncIterator[list[Msg]]:
    """The tenant's events of the entity, batch by batch, up to stream sequence ``end``."""
    finished = False
    while not finished:
        try:
            messages = await consumer.fetch(FETCH_BATCH, timeout=1.0)
        except TimeoutError:  # nats-py raises asyncio's (= builtin) or its subclass
            return  # nothing more of this tenant and entity up to the end
        batch: list[Msg] = []
        for msg in messages:
            sequence = msg.metadata.sequence.stream
            # Not bounded by the time stored: an event is often stored well after it
            # occurred (queues, backfills), so the scan goes on to where the replay began.
            if sequence > end:
                finished = True  # stored after the replay began
                break
            batch.append(msg)
            # The last one of this tenant and entity, or the end: no 1 s wait for more.
            finished = sequence == end or msg.metadata.num_pending == 0
            if finished:
                break
        yield batch


def _select(
    batch: list[Msg],
    entry: RouteEntry,
    window: Window,
    progress: router_pb2.ReplayProgress,
    *,
    dry_run: bool,
) -> list[OutgoingJob]:
    """The jobs of the batch's events inside the window that the subscription matches."""
    jobs = []
    for msg in batch:
        progress.scanned_events += 1
        event = messages_pb2.PlatformEvent()
        try:
            event.ParseFromString(msg.data or b"")
            data = validate_event(event, subject=msg.subject)
        except (DecodeError, InvalidEvent):
            continue
        occurred = event.occurred_at.ToDatetime(tzinfo=UTC)
        progress.reached.CopyFrom(event.occurred_at)
        if not window.since <= occurred < window.until:
            continue
        if not subscription_matches(entry, event):
            continue
        if webhook_event_about(event, data) == entry.subscription_id:
            continue  # a Webhook event about this very webhook: never to itself
        progress.matched_events += 1
        if not dry_run:
            shaper = shaper_for(event, data)
            jobs.append(build_job(entry, event, shaper, replay_id=progress.replay_id, bulk=True))
    return jobs


def _snapshot(progress: router_pb2.ReplayProgress) -> router_pb2.ReplayProgress:
    copy = router_pb2.ReplayProgress()
    copy.CopyFrom(progress)
    return copy
