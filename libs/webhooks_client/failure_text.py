"""How failed events and their delivery attempts read, in a terminal and in the console:
states by name, channels by catalogue name, an Overview as key/value fields, a payload
indented, the Trial History as table rows."""

from __future__ import annotations

import json
from xml.dom import minidom
from xml.parsers.expat import ExpatError

from webhooks.v1.failures_pb2 import FailedEvent, FailedEventState
from webhooks.v1.messages_pb2 import AttemptOutcome, AttemptRecord
from webhooks_catalogue import channel_name
from webhooks_catalogue.failure_classes import failure_name
from webhooks_client.protos import timestamp_text

STATES = {
    "retrying": FailedEventState.FAILED_EVENT_STATE_RETRYING,
    "failed": FailedEventState.FAILED_EVENT_STATE_FAILED,
    "recovered": FailedEventState.FAILED_EVENT_STATE_RECOVERED,
    "redelivered": FailedEventState.FAILED_EVENT_STATE_REDELIVERED,
}
STATE_NAMES: dict[int, str] = {value: name for name, value in STATES.items()}
HISTORY_HEADERS = (
    *("TIME", "SERIES", "ATTEMPT", "OUTCOME", "STATUS", "CLASS"),
    *("MESSAGE", "DURATION", "RESPONSE"),
)
MESSAGE_WIDTH = 60  # of an error message or a response snippet in a table cell


def state_text(state: int) -> str:
    return STATE_NAMES.get(state, "-")


def channel_text(event: FailedEvent | AttemptRecord) -> str:
    if not event.HasField("channel"):
        return "-"
    try:
        return channel_name(event.channel)
    except ValueError:
        return str(event.channel)


def one_line(text: str, width: int = MESSAGE_WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def class_text(failure_class: int) -> str:
    return failure_name(failure_class) or "-"


def overview_fields(event: FailedEvent) -> list[tuple[str, str]]:
    return [
        ("delivery id", event.delivery_id),
        ("event id", event.event_id),
        ("webhook", f"{event.subscription_name} ({event.subscription_id})"),
        ("entity", event.entity),
        ("trigger", event.trigger),
        ("channel", channel_text(event)),
        ("subchannel", event.subchannel or "-"),
        ("state", state_text(event.state)),
        ("last attempt", timestamp_text(event.last_attempt_at)),
        ("error code", event.error_code or "-"),
        ("error", event.error_message or "-"),
        ("retries", str(event.retry_attempts)),
    ]


def payload_text(payload: bytes, content_type: str) -> str:
    """Indented JSON or XML; as it is when it is neither (or not well-formed)."""
    text = payload.decode("utf-8", "replace")
    if not payload:
        return "(none)"
    if "xml" in content_type or text.lstrip().startswith("<"):
        try:
            pretty = minidom.parseString(payload).toprettyxml(indent="  ")
        except (ExpatError, ValueError):
            return text
        return "\n".join(line for line in pretty.splitlines() if line.strip())
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def outcome_text(record: AttemptRecord) -> str:
    if record.outcome == AttemptOutcome.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED:
        return f"redelivery requested by {record.requested_by or '?'}"
    if record.outcome == AttemptOutcome.ATTEMPT_OUTCOME_SUCCEEDED:
        return "succeeded"
    retry = ", will retry" if record.will_retry else ""
    return f"failed{retry}"


def history_row(record: AttemptRecord) -> tuple[str, ...]:
    marker = record.outcome == AttemptOutcome.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED
    manual = " (manual)" if record.manual and not marker else ""
    return (
        timestamp_text(record.started_at),
        str(record.series),
        f"{record.attempt}{manual}" if not marker else "-",
        outcome_text(record),
        str(record.status_code or "-"),
        class_text(record.failure_class),
        one_line(record.error_message) or "-",
        "-" if marker else f"{record.duration_ms} ms",
        one_line(record.response_snippet.decode("utf-8", "replace")) or "-",
    )
