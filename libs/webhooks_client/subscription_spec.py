"""A ``SubscriptionSpec`` from plain values: whole for create, and for update the current
subscription with the given values applied plus the ``update_mask`` they imply.

A value left ``None`` is not given. Update sends whole top-level fields (the mask names
``webhook``, not ``webhook.url``), so values are applied on top of what the service
returned: a URL alone keeps the type and SOAP settings, a password alone keeps the
username. Secrets come back masked (empty); the API keeps a stored secret when an
unchanged kind is sent with it empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.field_mask_pb2 import FieldMask

from webhooks.v1.common_pb2 import (
    Authentication,
    SoapParameter,
    SoapVersion,
    TriggerSpec,
    Webhook,
    WebhookType,
)
from webhooks.v1.subscriptions_pb2 import Subscription, SubscriptionSpec
from webhooks_catalogue.authentication import ALL_AUTH_FIELDS, AUTH_FIELDS, SECRET_FIELDS

WEBHOOK_TYPES = {"rest": WebhookType.WEBHOOK_TYPE_REST, "soap": WebhookType.WEBHOOK_TYPE_SOAP}
SOAP_VERSIONS = {"1.1": SoapVersion.SOAP_VERSION_1_1, "1.2": SoapVersion.SOAP_VERSION_1_2}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MASK_ORDER = (
    *("name", "entity", "triggers", "include_complete_data"),
    *("webhook", "authentication", "retry_policy"),
)


class SpecProblem(ValueError):
    """A value no request can carry; ``field`` is its path in the spec."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class AuthKindNeeded(SpecProblem):
    """Authentication values given with no kind, and the subscription has none."""

    def __init__(self, name: str) -> None:
        super().__init__(f"authentication.{name}", f"{name} needs an authentication kind")
        self.name = name


class AuthFieldNotTaken(SpecProblem):
    """A value the authentication kind has no field for."""

    def __init__(self, name: str, kind: str) -> None:
        super().__init__(f"authentication.{kind}.{name}", f"{name} is not used by {kind}")
        self.name, self.kind = name, kind


@dataclass(frozen=True)
class WebhookValues:
    type: str | None = None  # a key of WEBHOOK_TYPES; "rest" drops the SOAP settings
    url: str | None = None
    certificate: str | None = None  # a client certificate id; "" removes it
    soap_operation: str | None = None
    soap_namespace: str | None = None
    soap_action: str | None = None
    soap_version: str | None = None  # a key of SOAP_VERSIONS
    soap_parameters: Sequence[tuple[str, str]] | None = None  # (name, value), replacing all
    # Alternatives: giving one drops the other.
    wsdl_url: str | None = None
    wsdl_document: str | None = None
    rate_limit_per_second: int | None = None  # deliveries per second; 0 removes the limit

    def given(self) -> bool:
        return any(value is not None for value in vars(self).values())


@dataclass(frozen=True)
class SpecValues:
    name: str | None = None
    entity: str | None = None
    triggers: Sequence[TriggerSpec] | None = None
    include_complete_data: bool | None = None
    webhook: WebhookValues = field(default_factory=WebhookValues)
    # An Authentication oneof field (AUTH_FIELDS); None keeps the current kind.
    auth_kind: str | None = None
    auth_values: Mapping[str, str | None] = field(default_factory=dict)  # field -> value
    retries: int | None = None
    interval_seconds: int | None = None


def apply_webhook(webhook: Webhook, values: WebhookValues) -> bool:
    if not values.given():
        return False
    if values.type is not None:
        webhook.type = WEBHOOK_TYPES[values.type]
        if values.type == "rest":
            webhook.ClearField("soap")
    if values.url is not None:
        webhook.url = values.url
    if values.certificate is not None:
        webhook.client_certificate_id = values.certificate
    if values.rate_limit_per_second is not None:
        if not INT32_MIN <= values.rate_limit_per_second <= INT32_MAX:
            # The service says the real bound; a number no int32 holds cannot reach it.
            raise SpecProblem(
                "webhook.rate_limit_per_second", "must be a whole number of deliveries per second"
            )
        webhook.rate_limit_per_second = values.rate_limit_per_second
    soap = webhook.soap
    if values.soap_operation is not None:
        soap.operation = values.soap_operation
    if values.soap_namespace is not None:
        soap.namespace = values.soap_namespace
    if values.soap_action is not None:
        soap.soap_action = values.soap_action
    if values.soap_version is not None:
        soap.version = SOAP_VERSIONS[values.soap_version]
    if values.soap_parameters is not None:
        del soap.parameters[:]
        for name, value in values.soap_parameters:
            if not name.strip():
                pair = f"{name}={value}"
                raise SpecProblem(
                    "webhook.soap.parameters", f"SOAP parameter {pair!r}: expected NAME=VALUE"
                )
            soap.parameters.append(SoapParameter(name=name.strip(), value=value))
    if values.wsdl_url is not None:
        soap.wsdl_url, soap.wsdl_document = values.wsdl_url, ""
    if values.wsdl_document is not None:
        soap.wsdl_url, soap.wsdl_document = "", values.wsdl_document
    return True


def apply_authentication(
    auth: Authentication, kind: str | None, values: Mapping[str, str | None]
) -> bool:
    given = {name: values[name] for name in ALL_AUTH_FIELDS if values.get(name) is not None}
    if kind is None and not given:
        return False
    if kind is not None:
        auth.Clear()
    else:
        kind = auth.WhichOneof("kind") or "none"
        if kind == "none":
            raise AuthKindNeeded(next(iter(given)))
    for name in given:
        if name not in AUTH_FIELDS[kind]:
            raise AuthFieldNotTaken(name, kind)
    part = getattr(auth, kind)
    part.SetInParent()
    for name, value in given.items():
        setattr(part, name, value)
    return True


def apply_values(spec: SubscriptionSpec, values: SpecValues) -> FieldMask:
    """Apply every value given to ``spec``; the mask names the top-level fields touched."""
    touched: set[str] = set()
    if values.name is not None:
        spec.name = values.name
        touched.add("name")
    if values.entity is not None:
        spec.entity = values.entity
        touched.add("entity")
    if values.triggers is not None:
        del spec.triggers[:]
        spec.triggers.extend(values.triggers)
        touched.add("triggers")
    if values.include_complete_data is not None:
        spec.include_complete_data = values.include_complete_data
        touched.add("include_complete_data")
    if apply_webhook(spec.webhook, values.webhook):
        touched.add("webhook")
    if apply_authentication(spec.authentication, values.auth_kind, values.auth_values):
        touched.add("authentication")
    if values.retries is not None:
        spec.retry_policy.retries = values.retries
        touched.add("retry_policy")
    if values.interval_seconds is not None:
        spec.retry_policy.interval_seconds = values.interval_seconds
        touched.add("retry_policy")
    return FieldMask(paths=[path for path in MASK_ORDER if path in touched])


def spec_of(current: Subscription) -> SubscriptionSpec:
    """What a caller would write to get ``current``, without output-only fields."""
    spec = SubscriptionSpec(
        name=current.name,
        entity=current.entity,
        triggers=current.triggers,
        include_complete_data=current.include_complete_data,
        webhook=current.webhook,
        authentication=current.authentication,
        retry_policy=current.retry_policy,
    )
    for output_only in ("method", "format", "content_type"):
        spec.webhook.ClearField(output_only)
    kind = spec.authentication.WhichOneof("kind")
    if kind is not None:
        part = getattr(spec.authentication, kind)
        for secret in SECRET_FIELDS:
            if secret + "_set" in part.DESCRIPTOR.fields_by_name:
                part.ClearField(secret + "_set")
    return spec
