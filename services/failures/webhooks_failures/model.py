"""What the failures view holds and answers, independent of SQL and of gRPC.

The contract between the view (``view.py``: SQLite / PostgreSQL tables kept by the
projector) and the API (``api.py``): the API validates requests into these values and
turns the answers into messages; the view never sees a request.

A failed event is a delivery (``delivery_id``) with at least one failed attempt. Its
state (RETRYING, FAILED, RECOVERED, REDELIVERED) follows its attempts on ATTEMPTS, in stream
order, by the rules of ``failed_events.py``.

``retry_attempts`` is the number of attempts made after the first (all series together);
``failed_attempts`` the number that failed. ``error_code`` is the HTTP status of the latest
failed attempt when it had one, otherwise its failure class name (``timeout``, ``tls``…).
The overview's error fields describe the latest FAILED attempt; ``last_attempt_at`` the
latest attempt of any outcome. The payload is the request body of the latest attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_catalogue import limits
from webhooks_catalogue.failure_classes import failure_name

State = failures_pb2.FailedEventState
RETRYING = failures_pb2.FAILED_EVENT_STATE_RETRYING
FAILED = failures_pb2.FAILED_EVENT_STATE_FAILED
RECOVERED = failures_pb2.FAILED_EVENT_STATE_RECOVERED
REDELIVERED = failures_pb2.FAILED_EVENT_STATE_REDELIVERED

MAX_PAGE_SIZE = limits.FAILED_EVENTS_PAGE_SIZE
DEFAULT_PAGE_SIZE = 50


def error_code(record: messages_pb2.AttemptRecord) -> str:
    return str(record.status_code) if record.status_code else failure_name(record.failure_class)


@dataclass(frozen=True)
class Filter:
    """A validated filter: every field optional, all given ones must hold (AND)."""

    subscription_ids: tuple[str, ...] = ()
    entity: str = ""
    trigger: str = ""
    channel: int | None = None
    subchannel: str = ""
    error_codes: tuple[str, ...] = ()  # "500", "timeout", …
    states: tuple[int, ...] = ()  # FailedEventState values
    since: datetime | None = None  # last_attempt_at >= since
    until: datetime | None = None  # last_attempt_at < until
    message_contains: str = ""  # case-insensitive substring of error_message
    min_retry_attempts: int | None = None  # retry_attempts >= this


@dataclass(frozen=True)
class Page:
    failed_events: list[failures_pb2.FailedEvent]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True)
class RedeliveryTarget:
    """What a manual redelivery needs to publish a fresh job of a failed event."""

    delivery_id: str
    event_id: str
    tenant: str
    subscription_id: str
    subscription_version: int
    subscription_name: str
    entity: str
    trigger: str
    channel: int | None
    subchannel: str
    occurred_at: datetime | None
    payload_json: bytes  # the job's shaped payload (JSON), not the SOAP body
    replay: bool
    next_series: int  # the highest series seen + 1


class InvalidPageToken(ValueError):
    """A page token this view did not issue (or for another filter)."""
