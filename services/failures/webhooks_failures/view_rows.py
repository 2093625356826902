"""The failed-events view's rows as the failures API's messages: a row of the events
table as a FailedEvent (with its trial history, FailedEventDetails), and the latest
attempt of a failed event as the RedeliveryTarget a redelivery starts from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_failures.model import RedeliveryTarget

# The columns every read of a failed event selects, in the order failed_event unpacks;
# the last two are the (series, attempt) of its head record, for details.
ROW_COLUMNS = (
    "tenant, delivery_id, event_id, subscription_id, subscription_name, entity, trigger_name, "
    "channel, subchannel, last_attempt_us, error_code, status_code, failure_class, "
    "error_message, attempts, failed_attempts, state, max_series, head_series, head_attempt"
)
# Positions in ROW_COLUMNS that a page token is made of.
LAST_ATTEMPT_US = 9
DELIVERY_ID = 1


def _micros_timestamp(us: int) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def failed_event(row: Sequence[Any]) -> failures_pb2.FailedEvent:
    (tenant, delivery_id, event_id, subscription_id, subscription_name, entity, trigger,
     channel, subchannel, last_us, code, status_code, failure_class, message, attempts,
     _failed, state, *_rest) = row  # fmt: skip
    event = failures_pb2.FailedEvent(
        delivery_id=delivery_id,
        tenant=tenant,
        subscription_id=subscription_id,
        subscription_name=subscription_name,
        entity=entity,
        trigger=trigger,
        subchannel=subchannel,
        last_attempt_at=_micros_timestamp(last_us),
        error_code=code,
        status_code=status_code,
        failure_class=failure_class,
        error_message=message,
        retry_attempts=max(attempts - 1, 0),
        state=state,
        event_id=event_id,
    )
    if channel is not None:
        event.channel = channel
    return event


def details(
    row: Sequence[Any], history: Sequence[Sequence[Any]]
) -> failures_pb2.FailedEventDetails:
    """``row`` (ROW_COLUMNS) with its ``history`` rows (series, attempt, record), in
    order; the payload is the head record's request."""
    out = failures_pb2.FailedEventDetails(overview=failed_event(row))
    head = (row[18], row[19])
    for series, attempt, blob in history:
        record = messages_pb2.AttemptRecord.FromString(bytes(blob))
        out.trial_history.append(record)
        if (series, attempt) == head:
            out.payload = record.request_body
            out.payload_content_type = record.request_content_type
    return out


def redelivery_target(max_series: int, blob: bytes) -> RedeliveryTarget:
    """From the latest attempt's record; the redelivery is the series after ``max_series``."""
    record = messages_pb2.AttemptRecord.FromString(blob)
    return RedeliveryTarget(
        delivery_id=record.delivery_id,
        event_id=record.event_id,
        tenant=record.tenant,
        subscription_id=record.subscription_id,
        subscription_version=record.subscription_version,
        subscription_name=record.subscription_name,
        entity=record.entity,
        trigger=record.trigger,
        channel=record.channel if record.HasField("channel") else None,
        subchannel=record.subchannel,
        occurred_at=(
            record.occurred_at.ToDatetime(tzinfo=UTC) if record.HasField("occurred_at") else None
        ),
        payload_json=record.payload_json or record.request_body,
        replay=record.replay,
        next_series=max_series + 1,
    )
