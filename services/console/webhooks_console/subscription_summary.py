"""A subscription's Details as a summary a customer reads: labelled fields in groups (the
webhook and what it listens to, where deliveries go, how they are sent), every value in
words: the entity and triggers by their display names, SOAP settings as fields, the
authentication as a phrase without its secrets, the client certificate by its name, the
retry policy as "3 retries, 5 minutes apart", times as ``<time>`` elements. Only the
subscription's id is shown as an id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from webhooks.v1.common_pb2 import (
    Authentication,
    RetryPolicy,
    SoapVersion,
    Webhook,
    WebhookType,
)
from webhooks.v1.subscriptions_pb2 import Certificate, Subscription
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES
from webhooks_catalogue.vocabulary import entity_label
from webhooks_client.health_text import DISABLED, health_name, health_state
from webhooks_console.display import time_html, url_breaks
from webhooks_console.forms import AUTH_CHOICES
from webhooks_console.secret_views import duration_text

Value = str | Markup
WEBHOOK_TYPES = {WebhookType.WEBHOOK_TYPE_REST: "REST", WebhookType.WEBHOOK_TYPE_SOAP: "SOAP"}
SOAP_VERSIONS = {SoapVersion.SOAP_VERSION_1_2: "1.2"}  # anything else: 1.1, the default
AUTH_NAMES = dict(AUTH_CHOICES)


@dataclass(frozen=True)
class Field:
    label: str
    value: Value
    css: str = ""  # "id" for an id, "triggers" for the trigger lines


@dataclass(frozen=True)
class Section:
    key: str  # the HTML id
    title: str
    fields: tuple[Field, ...]


def status_text(sub: Subscription) -> str:
    """ "Active · healthy", "Inactive", "Disabled by the platform"."""
    if health_state(sub.health) == DISABLED:
        return "Disabled by the platform"
    if not sub.active:
        return "Inactive"
    return f"Active · {health_name(sub.health)}"


def retries_text(policy: RetryPolicy) -> str:
    """ "3 retries, 5 minutes apart"; unset parts are the service's defaults."""
    retries = policy.retries if policy.HasField("retries") else DEFAULT_RETRIES
    interval = (
        policy.interval_seconds if policy.HasField("interval_seconds") else DEFAULT_INTERVAL_SECONDS
    )
    if retries == 0:
        return "No retries: one attempt only"
    plural = "retry" if retries == 1 else "retries"
    return f"{retries} {plural}, {duration_text(interval)} apart"


def authentication_text(auth: Authentication) -> str:
    """The kind and what identifies it, never a secret: "Basic, user erp"."""
    kind = auth.WhichOneof("kind")
    if kind is None or kind == "none":
        return "None"
    name = AUTH_NAMES.get(kind, kind)
    part = getattr(auth, kind)
    facts: list[str] = []
    if kind == "oauth2_access_token":
        facts.append(f"header prefix {part.header_prefix or 'Bearer'}")
    if kind in ("oauth2_client_credentials", "oauth2_password"):
        facts.append(f"token URL {part.token_url}")
        facts.append(f"client ID {part.client_id}")
        if part.scope:
            facts.append(f"scope {part.scope}")
    if kind in ("basic", "oauth2_password"):
        facts.append(f"user {part.username}")
    return ", ".join([name, *facts])


def certificate_text(certificate_id: str, certificates: Mapping[str, Certificate] | None) -> Value:
    """By its name, subject and expiry; None: the certificates could not be listed."""
    if certificates is None:
        return "Chosen (its name cannot be read right now)"
    found = certificates.get(certificate_id)
    if found is None:
        return "A certificate no longer uploaded: deliveries fail until another is chosen"
    expiry = time_html(found.not_after, "")
    if not expiry:
        return found.name
    return Markup("{} — {}, expires {}").format(found.name, found.subject, expiry)


def soap_fields(webhook: Webhook) -> list[Field]:
    soap = webhook.soap
    unset = "from the WSDL" if soap.wsdl_url or soap.wsdl_document else "—"
    fields = [
        Field("Operation", soap.operation or unset),
        Field("Namespace", soap.namespace or unset),
        Field("SOAPAction", soap.soap_action or unset),
        Field("SOAP version", SOAP_VERSIONS.get(soap.version, "1.1")),
    ]
    if soap.parameters:
        lines = "\n".join(f"{p.name} = {p.value}" for p in soap.parameters)
        fields.append(Field("Parameters", lines))
    if soap.wsdl_url:
        fields.append(Field("WSDL URL", url_breaks(soap.wsdl_url)))
    if soap.wsdl_document:
        fields.append(Field("WSDL document", f"given ({len(soap.wsdl_document):,} characters)"))
    return fields


def endpoint_fields(
    webhook: Webhook, certificates: Mapping[str, Certificate] | None
) -> list[Field]:
    kind = WEBHOOK_TYPES.get(webhook.type, "REST")
    fields = [
        Field("Type", kind),
        Field("URL", url_breaks(webhook.url)),
        Field("Sent as", f"{webhook.method or 'POST'}, {webhook.format} ({webhook.content_type})"),
    ]
    if webhook.type == WebhookType.WEBHOOK_TYPE_SOAP:
        fields.extend(soap_fields(webhook))
    if webhook.client_certificate_id:
        cert = certificate_text(webhook.client_certificate_id, certificates)
        fields.append(Field("Client certificate", cert))
    per_second = webhook.rate_limit_per_second
    fields.append(Field("Rate limit", f"{per_second} per second" if per_second else "No limit"))
    return fields


def signing_secret_text(sub: Subscription) -> Value:
    info = sub.signing_secret
    if not info.set:
        return "Not set"
    text: Value = "Set"
    if info.HasField("rotated_at"):
        text = Markup("Set, rotated {}").format(time_html(info.rotated_at))
    if info.HasField("previous_valid_until"):
        until = time_html(info.previous_valid_until)
        text = Markup("{}; the previous secret works until {}").format(text, until)
    return text


def summary(
    sub: Subscription, trigger_count: int, certificates: Sequence[Certificate] | None
) -> tuple[Section, ...]:
    """The Details page's groups of fields (the triggers' lines are the template's);
    ``certificates``: None when they could not be listed."""
    by_id = None if certificates is None else {c.id: c for c in certificates}
    webhook = (
        Field("Name", sub.name),
        Field("Status", status_text(sub)),
        Field("Entity", entity_label(sub.entity)),
        Field("Triggers" if trigger_count != 1 else "Trigger", "", "triggers"),
        Field("Complete data", "Included" if sub.include_complete_data else "Not included"),
    )
    delivery = (
        Field("Authentication", authentication_text(sub.authentication)),
        Field("Retries", retries_text(sub.retry_policy)),
        Field("Signing secret", signing_secret_text(sub)),
        Field("Created", time_html(sub.created_at)),
        Field("Modified", time_html(sub.updated_at)),
        Field("Version", str(sub.version)),
        Field("Subscription ID", sub.id, "id"),
    )
    return (
        Section("summary-webhook", "Webhook", webhook),
        Section("summary-endpoint", "Endpoint", tuple(endpoint_fields(sub.webhook, by_id))),
        Section("summary-delivery", "Delivery", delivery),
    )
