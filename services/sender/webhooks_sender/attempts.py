"""The record of every attempt, success or failure, on ATTEMPTS: what the failures view and
anyone auditing deliveries read. It names the delivery, the event, the subscription and
what was sent and received; it never holds a secret (the Authorization header and the
signature are not part of it; URLs are shown without user info or query string).

Published with ``Nats-Msg-Id`` ``<delivery>:<series>:<attempt>`` so a sender that crashes
after publishing and before acknowledging the job, and sends the attempt again, does not
record it twice within the duplicate window.

On ``attempts.<tenant>.<subscription>``, except the record of a first attempt that
succeeded (most of them): on ``attempts.<tenant>.<subscription>.ok``, which the failures
view's consumer does not take (it never concerns a failed event), so neither the failures
service nor nats-server spends anything on it beyond storing it. Every other record (a
failure, a retry's or a redelivery's outcome) stays where the view reads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS

from webhooks.v1 import messages_pb2
from webhooks_messaging import ATTEMPTS, attempts_subject
from webhooks_messaging.checks import is_first_success
from webhooks_messaging.publisher import (
    CONFIRM_TIMEOUT_SECONDS,
    EXPECTED_STREAM,
    ConfirmedPublisher,
)
from webhooks_sender.delivery import AttemptResult

__all__ = ["CONFIRM_TIMEOUT_SECONDS", "EXPECTED_STREAM", "AttemptPublisher", "attempt_record"]

RESPONSE_SNIPPET_BYTES = 8 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    ``then`` is called from the reply's handler (webhooks_messaging.publisher), so the
    consumer settles a job there, without a future, a timer and a wake-up of the job's
    task per record. The number of records in flight is bounded by the consumer (one per
    job it holds).
    """

    def __init__(self, nc: NATS, *, confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS) -> None:
        self._publisher = ConfirmedPublisher(nc, ATTEMPTS, confirm_timeout=confirm_timeout)

    @property
    def in_flight(self) -> int:
        return self._publisher.in_flight

    async def start(self) -> None:
        await self._publisher.start()

    async def close(self) -> None:
        await self._publisher.close()

    async def publish(
        self, record: messages_pb2.AttemptRecord, trace_headers: Mapping[str, str], then: Stored
    ) -> None:
        """Sends the record; ``then`` is called once, when the broker has stored it (None)
        or with the reason it has not. Raises (and ``then`` is not called) when the record
        could not even be sent. Stored on ATTEMPTS or an error, nowhere else."""
        headers = {
            **trace_headers,
            "Nats-Msg-Id": f"{record.delivery_id}:{record.series}:{record.attempt}",
        }
        await self._publisher.publish(
            attempts_subject(
                record.tenant, record.subscription_id, first_success=is_first_success(record)
            ),
            record.SerializeToString(),
            headers,
            then,
        )
