"""How a subscription reads, in a terminal and in the console: its fields as key/value
lines, triggers in the ``--trigger`` SPEC syntax with catalogue names (what the CLI's
``list`` prints can be pasted back into ``create``), authentication by kind with its secrets
as set or not set.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from webhooks.v1.common_pb2 import Authentication, RetryPolicy, Webhook, WebhookType
from webhooks.v1.subscriptions_pb2 import Subscription
from webhooks_catalogue.authentication import AUTH_FIELDS, SECRET_FIELDS
from webhooks_catalogue.proto import catalogue_message
from webhooks_client.protos import message_dict, timestamp_text
from webhooks_client.triggers import CatalogueNames, format_trigger

# The authentication kinds by the names the clients show and take (the CLI's --auth):
# name -> (Authentication oneof field, the fields that kind takes)
AUTH_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    choice: (oneof, AUTH_FIELDS[oneof])
    for choice, oneof in (
        ("none", "none"),
        ("basic", "basic"),
        ("oauth2-token", "oauth2_access_token"),
        ("oauth2-client-credentials", "oauth2_client_credentials"),
        ("oauth2-password", "oauth2_password"),
    )
}
AUTH_CHOICE_OF = {oneof: choice for choice, (oneof, _) in AUTH_KINDS.items()}


@cache
def catalogue_names() -> CatalogueNames:
    return CatalogueNames.from_catalogue(catalogue_message())


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def triggers_text(sub: Subscription, separator: str = " | ") -> str:
    return separator.join(format_trigger(t, catalogue_names()) for t in sub.triggers)


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
    fields.append(("rate limit", rate_limit_text(webhook.rate_limit_per_second)))
    return fields


def rate_limit_text(per_second: int) -> str:
    return f"{per_second} per second" if per_second else "none"


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
