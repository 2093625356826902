"""Subject names of every stream, and the tenant id rule shared with the auth layer.

One place builds subjects so publishers and consumers cannot disagree on their shape,
and so no caller-supplied token can smuggle a wildcard or a dot into a subject.
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


def events_subject(tenant: str, entity: str, trigger: str) -> str:
    return f"events.{_tenant(tenant)}.{_token('entity', entity)}.{_token('trigger', trigger)}"


def delivery_job_subject(tenant: str, subscription_id: str) -> str:
    return f"deliveries.jobs.{_tenant(tenant)}.{_token('subscription', subscription_id)}"


def delivery_retry_subject(delivery_id: str) -> str:
    return f"deliveries.retry.{_token('delivery', delivery_id)}"


def attempts_subject(tenant: str, subscription_id: str) -> str:
    return f"attempts.{_tenant(tenant)}.{_token('subscription', subscription_id)}"
