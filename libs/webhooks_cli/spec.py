"""From command-line flags to a ``SubscriptionSpec``: whole for create, and for update the
current subscription with the given flags applied plus the ``update_mask`` they imply.

Update sends whole top-level fields (the mask names ``webhook``, not ``webhook.url``), so
the flags are applied on top of what the service returned: ``--url`` alone keeps the
type and SOAP settings, ``--password`` alone keeps the username. Secrets come back masked
(empty); the API keeps a stored secret when an unchanged kind is sent with it empty.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from google.protobuf.field_mask_pb2 import FieldMask

from webhooks.v1.common_pb2 import (
    Authentication,
    SoapParameter,
    SoapVersion,
    Webhook,
    WebhookType,
)
from webhooks.v1.subscriptions_pb2 import Subscription, SubscriptionSpec
from webhooks_catalogue.authentication import ALL_AUTH_FIELDS, AUTH_FIELDS, SECRET_FIELDS
from webhooks_cli.errors import UsageError
from webhooks_cli.triggers import TriggerSyntaxError, parse_trigger

WEBHOOK_TYPES = {"rest": WebhookType.WEBHOOK_TYPE_REST, "soap": WebhookType.WEBHOOK_TYPE_SOAP}
SOAP_VERSIONS = {"1.1": SoapVersion.SOAP_VERSION_1_1, "1.2": SoapVersion.SOAP_VERSION_1_2}
# --auth choice -> (Authentication oneof field, the flags that kind takes)
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
WEBHOOK_FLAGS = (
    *("type", "url", "certificate", "soap_operation", "soap_namespace", "soap_action"),
    *("soap_version", "soap_param", "wsdl_url", "wsdl_file"),
)
MASK_ORDER = (
    *("name", "entity", "triggers", "include_complete_data"),
    *("webhook", "authentication", "retry_policy"),
)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def read_text_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        raise UsageError(f"{what} {path}: {err.strerror or err}") from None


def read_secrets(args: argparse.Namespace, read_stdin: Callable[[], str]) -> dict[str, str]:
    """The secret flags given: a value, ``-`` for stdin, or ``--<name>-file PATH``."""
    secrets: dict[str, str] = {}
    stdin_used_by = ""
    for name in SECRET_FIELDS:
        value: str | None = getattr(args, name, None)
        path: str | None = getattr(args, name + "_file", None)
        if value is not None and path is not None:
            raise UsageError(f"{flag(name)} and {flag(name)}-file: give one of them")
        if path is not None:
            value = read_text_file(path, flag(name) + "-file").rstrip("\r\n")
        elif value == "-":
            if stdin_used_by:
                raise UsageError(f"{stdin_used_by} and {flag(name)} both read stdin: use a file")
            stdin_used_by = flag(name)
            value = read_stdin().rstrip("\r\n")
        if value is not None:
            secrets[name] = value
    return secrets


def _apply_webhook(webhook: Webhook, args: argparse.Namespace) -> bool:
    given = [name for name in WEBHOOK_FLAGS if getattr(args, name, None) is not None]
    if not given:
        return False
    if args.type is not None:
        webhook.type = WEBHOOK_TYPES[args.type]
        if args.type == "rest":
            webhook.ClearField("soap")
    if args.url is not None:
        webhook.url = args.url
    if args.certificate is not None:
        webhook.client_certificate_id = args.certificate  # "" removes it
    soap = webhook.soap
    if args.soap_operation is not None:
        soap.operation = args.soap_operation
    if args.soap_namespace is not None:
        soap.namespace = args.soap_namespace
    if args.soap_action is not None:
        soap.soap_action = args.soap_action
    if args.soap_version is not None:
        soap.version = SOAP_VERSIONS[args.soap_version]
    if args.soap_param is not None:
        del soap.parameters[:]
        for item in args.soap_param:
            name, eq, value = item.partition("=")
            if not eq or not name.strip():
                raise UsageError(f"--soap-param {item!r}: expected NAME=VALUE")
            soap.parameters.append(SoapParameter(name=name.strip(), value=value))
    # A WSDL URL and a WSDL document are alternatives: giving one drops the other.
    if args.wsdl_url is not None:
        soap.wsdl_url, soap.wsdl_document = args.wsdl_url, ""
    if args.wsdl_file is not None:
        soap.wsdl_url, soap.wsdl_document = "", read_text_file(args.wsdl_file, "--wsdl-file")
    return True


def _apply_authentication(
    auth: Authentication, args: argparse.Namespace, secrets: dict[str, str]
) -> bool:
    values = {name: getattr(args, name, None) for name in ALL_AUTH_FIELDS}
    values.update(secrets)
    given = {name: value for name, value in values.items() if value is not None}
    if args.auth is None and not given:
        return False
    if args.auth is not None:
        auth.Clear()
        kind = args.auth
    else:
        current = auth.WhichOneof("kind")
        kind = next((k for k, (field, _) in AUTH_KINDS.items() if field == current), "none")
        if kind == "none":
            raise UsageError(f"{flag(next(iter(given)))} needs --auth (basic, oauth2-...)")
    oneof, accepted = AUTH_KINDS[kind]
    for name in given:
        if name not in accepted:
            raise UsageError(f"{flag(name)} is not used by --auth {kind}")
    part = getattr(auth, oneof)
    part.SetInParent()
    for name, value in given.items():
        setattr(part, name, value)
    return True


def apply_flags(
    spec: SubscriptionSpec, args: argparse.Namespace, read_stdin: Callable[[], str]
) -> FieldMask:
    """Apply every flag given to ``spec``; the mask names the top-level fields touched."""
    touched: set[str] = set()
    if args.name is not None:
        spec.name = args.name
        touched.add("name")
    if args.entity is not None:
        spec.entity = args.entity
        touched.add("entity")
    if args.trigger is not None:
        del spec.triggers[:]
        for text in args.trigger:
            try:
                spec.triggers.append(parse_trigger(text))
            except TriggerSyntaxError as err:
                raise UsageError(f"--trigger {text!r}: {err}") from None
        touched.add("triggers")
    if args.complete_data is not None:
        spec.include_complete_data = args.complete_data
        touched.add("include_complete_data")
    if _apply_webhook(spec.webhook, args):
        touched.add("webhook")
    if _apply_authentication(spec.authentication, args, read_secrets(args, read_stdin)):
        touched.add("authentication")
    if args.retries is not None:
        spec.retry_policy.retries = args.retries
        touched.add("retry_policy")
    if args.interval is not None:
        spec.retry_policy.interval_seconds = args.interval
        touched.add("retry_policy")
    return FieldMask(paths=[path for path in MASK_ORDER if path in touched])


def create_spec(
    args: argparse.Namespace, read_stdin: Callable[[], str] = sys.stdin.read
) -> SubscriptionSpec:
    spec = SubscriptionSpec()
    if args.type is None:
        soap_given = any(
            getattr(args, name, None) is not None
            for name in WEBHOOK_FLAGS
            if name.startswith(("soap_", "wsdl_"))
        )
        args.type = "soap" if soap_given else "rest"
    apply_flags(spec, args, read_stdin)
    return spec


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


def update_spec(
    current: Subscription,
    args: argparse.Namespace,
    read_stdin: Callable[[], str] = sys.stdin.read,
) -> tuple[SubscriptionSpec, FieldMask]:
    spec = spec_of(current)
    mask = apply_flags(spec, args, read_stdin)
    if not mask.paths:
        raise UsageError("nothing to update: give at least one flag (see --help)")
    return spec, mask
