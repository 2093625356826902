"""The Subscriptions application: load, command, save, return.

Commands arrive as plain dicts shaped like the API's ``SubscriptionSpec``; ``spec_checks``
turns them into canonical values by the rules module, naming every bad field at once, and
seals secrets before they reach an aggregate; every save wakes the listing projector and
the outbox relay.
"""

from __future__ import annotations

import random
import secrets as random_secrets
import time
from base64 import b64encode
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from webhooks_catalogue import limits
from webhooks_secrets import SecretBox
from webhooks_subscriptions.certificates import parse_certificate
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.certificate import ClientCertificate
from webhooks_subscriptions.domain.errors import (
    CertificateInUse,
    DomainError,
    InvalidField,
    NameTaken,
    NotFound,
    StaleVersion,
)
from webhooks_subscriptions.domain.names import SubscriptionName
from webhooks_subscriptions.domain.subscription import Subscription, Trace
from webhooks_subscriptions.domain.update_mask import UPDATABLE_FIELDS, validate_update_mask
from webhooks_subscriptions.published import subscription_state
from webhooks_subscriptions.spec_checks import SpecChecks

# Concurrent changes without an expected version are re-applied to the newer state. A few
# immediate retries are not enough when several writers race on one subscription: each
# loser waits a random, growing moment (capped) so the racers spread out.
CONFLICT_RETRIES = 30
CONFLICT_BACKOFF_SECONDS = 0.002
CONFLICT_BACKOFF_MAX_SECONDS = 0.05


@dataclass(frozen=True)
class Policy:
    allow_http_loopback: bool = False
    signing_secret_overlap_seconds: int = 24 * 3600
    min_retry_interval_seconds: int = rules.MIN_RETRY_INTERVAL_SECONDS


@dataclass(frozen=True)
class Caller:
    """Who runs a command, for the audit trail, and the trace it belongs to."""

    tenant: str
    actor: str
    trace: Trace


def new_signing_secret() -> str:
    # Standard Webhooks secret format: "whsec_" and base64 of 24 to 64 random bytes.
    return "whsec_" + b64encode(random_secrets.token_bytes(32)).decode()


def _check_state_size(subscription: Subscription) -> None:
    """Before anything is saved: the state the relay will publish fits one NATS message."""
    rules.check_state_size(subscription_state(subscription).ByteSize())


class Subscriptions(Application[UUID]):
    name = "Subscriptions"

    def __init__(self, env: dict[str, str], secrets: SecretBox, policy: Policy) -> None:
        super().__init__(env)
        self.secrets = secrets
        self.policy = policy
        # Called after each save with the last notification id it recorded.
        self.saved_listeners: list[Callable[[int], None]] = []
        self.certificate_users: Callable[[str, str], list[str]] = lambda _tenant, _id: []
        self.checks = SpecChecks(
            seal=secrets.seal,
            load_certificate=self._load_certificate,
            allow_http_loopback=policy.allow_http_loopback,
            min_retry_interval_seconds=policy.min_retry_interval_seconds,
        )

    # Subscriptions

    def create_subscription(
        self, caller: Caller, spec: dict[str, Any], active: bool = True
    ) -> tuple[Subscription, str]:
        valid = self.checks.valid(caller.tenant, spec, UPDATABLE_FIELDS, None)
        name = valid["name"]
        signing_secret = new_signing_secret()
        subscription = Subscription(
            tenant=caller.tenant,
            name=name,
            entity=valid["triggers"][0],
            triggers=valid["triggers"][1],
            include_complete_data=bool(spec.get("include_complete_data", False)),
            webhook=valid["webhook"],
            authentication=valid["authentication"],
            retry_policy=valid["retry_policy"],
            active=active,
            signing_secret=self.secrets.seal(signing_secret),
            actor=caller.actor,
            trace=caller.trace,
        )
        _check_state_size(subscription)
        reservation = SubscriptionName(caller.tenant, rules.normalise_name(name), subscription.id)
        try:
            self._save(subscription, reservation)
        except IntegrityError:
            raise NameTaken(name) from None
        return subscription, signing_secret

    def get_subscription(self, tenant: str, subscription_id: str) -> Subscription:
        subscription = self._load(tenant, subscription_id)
        if subscription.deleted:
            raise NotFound("subscription", subscription_id)
        return subscription

    def update_subscription(
        self,
        caller: Caller,
        subscription_id: str,
        spec: dict[str, Any],
        mask: Iterable[str],
        expected_version: int | None = None,
    ) -> Subscription:
        fields = validate_update_mask(mask)

        def change(subscription: Subscription) -> list[Aggregate]:
            reservations = self._apply_update(caller, subscription, spec, fields)
            _check_state_size(subscription)
            return reservations

        return self._command(caller.tenant, subscription_id, expected_version, change)

    def set_active(
        self, caller: Caller, subscription_id: str, active: bool, expected_version: int | None
    ) -> Subscription:
        def change(subscription: Subscription) -> list[Aggregate]:
            subscription.set_active(active, caller.actor, caller.trace)
            return []

        return self._command(caller.tenant, subscription_id, expected_version, change)

    def disable_by_platform(
        self, tenant: str, subscription_id: str, reason: str, decided_at: datetime
    ) -> bool:
        """True when the verdict deactivated the webhook; False when it was inactive,
        deleted or re-enabled since (replicas applying the same verdict: one wins)."""
        disabled = []

        def change(subscription: Subscription) -> list[Aggregate]:
            disabled.append(subscription.disable_by_platform(reason, decided_at))
            return []

        try:
            self._command(tenant, subscription_id, None, change)
        except NotFound:
            return False
        return disabled[-1]

    def delete_subscription(
        self, caller: Caller, subscription_id: str, expected_version: int | None
    ) -> Subscription:
        def change(subscription: Subscription) -> list[Aggregate]:
            subscription.delete(caller.actor, caller.trace)
            return []

        return self._command(caller.tenant, subscription_id, expected_version, change)

    def rotate_signing_secret(
        self, caller: Caller, subscription_id: str, overlap_seconds: int | None
    ) -> tuple[Subscription, str]:
        overlap = self.policy.signing_secret_overlap_seconds
        if overlap_seconds is not None:
            if not 0 <= overlap_seconds <= 30 * 86400:
                raise InvalidField("overlap_seconds", "must be between 0 and 2592000 (30 days)")
            overlap = overlap_seconds
        secret = new_signing_secret()

        def change(subscription: Subscription) -> list[Aggregate]:
            valid_until = datetime.now(UTC) + timedelta(seconds=overlap)
            subscription.rotate_signing_secret(
                self.secrets.seal(secret), valid_until, caller.actor, caller.trace
            )
            return []

        return self._command(caller.tenant, subscription_id, None, change), secret

    def history(self, tenant: str, subscription_id: str) -> list[Any]:
        """Every domain event of the subscription, deleted or not: the audit trail."""
        self._load(tenant, subscription_id)
        return list(self.events.get(self._uuid(subscription_id)))

    # Certificates

    def upload_certificate(
        self, caller: Caller, name: str, certificate_pem: str, private_key_pem: str
    ) -> ClientCertificate:
        name = rules.validate_name(name)
        parsed = parse_certificate(certificate_pem, private_key_pem)
        if parsed.not_after <= datetime.now(UTC):
            raise InvalidField("certificate_pem", f"expired on {parsed.not_after.isoformat()}")
        certificate = ClientCertificate(
            tenant=caller.tenant,
            name=name,
            certificate_pem=parsed.certificate_pem,
            private_key=self.secrets.seal(parsed.private_key_pem),
            subject=parsed.subject,
            issuer=parsed.issuer,
            not_before=parsed.not_before,
            not_after=parsed.not_after,
            fingerprint_sha256=parsed.fingerprint_sha256,
            actor=caller.actor,
            trace=caller.trace,
        )
        self._save(certificate)
        return certificate

    def delete_certificate(self, caller: Caller, certificate_id: str) -> None:
        certificate = self._load_certificate(caller.tenant, certificate_id)
        users = self.certificate_users(caller.tenant, certificate_id)
        if users:
            raise CertificateInUse(certificate_id, users)
        certificate.delete(caller.actor, caller.trace)
        self._save(certificate)

    # Internals

    def _command(
        self,
        tenant: str,
        subscription_id: str,
        expected_version: int | None,
        change: Callable[[Subscription], list[Aggregate]],
    ) -> Subscription:
        for attempt in range(CONFLICT_RETRIES):
            subscription = self.get_subscription(tenant, subscription_id)
            if expected_version is not None and subscription.version != expected_version:
                raise StaleVersion(expected_version, subscription.version)
            others = change(subscription)
            try:
                self._save(subscription, *others)
            except IntegrityError:
                for other in others:
                    if isinstance(other, SubscriptionName) and self._exists(other.id):
                        raise NameTaken(subscription.name) from None
                if expected_version is not None:
                    actual = self.get_subscription(tenant, subscription_id).version
                    raise StaleVersion(expected_version, actual) from None
                ceiling = CONFLICT_BACKOFF_SECONDS * 2**attempt
                time.sleep(random.uniform(0, min(ceiling, CONFLICT_BACKOFF_MAX_SECONDS)))
                continue
            return subscription
        raise DomainError("the subscription is changing too fast; try again")

    def _apply_update(
        self, caller: Caller, subscription: Subscription, spec: dict[str, Any], fields: list[str]
    ) -> list[Aggregate]:
        valid = self.checks.valid(caller.tenant, spec, fields, subscription)
        reservations: list[Aggregate] = []
        actor, trace = caller.actor, caller.trace
        if "name" in valid:
            reservation = self._reservation_for(caller.tenant, valid["name"], subscription.id)
            if reservation is not None:
                reservations.append(reservation)
            subscription.rename(valid["name"], actor, trace)
        if "triggers" in valid:
            entity, triggers = valid["triggers"]
            subscription.change_triggers(entity, triggers, actor, trace)
        if "include_complete_data" in fields:
            include = bool(spec.get("include_complete_data", False))
            subscription.set_complete_data(include, actor, trace)
        if "webhook" in valid:
            subscription.change_endpoint(valid["webhook"], actor, trace)
        if "authentication" in valid:
            subscription.change_authentication(valid["authentication"], actor, trace)
        if "retry_policy" in valid:
            subscription.change_retry_policy(valid["retry_policy"], actor, trace)
        return reservations

    def _reservation_for(
        self, tenant: str, name: str, subscription_id: UUID
    ) -> SubscriptionName | None:
        """A new reservation for the name, or None when this subscription already holds it."""
        normalised = rules.normalise_name(name)
        try:
            existing: Aggregate = self.repository.get(
                SubscriptionName.create_id(tenant, normalised)
            )
        except AggregateNotFoundError:
            return SubscriptionName(tenant, normalised, subscription_id)
        if (
            not isinstance(existing, SubscriptionName)
            or existing.subscription_id != subscription_id
        ):
            raise NameTaken(name)
        return None

    def _save(self, *aggregates: Aggregate) -> None:
        recordings = self.save(*aggregates)
        last = max((recording.notification.id for recording in recordings), default=0)
        for listener in self.saved_listeners:
            listener(last)

    def _load(self, tenant: str, subscription_id: str) -> Subscription:
        try:
            subscription: Aggregate = self.repository.get(self._uuid(subscription_id))
        except AggregateNotFoundError:
            raise NotFound("subscription", subscription_id) from None
        # Another tenant's subscription is reported as absent, so ids reveal nothing.
        if not isinstance(subscription, Subscription) or subscription.tenant != tenant:
            raise NotFound("subscription", subscription_id)
        return subscription

    def _load_certificate(self, tenant: str, certificate_id: str) -> ClientCertificate:
        try:
            certificate: Aggregate = self.repository.get(self._uuid(certificate_id, "certificate"))
        except AggregateNotFoundError:
            raise NotFound("certificate", certificate_id) from None
        if (
            not isinstance(certificate, ClientCertificate)
            or certificate.tenant != tenant
            or certificate.deleted
        ):
            raise NotFound("certificate", certificate_id)
        return certificate

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    @staticmethod
    def _uuid(value: str, kind: str = "subscription") -> UUID:
        # Bounded first: a not-found error quotes the id back.
        if len(value) > limits.ID_LENGTH:
            raise InvalidField("id", f"must be at most {limits.ID_LENGTH} characters, a UUID")
        try:
            return UUID(value)
        except (ValueError, TypeError):
            raise InvalidField("id", f"not a {kind} id (a UUID)") from None
