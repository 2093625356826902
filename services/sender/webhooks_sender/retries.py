"""After a failed attempt: whether and when the next one happens, and scheduling it durably.

A failed attempt never stays on the consumer (a nak with a delay of minutes would hold a
slot of ``max_ack_pending`` and let one failing endpoint stall every delivery, see
architecture.md). The next attempt is a copy of the job, attempt + 1, published as a NATS
message schedule on ``deliveries.retry.<delivery>:<series>`` that the broker fires onto the
job's own subject at the due time: it survives restarts of the sender and of the broker.
One subject per (delivery, series): a later schedule there would replace an earlier one,
and a delivery has at most one pending retry per series of attempts.

The same mechanism parks a job that cannot be started now (its endpoint already has all
the requests in flight and waiting that it may have): it comes back a few seconds later,
same attempt number, and meanwhile healthy endpoints are not kept waiting behind it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES
from webhooks_messaging import DELIVERIES, delivery_job_subject, delivery_retry_subject

# Carries the traceparent of the attempt before, so the next attempt's span links to it.
PREVIOUS_ATTEMPT_HEADER = "Webhooks-Previous-Attempt"
PARKED_SECONDS = (2.0, 5.0)  # a parked job comes back after a random moment in this range


@dataclass(frozen=True)
class RetryPolicy:
    retries: int  # attempts after the first, 0..5
    interval_seconds: int
    retry_after_max_seconds: int  # the most a Retry-After may push an attempt back

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    @classmethod
    def of(
        cls, subscription: messages_pb2.SubscriptionState, retry_after_max_seconds: int
    ) -> RetryPolicy:
        policy = subscription.retry_policy
        return cls(
            retries=policy.retries if policy.HasField("retries") else DEFAULT_RETRIES,
            interval_seconds=(
                policy.interval_seconds
                if policy.HasField("interval_seconds")
                else DEFAULT_INTERVAL_SECONDS
            ),
            retry_after_max_seconds=retry_after_max_seconds,
        )

    def next_attempt_at(
        self, attempt: int, now: datetime, *, final: bool, retry_after: float | None
    ) -> datetime | None:
        """When attempt ``attempt + 1`` is due after attempt ``attempt`` failed, or None."""
        if final or attempt >= self.max_attempts:
            return None
        delay = float(self.interval_seconds)
        if retry_after is not None:
            # Never sooner than the endpoint asked, never later than the operator allows.
            delay = max(delay, min(retry_after, float(self.retry_after_max_seconds)))
        return now + timedelta(seconds=delay)


def schedule_time(at: datetime) -> str:
    """``@at`` takes RFC 3339 in whole seconds: round up, so an attempt is never early."""
    at = at.astimezone(UTC)
    whole = at.replace(microsecond=0)
    if whole < at:
        whole += timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


async def schedule(
    js: JetStreamContext,
    job: messages_pb2.DeliveryJob,
    at: datetime,
    *,
    msg_id: str,
    headers: dict[str, str],
) -> None:
    """Publish ``job`` to be delivered to its subject at ``at``; stored when this returns."""
    subject = delivery_retry_subject(f"{job.delivery_id}:{job.series}")
    target = delivery_job_subject(job.tenant, job.subscription_id)
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
    )


async def park(
    js: JetStreamContext, job: messages_pb2.DeliveryJob, headers: dict[str, str]
) -> None:
    """Put ``job`` back for a few seconds, unchanged (not an attempt).

    ``headers`` (the job message's) keep the trace context and the previous attempt; the
    broker's own (``Nats-*``) are dropped: a job that came from a schedule carries
    ``Nats-Scheduler``, which the broker refuses on a new schedule ("invalid scheduler").
    """
    headers = {k: v for k, v in headers.items() if not k.lower().startswith("nats-")}
    delay = random.uniform(*PARKED_SECONDS)
    at = datetime.now(UTC) + timedelta(seconds=delay)
    # Each parking is a distinct message: the id only guards this one publish's re-sends.
    stamp = math.floor(at.timestamp() * 1000)
    await schedule(
        js,
        job,
        at,
        msg_id=f"{job.delivery_id}:{job.series}:{job.attempt}:parked:{stamp}",
        headers=headers,
    )
