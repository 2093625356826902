"""The Subscription aggregate: one organisation's webhook subscription and its history.

Every change is a past-tense event carrying who made it (``actor``) and the trace context
of the command (``trace``), so the history is an exact audit trail and the outbox relay can
continue the command's trace. Secrets arrive here already sealed: the domain never sees
plaintext credentials and imports nothing but the event-sourcing library and its rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from webhooks_subscriptions.domain import rules

Trace = dict[str, str]
# The actor of the changes the platform makes itself (a disable after 410 Gone, ...).
PLATFORM = "platform"


class Subscription(Aggregate):
    @event("Created")
    def __init__(
        self,
        tenant: str,
        name: str,
        entity: str,
        triggers: list[dict[str, Any]],
        include_complete_data: bool,
        webhook: dict[str, Any],
        authentication: dict[str, Any],
        retry_policy: dict[str, Any],
        active: bool,
        signing_secret: str,
        actor: str,
        trace: Trace,
    ) -> None:
        self.tenant = tenant
        self.name = name
        self.entity = entity
        self.triggers = triggers
        self.include_complete_data = include_complete_data
        self.webhook = webhook
        self.authentication = authentication
        self.retry_policy = retry_policy
        self.active = active
        self.deleted = False
        self.signing_secret = signing_secret
        self.previous_signing_secret = ""
        self.previous_valid_until: datetime | None = None
        self.secret_rotated_at: datetime | None = None
        # Why the platform disabled it ("" unless it did), kept until it is activated again.
        self.disabled_reason = ""
        # Since when the platform's verdicts about its endpoint count: a verdict reached
        # before the last activation or endpoint change is about a past the owner has
        # already dealt with (re-enabled, or pointed somewhere else).
        self.health_reset_at: datetime = self.created_on

    # Commands: each emits an event only when something changes.

    def rename(self, name: str, actor: str, trace: Trace) -> None:
        if name != self.name:
            self._renamed(name=name, actor=actor, trace=trace)

    def change_triggers(
        self, entity: str, triggers: list[dict[str, Any]], actor: str, trace: Trace
    ) -> None:
        if (entity, triggers) != (self.entity, self.triggers):
            self._triggers_changed(entity=entity, triggers=triggers, actor=actor, trace=trace)

    def set_complete_data(self, include: bool, actor: str, trace: Trace) -> None:
        if include != self.include_complete_data:
            self._complete_data_changed(include_complete_data=include, actor=actor, trace=trace)

    def change_endpoint(self, webhook: dict[str, Any], actor: str, trace: Trace) -> None:
        if webhook != self.webhook:
            self._endpoint_changed(webhook=webhook, actor=actor, trace=trace)

    def change_authentication(
        self, authentication: dict[str, Any], actor: str, trace: Trace
    ) -> None:
        if authentication != self.authentication:
            self._auth_changed(authentication=authentication, actor=actor, trace=trace)

    def change_retry_policy(self, retry_policy: dict[str, Any], actor: str, trace: Trace) -> None:
        if retry_policy != self.retry_policy:
            self._retry_policy_changed(retry_policy=retry_policy, actor=actor, trace=trace)

    def set_active(self, active: bool, actor: str, trace: Trace) -> None:
        if active and not self.active:
            self._activated(actor=actor, trace=trace)
        elif not active and self.active:
            self._deactivated(actor=actor, trace=trace)

    def disable_by_platform(self, reason: str, decided_at: datetime) -> bool:
        """The platform's verdict that the endpoint is gone or dead. It applies once, and
        only to an active webhook whose health has not been reset since the verdict."""
        if not self.active or decided_at <= self.health_reset_at:
            return False
        self._disabled_by_platform(reason=reason, actor=PLATFORM, trace={})
        return True

    def delete(self, actor: str, trace: Trace) -> None:
        if not self.deleted:
            self._deleted(actor=actor, trace=trace)

    def rotate_signing_secret(
        self, new_secret: str, previous_valid_until: datetime, actor: str, trace: Trace
    ) -> None:
        self._signing_secret_rotated(
            signing_secret=new_secret,
            previous_signing_secret=self.signing_secret,
            previous_valid_until=previous_valid_until,
            actor=actor,
            trace=trace,
        )

    # Events: the decorated methods only apply what happened.

    @event("Renamed")
    def _renamed(self, name: str, actor: str, trace: Trace) -> None:
        self.name = name

    @event("TriggersChanged")
    def _triggers_changed(
        self, entity: str, triggers: list[dict[str, Any]], actor: str, trace: Trace
    ) -> None:
        self.entity = entity
        self.triggers = triggers

    @event("CompleteDataChanged")
    def _complete_data_changed(self, include_complete_data: bool, actor: str, trace: Trace) -> None:
        self.include_complete_data = include_complete_data

    class _ResetsHealth(Aggregate.Event):
        """An event after which the platform's earlier verdicts on the endpoint no longer
        count. Its own time is only known here (the decorated methods run before the
        aggregate's ``modified_on`` moves to it)."""

        def apply(self, aggregate: Any) -> None:
            aggregate.health_reset_at = self.timestamp

    class EndpointChanged(_ResetsHealth):
        webhook: dict[str, Any]
        actor: str
        trace: Trace

    class Activated(_ResetsHealth):
        actor: str
        trace: Trace

    @event(EndpointChanged)
    def _endpoint_changed(self, webhook: dict[str, Any], actor: str, trace: Trace) -> None:
        self.webhook = webhook

    @event("AuthChanged")
    def _auth_changed(self, authentication: dict[str, Any], actor: str, trace: Trace) -> None:
        self.authentication = authentication

    @event("RetryPolicyChanged")
    def _retry_policy_changed(self, retry_policy: dict[str, Any], actor: str, trace: Trace) -> None:
        self.retry_policy = retry_policy

    @event(Activated)
    def _activated(self, actor: str, trace: Trace) -> None:
        self.active = True
        self.disabled_reason = ""

    @event("DisabledByPlatform")
    def _disabled_by_platform(self, reason: str, actor: str, trace: Trace) -> None:
        self.active = False
        self.disabled_reason = reason

    @event("Deactivated")
    def _deactivated(self, actor: str, trace: Trace) -> None:
        self.active = False

    @event("Deleted")
    def _deleted(self, actor: str, trace: Trace) -> None:
        self.deleted = True
        self.active = False

    class SigningSecretRotated(Aggregate.Event):
        """A new signing secret. Its time is only known here, as for ``_ResetsHealth``:
        the decorated method runs before ``modified_on`` moves to this event's time."""

        signing_secret: str
        previous_signing_secret: str
        previous_valid_until: datetime
        actor: str
        trace: Trace

        def apply(self, aggregate: Any) -> None:
            aggregate.secret_rotated_at = self.timestamp

    @event(SigningSecretRotated)
    def _signing_secret_rotated(
        self,
        signing_secret: str,
        previous_signing_secret: str,
        previous_valid_until: datetime,
        actor: str,
        trace: Trace,
    ) -> None:
        self.signing_secret = signing_secret
        self.previous_signing_secret = previous_signing_secret
        self.previous_valid_until = previous_valid_until

    @property
    def certificate_id(self) -> str:
        return str(self.webhook.get("client_certificate_id") or "")

    def presentation(self) -> tuple[str, str, str]:
        return rules.webhook_presentation(self.webhook)
