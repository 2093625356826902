"""How subscriptions, history entries and certificates read in a terminal.

Triggers are shown in the ``--trigger`` SPEC syntax with catalogue names, so what ``list``
prints can be pasted back into ``create``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from webhooks.v1.common_pb2 import Authentication, RetryPolicy, Webhook, WebhookType
from webhooks.v1.failures_pb2 import SubscriptionFailureCount
from webhooks.v1.subscriptions_pb2 import (
    Certificate,
    Subscription,
    SubscriptionHistoryEntry,
)
from webhooks_catalogue.authentication import SECRET_FIELDS
from webhooks_catalogue.proto import catalogue_message
from webhooks_cli.output import message_dict, timestamp_text
from webhooks_cli.spec import AUTH_KINDS
from webhooks_cli.triggers import CatalogueNames, format_trigger

SUBSCRIPTION_HEADERS = (
    *("NAME", "ENTITY", "TRIGGERS", "URL"),
    *("CREATED", "MODIFIED", "ACTIVE", "FAILURES", "ID"),
)
HISTORY_HEADERS = ("VERSION", "TIME", "EVENT", "ACTOR", "CHANGES")
CERTIFICATE_HEADERS = ("ID", "NAME", "SUBJECT", "EXPIRES")


@cache
def catalogue_names() -> CatalogueNames:
    return CatalogueNames.from_catalogue(catalogue_message())


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def triggers_text(sub: Subscription, separator: str = " | ") -> str:
    return separator.join(format_trigger(t, catalogue_names()) for t in sub.triggers)


def failures_text(count: SubscriptionFailureCount | None) -> str:
    """The guide's warning and number: failed attempts (and the events they belong to);
    "-" when the failures service could not say."""
    if count is None:
        return "-"
    if count.failed_attempts == 0:
        return "0"
    events = "event" if count.failed_events == 1 else "events"
    return f"! {count.failed_attempts} ({count.failed_events} {events})"


def subscription_row(
    sub: Subscription, failures: SubscriptionFailureCount | None = None
) -> tuple[str, ...]:
    return (
        sub.name,
        sub.entity,
        triggers_text(sub),
        sub.webhook.url,
        timestamp_text(sub.created_at),
        timestamp_text(sub.updated_at),
        yes_no(sub.active),
        failures_text(failures),
        sub.id,
    )


def webhook_fields(webhook: Webhook) -> list[tuple[str, str]]:
    kind = WebhookType.Name(webhook.type).removeprefix("WEBHOOK_TYPE_")
    fields = [
        ("webhook", f"{kind} {webhook.method} {webhook.url}".replace("  ", " ")),
        ("format", f"{webhook.format} ({webhook.content_type})"),
    ]
    if webhook.type == WebhookType.WEBHOOK_TYPE_SOAP:
        soap = webhook.soap
        soap_text = json.dumps(message_dict(soap), sort_keys=True)
        fields.append(("soap", soap_text))
    if webhook.client_certificate_id:
        fields.append(("certificate", webhook.client_certificate_id))
    return fields


def authentication_text(auth: Authentication) -> str:
    oneof = auth.WhichOneof("kind")
    kind = next((k for k, (field, _) in AUTH_KINDS.items() if field == oneof), "none")
    if oneof is None or kind == "none":
        return "none"
    part = getattr(auth, oneof)
    shown = [kind]
    for name, _ in part.ListFields():
        if name.name.endswith("_set"):
            continue
        shown.append(f"{name.name}={getattr(part, name.name)}")
    for secret in SECRET_FIELDS:
        if secret + "_set" in part.DESCRIPTOR.fields_by_name:
            shown.append(f"{secret}={'(set)' if getattr(part, secret + '_set') else '(not set)'}")
    return " ".join(shown)


def subscription_fields(sub: Subscription) -> list[tuple[str, str]]:
    retry = sub.retry_policy
    return [
        ("id", sub.id),
        ("name", sub.name),
        ("tenant", sub.tenant),
        ("entity", sub.entity),
        ("triggers", triggers_text(sub, "\n")),
        ("complete data", yes_no(sub.include_complete_data)),
        *webhook_fields(sub.webhook),
        ("authentication", authentication_text(sub.authentication)),
        ("retries", retries_text(retry)),
        ("active", yes_no(sub.active)),
        ("created", timestamp_text(sub.created_at)),
        ("modified", timestamp_text(sub.updated_at)),
        ("version", str(sub.version)),
        ("signing secret", signing_secret_text(sub)),
    ]


def retries_text(retry: RetryPolicy) -> str:
    # Unset fields mean the service's defaults (3 retries, 300 s apart).
    retries = str(retry.retries) if retry.HasField("retries") else "default"
    interval = f"{retry.interval_seconds} s" if retry.HasField("interval_seconds") else "default"
    return f"{retries}, interval {interval}"


def signing_secret_text(sub: Subscription) -> str:
    info = sub.signing_secret
    if not info.set:
        return "not set"
    text = "set"
    if info.HasField("rotated_at"):
        text += f", rotated {timestamp_text(info.rotated_at)}"
    if info.HasField("previous_valid_until"):
        text += f"; previous secret valid until {timestamp_text(info.previous_valid_until)}"
    return text


def whole_numbers(value: Any) -> Any:
    """``changes`` is a Struct, where every number is a float: show 300, not 300.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def history_row(entry: SubscriptionHistoryEntry) -> tuple[str, ...]:
    changes = whole_numbers(message_dict(entry)["changes"])
    return (
        str(entry.version),
        timestamp_text(entry.occurred_at),
        entry.event_type,
        entry.actor,
        json.dumps(changes, sort_keys=True, separators=(",", ":")),
    )


def certificate_row(cert: Certificate) -> tuple[str, ...]:
    return (cert.id, cert.name, cert.subject, timestamp_text(cert.not_after))
