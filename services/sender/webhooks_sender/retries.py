"""After a failed attempt: whether and when the next one happens (pure: no I/O here; the
schedules are published by ``nats_schedules.py``).

A failed attempt never stays on the consumer (a nak with a delay of minutes would hold a
slot of ``max_ack_pending`` and let one failing endpoint stall every delivery). The next
attempt is a copy of the job, attempt + 1, published as a NATS
message schedule on ``deliveries.retry.<delivery>:<series>`` that the broker fires onto the
job's own subject at the due time: it survives restarts of the sender and of the broker.
One subject per (delivery, series): a later schedule there would replace an earlier one,
and a delivery has at most one pending retry per series of attempts.

The same mechanism parks a job that cannot be started now (its endpoint already has all
the requests in flight and waiting that it may have): it comes back a few seconds later,
same attempt number, and meanwhile healthy endpoints are not kept waiting behind it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from webhooks.v1 import messages_pb2
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES

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


def parked_until(now: datetime) -> datetime:
    """When a parked job comes back: a random moment in ``PARKED_SECONDS`` from ``now``."""
    return now + timedelta(seconds=random.uniform(*PARKED_SECONDS))
