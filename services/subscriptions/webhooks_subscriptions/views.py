"""What callers may see of an aggregate: plain data with every secret replaced by a flag.

The same view is returned by GetSubscription (from the aggregate) and stored in the
listing read model (ListSubscriptions), so both answer alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from webhooks_catalogue.authentication import SECRET_FIELDS
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.certificate import ClientCertificate
from webhooks_subscriptions.domain.subscription import Subscription


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def masked_authentication(authentication: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in authentication.items() if k not in SECRET_FIELDS}
    for key in SECRET_FIELDS:
        if key in authentication:
            view[f"{key}_set"] = bool(authentication[key])
    return view


def subscription_view(subscription: Subscription) -> dict[str, Any]:
    method, fmt, content_type = rules.webhook_presentation(subscription.webhook)
    return {
        "id": str(subscription.id),
        "tenant": subscription.tenant,
        "name": subscription.name,
        "entity": subscription.entity,
        "triggers": subscription.triggers,
        "include_complete_data": subscription.include_complete_data,
        "webhook": {
            **subscription.webhook,
            "method": method,
            "format": fmt,
            "content_type": content_type,
        },
        "authentication": masked_authentication(subscription.authentication),
        "retry_policy": subscription.retry_policy,
        "active": subscription.active,
        "disabled_reason": subscription.disabled_reason,
        "created_at": _time(subscription.created_on),
        "updated_at": _time(subscription.modified_on),
        "version": subscription.version,
        "signing_secret": {
            "set": bool(subscription.signing_secret),
            "rotated_at": _time(subscription.secret_rotated_at),
            "previous_valid_until": _time(subscription.previous_valid_until),
        },
    }


def certificate_view(certificate: ClientCertificate) -> dict[str, Any]:
    return {
        "id": str(certificate.id),
        "tenant": certificate.tenant,
        "name": certificate.name,
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "not_before": _time(certificate.not_before),
        "not_after": _time(certificate.not_after),
        "fingerprint_sha256": certificate.fingerprint_sha256,
        "created_at": _time(certificate.created_on),
    }
