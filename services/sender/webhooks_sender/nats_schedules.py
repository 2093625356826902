"""Scheduling the next attempt, or a parked job's return, durably: a NATS message schedule
on ``deliveries.retry.<delivery>:<series>`` that the broker fires onto the job's own subject
at the due time (when is ``retries.py``'s to say). A job comes back on its own lane
(``bulk``: the bulk lane's subject), so a burst's retries and parked jobs stay in the bulk
lane."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2
from webhooks_messaging import DELIVERIES, delivery_job_subject, delivery_retry_subject
from webhooks_sender.delivery_metrics import retry_scheduled
from webhooks_sender.retries import PREVIOUS_ATTEMPT_HEADER, parked_until, schedule_time

__all__ = ["park", "schedule", "schedule_retry"]


async def schedule(
    js: JetStreamContext,
    job: messages_pb2.DeliveryJob,
    at: datetime,
    *,
    msg_id: str,
    headers: dict[str, str],
    bulk: bool = False,
    key: str = "",
) -> None:
    """Publish ``job`` to be delivered to its subject at ``at``; stored when this returns.

    A schedule replaces the one pending on the same subject (the broker keeps one per
    subject): the subject is the delivery and series, plus ``key`` for a schedule that must
    not replace the next attempt's (a parking)."""
    subject = delivery_retry_subject(f"{job.delivery_id}:{job.series}{key}")
    target = delivery_job_subject(job.tenant, job.subscription_id, bulk=bulk)
    await js.publish(
        subject,
        job.SerializeToString(),
        stream=DELIVERIES,
        headers={
            **headers,
            "Nats-Msg-Id": msg_id,
            "Nats-Schedule": f"@at {schedule_time(at)}",
            "Nats-Schedule-Target": target,
        },
    )


async def schedule_retry(
    js: JetStreamContext,
    job: messages_pb2.DeliveryJob,
    at: datetime,
    previous_attempt: dict[str, str],
    *,
    bulk: bool = False,
) -> None:
    """The next attempt of ``job``, due at ``at``; its span will link to ``previous_attempt``."""
    following = messages_pb2.DeliveryJob()
    following.CopyFrom(job)
    following.attempt = job.attempt + 1
    headers = dict(job.trace_context)
    if "traceparent" in previous_attempt:
        headers[PREVIOUS_ATTEMPT_HEADER] = previous_attempt["traceparent"]
    await schedule(
        js,
        following,
        at,
        msg_id=f"{job.delivery_id}:{job.series}:{following.attempt}:retry",
        headers=headers,
        bulk=bulk,
    )
    retry_scheduled()


async def park(
    js: JetStreamContext,
    job: messages_pb2.DeliveryJob,
    headers: dict[str, str],
    *,
    bulk: bool = False,
    at: datetime | None = None,
) -> None:
    """Put ``job`` back unchanged (not an attempt: its attempt number and retries stay),
    for a few seconds, or until ``at`` (a deferral: the circuit is open, the endpoint
    throttled, the rate limit's slot later; the schedule fires in whole seconds, never
    before ``at``).

    ``headers`` (the job message's) keep the trace context and the previous attempt; the
    broker's own (``Nats-*``) are dropped: a job that came from a schedule carries
    ``Nats-Scheduler``, which the broker refuses on a new schedule ("invalid scheduler").
    """
    headers = {k: v for k, v in headers.items() if not k.lower().startswith("nats-")}
    if at is None:
        at = parked_until(datetime.now(UTC))
    # Each parking is a distinct message: the id only guards this one publish's re-sends.
    stamp = math.floor(at.timestamp() * 1000)
    await schedule(
        js,
        job,
        at,
        msg_id=f"{job.delivery_id}:{job.series}:{job.attempt}:parked:{stamp}",
        headers=headers,
        bulk=bulk,
        # Its own subject: parking a copy of an attempt already made (redelivered after an
        # acknowledgement that was lost) must not replace the next attempt's schedule.
        key=f":{job.attempt}:parked",
    )
