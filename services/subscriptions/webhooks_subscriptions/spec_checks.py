"""A SubscriptionSpec's fields checked all at once, for a create or an update.

The rules (``domain``) are pure; here they meet what only the application holds: the
organisation's certificates and the stored secrets an update may keep. Every bad field is
reported together (InvalidFields), in the form's order: name, entity and triggers,
webhook, authentication, retry policy; within a field, its first problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhooks_catalogue.authentication import SECRET_FIELDS
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.authentication import validate_authentication
from webhooks_subscriptions.domain.certificate import ClientCertificate
from webhooks_subscriptions.domain.errors import (
    InvalidField,
    NotFound,
    collect,
    raise_all,
    valid_or_none,
)
from webhooks_subscriptions.domain.subscription import Subscription


@dataclass(frozen=True)
class SpecChecks:
    seal: Callable[[str], str]
    load_certificate: Callable[[str, str], ClientCertificate]  # (tenant, id); or NotFound
    allow_http_loopback: bool
    min_retry_interval_seconds: int

    def valid(
        self, tenant: str, spec: dict[str, Any], fields: Iterable[str], current: Subscription | None
    ) -> dict[str, Any]:
        """The canonical value of each field to set ("triggers": the entity and triggers),
        or InvalidFields naming every bad one; ``current`` when updating."""
        fields, checks = set(fields), dict[str, Callable[[], Any]]()
        if "name" in fields:
            checks["name"] = lambda: rules.validate_name(spec.get("name", ""))
        if fields & {"entity", "triggers"}:
            entity, triggers = ("", []) if current is None else (current.entity, current.triggers)
            if "entity" in fields:
                entity = spec.get("entity", "")
            if "triggers" in fields:
                triggers = spec.get("triggers", [])
            checks["triggers"] = lambda: rules.validate_triggers(entity, triggers)
        if "webhook" in fields:
            checks["webhook"] = lambda: self.webhook(tenant, spec.get("webhook") or {})
        if "authentication" in fields:
            stored = current.authentication if current is not None else None
            auth = spec.get("authentication")
            checks["authentication"] = lambda: self.authentication(auth, stored)
        if "retry_policy" in fields:
            policy, low = spec.get("retry_policy") or {}, self.min_retry_interval_seconds
            checks["retry_policy"] = lambda: rules.validate_retry_policy(policy, min_interval=low)
        return dict(zip(checks, collect(*checks.values()), strict=True))

    def webhook(self, tenant: str, webhook: dict[str, Any]) -> dict[str, Any]:
        canonical, _ = collect(
            lambda: rules.validate_webhook(webhook, allow_http_loopback=self.allow_http_loopback),
            lambda: self._check_certificate(tenant, webhook.get("client_certificate_id")),
        )
        return dict(canonical)

    def _check_certificate(self, tenant: str, given: object) -> None:
        """A certificate id (of the right form: the rules report one that is not) names an
        unexpired certificate of the organisation."""
        certificate_id = valid_or_none(lambda: rules.certificate_id(given))
        if not certificate_id:
            return
        field = "webhook.client_certificate_id"
        try:
            certificate = self.load_certificate(tenant, certificate_id)
        except NotFound:
            raise InvalidField(field, "no such certificate in this organisation") from None
        if certificate.expired(datetime.now(UTC)):
            raise InvalidField(field, f"expired on {certificate.not_after.isoformat()}")

    def authentication(
        self, given: dict[str, Any] | None, current: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Validated authentication with its secrets sealed.

        On update, a secret left empty under an unchanged kind keeps its stored value.
        """
        auth = dict(given or {"kind": "none"})
        keeping = current is not None and auth.get("kind") == current.get("kind")
        canonical = validate_authentication(
            auth, allow_http_loopback=self.allow_http_loopback, require_secrets=not keeping
        )
        missing: list[InvalidField] = []
        for key in SECRET_FIELDS:
            if key not in canonical:
                continue
            if canonical[key]:
                canonical[key] = self.seal(canonical[key])
            elif current is not None and current.get(key):
                canonical[key] = current[key]  # already sealed
            else:
                field = f"authentication.{canonical['kind']}.{key}"
                missing.append(InvalidField(field, "is required"))
        raise_all(missing)
        return canonical
