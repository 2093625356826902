"""From command-line flags to a ``SubscriptionSpec``: the flags become plain values
(triggers parsed, secrets and files read) and ``webhooks_client.subscription_spec`` builds
the spec from them, whole for create, and for update the current subscription with the
values applied plus the ``update_mask`` they imply. The console builds its requests from
its form with the same module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from google.protobuf.field_mask_pb2 import FieldMask

from webhooks.v1.common_pb2 import TriggerSpec
from webhooks.v1.subscriptions_pb2 import Subscription, SubscriptionSpec
from webhooks_catalogue.authentication import ALL_AUTH_FIELDS, SECRET_FIELDS
from webhooks_cli.errors import UsageError
from webhooks_client.subscription_spec import (
    AuthFieldNotTaken,
    AuthKindNeeded,
    SpecProblem,
    SpecValues,
    WebhookValues,
    apply_values,
    spec_of,
)
from webhooks_client.subscription_text import AUTH_CHOICE_OF, AUTH_KINDS
from webhooks_client.triggers import TriggerSyntaxError, parse_trigger

WEBHOOK_FLAGS = (
    *("type", "url", "certificate", "soap_operation", "soap_namespace", "soap_action"),
    *("soap_version", "soap_param", "wsdl_url", "wsdl_file"),
)

# A spec field a problem names -> the flag that set it.
FLAG_OF_FIELD = {
    "webhook.rate_limit_per_second": "--rate-limit",
    "webhook.soap.parameters": "--soap-param",
}


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


def _soap_parameters(items: list[str] | None) -> list[tuple[str, str]] | None:
    if items is None:
        return None
    parameters = []
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--soap-param {item!r}: expected NAME=VALUE")
        parameters.append((name.strip(), value))
    return parameters


def _triggers(texts: list[str] | None) -> list[TriggerSpec] | None:
    if texts is None:
        return None
    triggers = []
    for text in texts:
        try:
            triggers.append(parse_trigger(text))
        except TriggerSyntaxError as err:
            raise UsageError(f"--trigger {text!r}: {err}") from None
    return triggers


def values_of(args: argparse.Namespace, read_stdin: Callable[[], str]) -> SpecValues:
    """The flags given as plain values: triggers parsed, files and secrets read."""
    triggers = _triggers(args.trigger)
    soap_parameters = _soap_parameters(getattr(args, "soap_param", None))
    wsdl_file: str | None = getattr(args, "wsdl_file", None)
    webhook = WebhookValues(
        type=args.type,
        url=args.url,
        certificate=args.certificate,
        soap_operation=args.soap_operation,
        soap_namespace=args.soap_namespace,
        soap_action=args.soap_action,
        soap_version=args.soap_version,
        soap_parameters=soap_parameters,
        wsdl_url=args.wsdl_url,
        wsdl_document=None if wsdl_file is None else read_text_file(wsdl_file, "--wsdl-file"),
        rate_limit_per_second=getattr(args, "rate_limit", None),
    )
    auth_values = {name: getattr(args, name, None) for name in ALL_AUTH_FIELDS}
    auth_values.update(read_secrets(args, read_stdin))
    return SpecValues(
        name=args.name,
        entity=args.entity,
        triggers=triggers,
        include_complete_data=args.complete_data,
        webhook=webhook,
        auth_kind=None if args.auth is None else AUTH_KINDS[args.auth][0],
        auth_values=auth_values,
        retries=args.retries,
        interval_seconds=args.interval,
    )


def apply_flags(
    spec: SubscriptionSpec, args: argparse.Namespace, read_stdin: Callable[[], str]
) -> FieldMask:
    """Apply every flag given to ``spec``; the mask names the top-level fields touched."""
    values = values_of(args, read_stdin)
    try:
        return apply_values(spec, values)
    except AuthKindNeeded as err:
        raise UsageError(f"{flag(err.name)} needs --auth (basic, oauth2-...)") from None
    except AuthFieldNotTaken as err:
        raise UsageError(
            f"{flag(err.name)} is not used by --auth {AUTH_CHOICE_OF[err.kind]}"
        ) from None
    except SpecProblem as err:
        raise UsageError(f"{FLAG_OF_FIELD.get(err.field, err.field)}: {err.message}") from None


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
