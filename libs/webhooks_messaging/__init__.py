"""NATS JetStream plumbing shared by every service: streams, subjects, connections."""

from webhooks_messaging.connection import connect, redact_url
from webhooks_messaging.streams import (
    ATTEMPTS,
    DEADLETTERS,
    DELIVERIES,
    DELIVERY_JOBS_SUBJECTS,
    DELIVERY_RETRY_SUBJECTS,
    EVENTS,
    STREAMS,
    SUBSCRIPTIONS,
    declare_stream,
    declare_streams,
    stream_configs,
)
from webhooks_messaging.subjects import (
    TENANT_PATTERN,
    attempts_subject,
    certificate_subject,
    delivery_job_subject,
    delivery_retry_subject,
    events_subject,
    is_valid_tenant,
    subscription_subject,
)

__all__ = [
    "ATTEMPTS",
    "DEADLETTERS",
    "DELIVERIES",
    "DELIVERY_JOBS_SUBJECTS",
    "DELIVERY_RETRY_SUBJECTS",
    "EVENTS",
    "STREAMS",
    "SUBSCRIPTIONS",
    "TENANT_PATTERN",
    "attempts_subject",
    "certificate_subject",
    "connect",
    "declare_stream",
    "declare_streams",
    "delivery_job_subject",
    "delivery_retry_subject",
    "events_subject",
    "is_valid_tenant",
    "redact_url",
    "stream_configs",
    "subscription_subject",
]
