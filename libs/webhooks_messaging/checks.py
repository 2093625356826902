"""What a consumer accepts from a stream: the checks of SUBSCRIPTIONS, DELIVERIES and
ATTEMPTS messages, pure (no I/O), one home for every consumer of each stream.

Nothing on a stream is trusted because it is on the stream: whoever could publish there
(a misconfigured service, a leaked credential) must not be able to make a consumer apply a
record under another tenant's subject, with ids the subject does not name, or with values
the code after it cannot take (an out-of-range timestamp makes ``ToDatetime`` raise and an
SQLite integer overflow). Each check returns '' when the message is acceptable, else why
not, naming the field; the consumer sets the message aside (deadletters.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue.limits import TIMESTAMP_MAX_SECONDS, TIMESTAMP_MIN_SECONDS
from webhooks_messaging.subjects import ATTEMPTS_PREFIX, FIRST_SUCCESS_TOKEN, is_valid_tenant

MAX_ID = 128
MAX_ATTEMPT = 10_000  # far above any retry policy (0-5 retries) plus redeliveries
MAX_SERIES = 1_000_000
WEBHOOK_TYPES = frozenset(common_pb2.WebhookType.values())
OUTCOMES = frozenset(
    {
        messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED,
        messages_pb2.ATTEMPT_OUTCOME_FAILED,
        messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED,
    }
)
FAILURE_CLASSES = frozenset(messages_pb2.FailureClass.values())


def timestamp_problem(field: str, stamp: Timestamp) -> str:
    if (
        not TIMESTAMP_MIN_SECONDS <= stamp.seconds <= TIMESTAMP_MAX_SECONDS
        or not 0 <= stamp.nanos < 10**9
    ):
        return f"{field}: out of range ({stamp.seconds} s, {stamp.nanos} ns)"
    return ""


def _first(problems: Iterable[str]) -> str:
    return next((p for p in problems if p), "")


def _id(field: str, value: str) -> str:
    if not value or len(value) > MAX_ID:
        return f"{field}: required, at most {MAX_ID} characters"
    return ""


def _subject_tokens(subject: str, prefix: str, count: int) -> list[str] | None:
    tokens = subject.split(".")
    if len(tokens) != count or tokens[0] != prefix:
        return None
    return tokens


def subscription_message_problem(subject: str, event: messages_pb2.SubscriptionDomainEvent) -> str:
    """A SUBSCRIPTIONS message: ``subscriptions.<tenant>.<kind>.<id>`` carrying that
    kind's state, of that tenant and id."""
    tokens = _subject_tokens(subject, "subscriptions", 4)
    if tokens is None:
        return f"subject: not subscriptions.<tenant>.<kind>.<id>: {subject[:200]!r}"
    _, tenant, kind, ident = tokens
    which = event.WhichOneof("state")
    if which is None:
        return "state: neither a subscription nor a certificate"
    if which != kind:
        return f"state: a {which} on a {kind} subject"
    state: messages_pb2.SubscriptionState | messages_pb2.CertificateState = getattr(event, which)
    if not is_valid_tenant(state.tenant):
        return f"{which}.tenant: not a valid tenant id: {state.tenant[:64]!r}"
    if state.tenant != tenant:
        return f"{which}.tenant: {state.tenant!r} on the subject of tenant {tenant!r}"
    problem = _id(f"{which}.id", state.id)
    if problem:
        return problem
    if state.id != ident:
        return f"{which}.id: {state.id[:MAX_ID]!r} on the subject of {ident[:MAX_ID]!r}"
    if state.version < 1:
        return f"{which}.version: must be at least 1, got {state.version}"
    if isinstance(state, messages_pb2.CertificateState):
        return timestamp_problem("certificate.not_after", state.not_after)
    return _first(
        [
            "" if state.webhook.type in WEBHOOK_TYPES else "subscription.webhook.type: unknown",
            ""
            if 0 <= state.retry_policy.retries <= MAX_ATTEMPT
            else "subscription.retry_policy.retries: out of range",
            ""
            if state.retry_policy.interval_seconds >= 0
            else "subscription.retry_policy.interval_seconds: negative",
            timestamp_problem("subscription.created_at", state.created_at),
            timestamp_problem("subscription.updated_at", state.updated_at),
            timestamp_problem("subscription.previous_valid_until", state.previous_valid_until),
        ]
    )


def delivery_job_problem(subject: str, job: messages_pb2.DeliveryJob) -> str:
    """A job on ``deliveries.jobs.<tenant>.<subscription>`` (or the bulk lane's
    ``deliveries.bulk.``), of that tenant and subscription, with what a delivery needs."""
    if not job.delivery_id or not job.subscription_id or not job.event_id:
        return "delivery_id, subscription_id and event_id are required"
    if not is_valid_tenant(job.tenant):
        return f"tenant: not a valid tenant id: {job.tenant[:64]!r}"
    tokens = _subject_tokens(subject, "deliveries", 4)
    if tokens is None or tokens[1] not in ("jobs", "bulk"):
        return f"subject: not deliveries.jobs|bulk.<tenant>.<subscription>: {subject[:200]!r}"
    if tokens[2] != job.tenant:
        return f"tenant: {job.tenant!r} on the subject of tenant {tokens[2]!r}"
    if tokens[3] != job.subscription_id:
        return f"subscription_id: {job.subscription_id[:MAX_ID]!r} on the subject of {tokens[3]!r}"
    if not 1 <= job.attempt <= MAX_ATTEMPT or not 0 <= job.series <= MAX_SERIES:
        return f"attempt {job.attempt} / series {job.series}: out of range"
    if not job.payload_json:
        return "payload_json is empty"
    return _first(
        [
            _id("delivery_id", job.delivery_id),
            _id("subscription_id", job.subscription_id),
            timestamp_problem("occurred_at", job.occurred_at),
            timestamp_problem("first_attempt_at", job.first_attempt_at),
        ]
    )


def is_first_success(record: messages_pb2.AttemptRecord) -> bool:
    """The record of a delivery's first attempt, which succeeded: nothing the failures
    view needs (a delivery is a failed event from its first failed attempt, and a manual
    redelivery's attempts are of a series after the first), so it goes on the ``.ok``
    subject its consumer does not take (subjects.attempts_subject)."""
    return (
        record.outcome == messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
        and record.series == 0
        and record.attempt == 1
        and not record.manual
    )


def attempt_record_problem(subject: str, record: messages_pb2.AttemptRecord) -> str:
    """A record on ``attempts.<tenant>.<subscription>`` (or that with ``.ok`` after it:
    a first attempt that succeeded), of that tenant and subscription, with values the
    failures view can store."""
    if not is_valid_tenant(record.tenant):
        return f"tenant: not a valid tenant id: {record.tenant[:64]!r}"
    tokens = _subject_tokens(subject, ATTEMPTS_PREFIX, 3)
    if tokens is None:
        tokens = _subject_tokens(subject, ATTEMPTS_PREFIX, 4)
        if tokens is None or tokens[3] != FIRST_SUCCESS_TOKEN:
            return f"subject: not attempts.<tenant>.<subscription>: {subject[:200]!r}"
        if not is_first_success(record):
            return f"subject: {subject[:200]!r} holds first attempts that succeeded only"
    if tokens[1] != record.tenant:
        return f"tenant: {record.tenant!r} on the subject of tenant {tokens[1]!r}"
    if tokens[2] != record.subscription_id:
        ident = record.subscription_id[:MAX_ID]
        return f"subscription_id: {ident!r} on the subject of {tokens[2]!r}"
    if record.outcome not in OUTCOMES:
        return f"outcome: unknown value {record.outcome}"
    if record.failure_class not in FAILURE_CLASSES:
        return f"failure_class: unknown value {record.failure_class}"
    if not 0 <= record.attempt <= MAX_ATTEMPT or not 0 <= record.series <= MAX_SERIES:
        return f"attempt {record.attempt} / series {record.series}: out of range"
    if not 0 <= record.status_code <= 999:
        return f"status_code: out of range ({record.status_code})"
    if not 0 <= record.duration_ms <= 10**9:
        return f"duration_ms: out of range ({record.duration_ms})"
    if not 0 <= record.max_attempts <= MAX_ATTEMPT:
        return f"max_attempts: out of range ({record.max_attempts})"
    if not -(2**62) <= record.subscription_version <= 2**62:
        return "subscription_version: out of range"
    return _first(
        [
            _id("delivery_id", record.delivery_id),
            _id("subscription_id", record.subscription_id),
            timestamp_problem("started_at", record.started_at),
            timestamp_problem("next_attempt_at", record.next_attempt_at),
            timestamp_problem("occurred_at", record.occurred_at),
        ]
    )
