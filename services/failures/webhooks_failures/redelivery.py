"""Manual redelivery of failed events: which events (one by delivery id, or those matching
a filter), and publishing, per event, its marker record and its fresh job.

Per failed event, first a REDELIVERY_REQUESTED record on ATTEMPTS (attempt 0 of a new
series: the view shows the event REDELIVERED and the trial history who asked) and then a
fresh DeliveryJob (attempt 1 of that series, marked manual) on DELIVERIES. The job keeps
the delivery's ``delivery_id``, so the receiver sees the same ``webhook-id`` as on the
first attempts and the new attempts join the event's trial history: a manual redelivery is
a deliberate resend of that delivery, and a receiver that already processed it may
recognise it. Message ids ``<delivery>:<series>:0`` and ``<delivery>:<series>:manual``
make two identical requests racing each other (both seeing the same next series) publish
once. One call redelivers at most ``MAX_REDELIVERIES_PER_CALL`` events; ``matched`` tells
whether more remain, and calling again continues with them (those already redelivered no
longer match the default FAILED state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from opentelemetry import trace

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_failures.filters import MAX_ID, InvalidRequest, filter_of
from webhooks_failures.model import FAILED, Filter, RedeliveryTarget
from webhooks_failures.view import FailuresView
from webhooks_messaging import ATTEMPTS, DELIVERIES, attempts_subject, delivery_job_subject
from webhooks_messaging.jobs import delivery_job, redelivery_job_id
from webhooks_telemetry import inject_headers

tracer = trace.get_tracer("webhooks.failures")

MAX_REDELIVERIES_PER_CALL = 10_000
PUBLISH_BATCH = 500  # publishes in flight before their acknowledgements are awaited
CONFIRM_TIMEOUT_SECONDS = 10.0


class UnknownFailedEvent(LookupError):
    """No failed event of the caller's tenant has this delivery id."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__(delivery_id)
        self.delivery_id = delivery_id


class RedeliveryStopped(Exception):
    """The broker refused or did not confirm in time: ``done`` were published."""

    def __init__(self, done: list[str], total: int, cause: Exception) -> None:
        super().__init__(f"stopped after {len(done)} of {total}: {cause}")
        self.done = done
        self.total = total
        self.cause = cause


@dataclass(frozen=True)
class Selection:
    matched: int
    targets: list[RedeliveryTarget]  # empty for a dry run by filter


def redelivery_filter(request: failures_pb2.FailedEventFilter) -> Filter:
    """A redelivery filter without states means the FAILED ones: an event still retrying
    has its next attempt scheduled, and a recovered one was delivered."""
    found = filter_of(request)
    if found.states:
        return found
    return replace(found, states=(FAILED,))


def target_of(request: failures_pb2.RedeliverFailedEventsRequest) -> str | Filter:
    """The delivery id or the validated filter a request names, or InvalidRequest."""
    which = request.WhichOneof("target")
    if which is None:
        raise InvalidRequest("target", "give a delivery_id or a filter")
    if which == "delivery_id":
        if not 0 < len(request.delivery_id) <= MAX_ID:
            raise InvalidRequest("delivery_id", f"not a delivery id (1 to {MAX_ID} characters)")
        return request.delivery_id
    return redelivery_filter(request.filter)


def select(view: FailuresView, tenant: str, target: str | Filter, dry_run: bool) -> Selection:
    """The failed events to redeliver (blocking: run it in a thread). A filter's dry run
    only counts; a delivery id not in the view is UnknownFailedEvent."""
    if isinstance(target, str):
        targets = view.redelivery_targets(tenant, delivery_id=target)
        if not targets:
            raise UnknownFailedEvent(target)
        return Selection(len(targets), targets)
    matched = view.count_matching(tenant, target)
    if dry_run:
        return Selection(matched, [])
    limit = MAX_REDELIVERIES_PER_CALL
    return Selection(matched, view.redelivery_targets(tenant, filter=target, limit=limit))


def marker_record(target: RedeliveryTarget, series: int, requested_by: str) -> bytes:
    record = messages_pb2.AttemptRecord(
        delivery_id=target.delivery_id,
        series=series,
        attempt=0,
        tenant=target.tenant,
        subscription_id=target.subscription_id,
        subscription_name=target.subscription_name,
        event_id=target.event_id,
        entity=target.entity,
        trigger=target.trigger,
        subchannel=target.subchannel,
        outcome=messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED,
        manual=True,
        replay=target.replay,
        subscription_version=target.subscription_version,
        requested_by=requested_by,
    )
    record.started_at.FromDatetime(datetime.now(UTC))
    if target.channel is not None:
        record.channel = target.channel
    if target.occurred_at is not None:
        record.occurred_at.FromDatetime(target.occurred_at)
    return record.SerializeToString()


def manual_job(target: RedeliveryTarget, series: int, trace_context: dict[str, str]) -> bytes:
    job = delivery_job(
        job_id=redelivery_job_id(target.event_id, target.subscription_id, series),
        delivery_id=target.delivery_id,
        event_id=target.event_id,
        tenant=target.tenant,
        subscription_id=target.subscription_id,
        subscription_version=target.subscription_version,
        subscription_name=target.subscription_name,
        entity=target.entity,
        trigger=target.trigger,
        subchannel=target.subchannel,
        channel=target.channel,
        occurred_at=target.occurred_at,
        payload_json=target.payload_json,
        replay=target.replay,
        manual=True,
        series=series,
        trace_context=trace_context,
    )
    return job.SerializeToString()


async def publish(
    js: JetStreamContext, targets: Sequence[RedeliveryTarget], requested_by: str
) -> list[str]:
    """Publishes each target's marker, then its job; returns the delivery ids published,
    or raises RedeliveryStopped with those published before the broker failed."""
    done: list[str] = []
    with tracer.start_as_current_span(
        "redeliver failed events", attributes={"webhooks.count": len(targets)}
    ):
        try:
            for start in range(0, len(targets), PUBLISH_BATCH):
                batch = targets[start : start + PUBLISH_BATCH]
                # Every marker stored before any job of the batch is: the job's attempts
                # (recorded by a sender on ATTEMPTS) must follow the marker there.
                await _confirm([await _publish_marker(js, t, requested_by) for t in batch])
                await _confirm([await _publish_job(js, t) for t in batch])
                done.extend(t.delivery_id for t in batch)
        except Exception as error:  # the broker refused or did not confirm in time
            raise RedeliveryStopped(done, len(targets), error) from error
    return done


async def _publish_marker(
    js: JetStreamContext, t: RedeliveryTarget, requested_by: str
) -> asyncio.Future[Any]:
    return await js.publish_async(
        attempts_subject(t.tenant, t.subscription_id),
        marker_record(t, t.next_series, requested_by),
        stream=ATTEMPTS,
        headers=inject_headers({"Nats-Msg-Id": f"{t.delivery_id}:{t.next_series}:0"}),
    )


async def _publish_job(js: JetStreamContext, t: RedeliveryTarget) -> asyncio.Future[Any]:
    trace_context = inject_headers({})
    return await js.publish_async(
        delivery_job_subject(t.tenant, t.subscription_id),
        manual_job(t, t.next_series, trace_context),
        stream=DELIVERIES,
        headers={**trace_context, "Nats-Msg-Id": f"{t.delivery_id}:{t.next_series}:manual"},
    )


async def _confirm(acks: Sequence[asyncio.Future[Any]]) -> None:
    if acks:
        await asyncio.wait_for(asyncio.gather(*acks), CONFIRM_TIMEOUT_SECONDS)
