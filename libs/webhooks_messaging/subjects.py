"""Subject names of every stream, and the tenant id rule shared with the auth layer.

One place builds subjects so publishers and consumers cannot disagree on their shape,
and so no caller-supplied token can smuggle a wildcard or a dot into a subject.

Events and delivery jobs come in two lanes (see the router's lanes.py): the standard lane
(``events.``, ``deliveries.jobs.``) and the bulk lane (``events-bulk.``,
``deliveries.bulk.``) that a tenant's events beyond its standard rate take. Both keep the
tenant at the same token, so the checks of a subject read either lane alike.
"""

from __future__ import annotations

import re

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_TENANT = re.compile(TENANT_PATTERN)

# One subject token: no dots (token separator), wildcards, whitespace or control
# characters; ids of subscriptions, deliveries and certificates, entity and trigger
# names all fit this.
_TOKEN = re.compile(r"^[A-Za-z0-9_:-]{1,128}$")


def is_valid_tenant(tenant: str) -> bool:
    return bool(_TENANT.fullmatch(tenant))


def _token(kind: str, value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{kind}: not usable in a NATS subject: {value!r}")
    return value


def _tenant(tenant: str) -> str:
    if not is_valid_tenant(tenant):
        raise ValueError(f"tenant: not a valid tenant id: {tenant!r}")
    return tenant


def subscription_subject(tenant: str, subscription_id: str) -> str:
    return f"subscriptions.{_tenant(tenant)}.subscription.{_token('subscription', subscription_id)}"


def certificate_subject(tenant: str, certificate_id: str) -> str:
    return f"subscriptions.{_tenant(tenant)}.certificate.{_token('certificate', certificate_id)}"


EVENTS_PREFIX = "events"
BULK_EVENTS_PREFIX = "events-bulk"
JOBS_PREFIX = "deliveries.jobs"
BULK_JOBS_PREFIX = "deliveries.bulk"


def events_subject(tenant: str, entity: str, trigger: str, *, bulk: bool = False) -> str:
    prefix = BULK_EVENTS_PREFIX if bulk else EVENTS_PREFIX
    return f"{prefix}.{_tenant(tenant)}.{_token('entity', entity)}.{_token('trigger', trigger)}"


def delivery_job_subject(tenant: str, subscription_id: str, *, bulk: bool = False) -> str:
    prefix = BULK_JOBS_PREFIX if bulk else JOBS_PREFIX
    return f"{prefix}.{_tenant(tenant)}.{_token('subscription', subscription_id)}"


def events_filters(tenant: str, entity: str) -> list[str]:
    """The tenant's events of the entity on either lane (a consumer's filter subjects)."""
    rest = f"{_tenant(tenant)}.{_token('entity', entity)}.>"
    return [f"{EVENTS_PREFIX}.{rest}", f"{BULK_EVENTS_PREFIX}.{rest}"]


def is_bulk_event(subject: str) -> bool:
    """Whether an event's subject is on the bulk lane."""
    return subject.startswith(BULK_EVENTS_PREFIX + ".")


def is_bulk_job(subject: str) -> bool:
    """Whether a delivery job's subject is on the bulk lane."""
    return subject.startswith(BULK_JOBS_PREFIX + ".")


def delivery_retry_subject(delivery_id: str) -> str:
    return f"deliveries.retry.{_token('delivery', delivery_id)}"


ATTEMPTS_PREFIX = "attempts"
# The last token of a first-attempt success's record (see attempts_subject).
FIRST_SUCCESS_TOKEN = "ok"
# What the failures view reads: every attempt record but a first-attempt success (the
# filter of its consumer; records stored before the ``.ok`` form match it too).
FAILURES_VIEW_SUBJECTS = f"{ATTEMPTS_PREFIX}.*.*"


def attempts_subject(tenant: str, subscription_id: str, *, first_success: bool = False) -> str:
    """``attempts.<tenant>.<subscription>``, or with ``.ok`` after it for the record of a
    delivery whose first attempt succeeded: nothing the failures view needs (it never
    failed), so the view's consumer (FAILURES_VIEW_SUBJECTS) is not sent it, while every
    reader of ``attempts.<tenant>.>`` (audits, the bench) still reads every attempt."""
    subject = f"{ATTEMPTS_PREFIX}.{_tenant(tenant)}.{_token('subscription', subscription_id)}"
    return f"{subject}.{FIRST_SUCCESS_TOKEN}" if first_success else subject
