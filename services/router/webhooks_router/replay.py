"""Replay: a window of a tenant's past events, routed again to one subscription.

The events are re-read from EVENTS (from about when ``since`` was, by the time stored, up
to the end of the stream when the replay began), kept when
their occurred-at is inside the window and they match the subscription's current
triggers, and published as new deliveries marked as replays: fresh delivery ids, and job
ids naming the replay, so the broker does not drop them as duplicates of the originals.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from webhooks.v1 import messages_pb2, router_pb2
from webhooks_messaging import EVENTS
from webhooks_router.jobs import build_job, shaper_for
from webhooks_router.publishing import publish_jobs
from webhooks_router.routes import RoutingTable, subscription_matches
from webhooks_router.validation import MAX_FUTURE_SECONDS, InvalidEvent, validate_event

FETCH_BATCH = 512


class ReplayRefused(Exception):
    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "not_found", "failed_precondition" or "invalid"
        self.field = field
        self.message = message


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
    if window.until <= window.since:
        raise ReplayRefused("invalid", "until", "must be after since")
    status = table.status(tenant, subscription_id)
    if status in ("unknown", "deleted"):
        raise ReplayRefused(
            "not_found", "subscription_id", f"subscription {subscription_id} not found"
        )
    entry = table.get(tenant, subscription_id)
    if entry is None:
        raise ReplayRefused(
            "failed_precondition", "subscription_id", "the subscription is inactive"
        )
    oldest = await available_since(js, max_age_seconds)
    if oldest is not None and window.since < oldest:
        raise ReplayRefused(
            "failed_precondition",
            "since",
            f"events are kept from {oldest.isoformat()} to now; since is earlier",
        )
    progress = router_pb2.ReplayProgress(replay_id=str(uuid.uuid4()))
    info = await js.stream_info(EVENTS)
    end = info.state.last_seq
    if end == 0:
        progress.done = True
        yield progress
        return
    consumer = await js.pull_subscribe(
        f"events.{tenant}.{entry.entity}.>",
        stream=EVENTS,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            # Stored at or after it occurred, give or take the publisher's clock (validation
            # accepts an occurred-at up to MAX_FUTURE_SECONDS ahead): start that much early.
            opt_start_time=window.since - timedelta(seconds=MAX_FUTURE_SECONDS),
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60,
        ),
    )
    try:
        finished = False
        while not finished:
            try:
                messages = await consumer.fetch(FETCH_BATCH, timeout=1.0)
            except TimeoutError:  # nats-py raises asyncio's (= builtin) or its subclass
                break  # nothing more of this tenant and entity up to the end
            jobs = []
            for msg in messages:
                sequence = msg.metadata.sequence.stream
                # Not bounded by the time stored: an event is often stored well after it
                # occurred (queues, backfills), so the scan goes on to where the replay began.
                if sequence > end:
                    finished = True  # stored after the replay began
                    break
                # The last one of this tenant and entity, or the end: no 1 s wait for more.
                finished = sequence == end or msg.metadata.num_pending == 0
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
                progress.matched_events += 1
                if not dry_run:
                    shaper = shaper_for(event, data)
                    jobs.append(build_job(entry, event, shaper, replay_id=progress.replay_id))
                if finished:
                    break
            await publish_jobs(js, jobs)
            progress.published_jobs += len(jobs)
            yield _snapshot(progress)
    finally:
        await consumer.unsubscribe()
    progress.done = True
    yield progress


def _snapshot(progress: router_pb2.ReplayProgress) -> router_pb2.ReplayProgress:
    copy = router_pb2.ReplayProgress()
    copy.CopyFrom(progress)
    return copy
