"""A subscription's History for a person: each entry a sentence with who and when, and
what it changed as lines labelled as the form labels its fields ("Webhook URL", "SOAP
WSDL URL"), values in words (triggers as the Webhooks list writes them, the certificate
by its name, secrets only as set or not). An entry lists only what it changed: the
service records a changed part whole (the webhook, the authentication), so each entry is
compared with the state before it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError
from markupsafe import Markup

from webhooks.v1.common_pb2 import Catalogue, TriggerSpec
from webhooks_catalogue.authentication import SECRET_FIELDS
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES
from webhooks_catalogue.vocabulary import entity_label, words
from webhooks_client.health_text import DISABLED_BY_PLATFORM, disabled_text
from webhooks_client.protos import message_dict, timestamp
from webhooks_client.subscription_text import whole_numbers
from webhooks_console.display import time_html, trigger_text
from webhooks_console.form_messages import LABELS as FORM_LABELS
from webhooks_console.forms import AUTH_CHOICES, FIELD_LABELS
from webhooks_console.secret_views import duration_text

Value = str | Markup
Line = tuple[str, Value]
MASK = "***"  # a secret as the service masks it in the history
# Recorded but no field of the form: not shown.
HIDDEN = frozenset({"tenant", "previous_signing_secret"})
# The form's fields, in the form's order: an entry's lines follow it, under the labels the
# form and its error messages use (form_messages.LABELS, their one home).
_FORM_FIELDS = (
    *("name", "entity", "triggers", "include_complete_data", "webhook.type", "webhook.url"),
    *("webhook.soap", "webhook.soap.operation", "webhook.soap.namespace"),
    *("webhook.soap.soap_action", "webhook.soap.version", "webhook.soap.parameters"),
    *("webhook.soap.wsdl_url", "webhook.soap.wsdl_document"),
    *("webhook.client_certificate_id", "webhook.rate_limit_per_second"),
)
LABELS: Mapping[str, str] = {
    **{path: FORM_LABELS[path] for path in _FORM_FIELDS},
    "authentication.kind": FORM_LABELS["authentication"],
    **{f"authentication.{name}": label for name, label in FIELD_LABELS.items()},
    "retry_policy.retries": FORM_LABELS["retry_policy.retries"],
    "retry_policy.interval_seconds": FORM_LABELS["retry_policy.interval_seconds"],
    # Recorded by the platform, not typed in the form.
    "active": "Active",
    "reason": "Reason",
    "signing_secret": "Signing secret",
    "previous_valid_until": "Previous secret valid until",
}
ORDER = {path: index for index, path in enumerate(LABELS)}
AUTH_NAMES = dict(AUTH_CHOICES)
SECRET_PATHS = frozenset({"signing_secret", *(f"authentication.{n}" for n in SECRET_FIELDS)})
EMPTY: tuple[Any, ...] = (None, "", [], {})


def label_of(path: str) -> str:
    """The form's label of a recorded field; an unknown one in words ("Some field")."""
    known = LABELS.get(path)
    if known is not None:
        return known
    last = path.rsplit(".", 1)[-1]
    return last.replace("_", " ").capitalize() if "_" in last else words(last).capitalize()


def stored_trigger(item: Any) -> Any:
    """A trigger as the history stores it, in TriggerSpec's JSON names: its status changes
    are kept as ``{"from", "to"}``."""
    if not isinstance(item, dict):
        return item
    changes = item.get("status_changes")
    if not isinstance(changes, list):
        return item
    renamed = [
        {"from_status": c.get("from", 0), "to_status": c.get("to", 0)}
        if isinstance(c, dict) and ("from" in c or "to" in c)
        else c
        for c in changes
    ]
    return {**item, "status_changes": renamed}


def trigger_lines(value: list[Any], entity: str, cat: Catalogue) -> list[Line]:
    lines: list[Line] = []
    for index, item in enumerate(value, start=1):
        try:
            trigger = ParseDict(stored_trigger(item), TriggerSpec(), ignore_unknown_fields=True)
            text = trigger_text(trigger, entity, cat).text
        except (ParseError, TypeError):
            text = json.dumps(item, sort_keys=True)
        lines.append((f"Trigger {index}", text))
    return lines


def _iso_time(value: Any) -> Value:
    try:
        return time_html(timestamp(datetime.fromisoformat(str(value))))
    except ValueError:
        return str(value)


def _retries(value: Any) -> str:
    if value is None:
        return f"default ({DEFAULT_RETRIES})"
    return str(value)


def _interval(value: Any) -> str:
    if value is None:
        return f"default ({duration_text(DEFAULT_INTERVAL_SECONDS)})"
    return duration_text(int(value)) if isinstance(value, int) else str(value)


def _parameters(value: Any) -> str:
    if not isinstance(value, list) or not value:
        return "none"
    return ", ".join(
        f"{p.get('name', '')} = {p.get('value', '')}" if isinstance(p, dict) else str(p)
        for p in value
    )


def _document(value: Any) -> str:
    return f"given ({len(str(value)):,} characters)" if value else "none"


def _rate(value: Any) -> str:
    return f"{value} per second" if value else "no limit"


VALUES: Mapping[str, Callable[[Any], Value]] = {
    "entity": lambda v: entity_label(str(v)),
    "include_complete_data": lambda v: "included" if v else "not included",
    "webhook.rate_limit_per_second": _rate,
    "webhook.soap.parameters": _parameters,
    "webhook.soap.wsdl_document": _document,
    "authentication.kind": lambda v: AUTH_NAMES.get(str(v), words(str(v))),
    "retry_policy.retries": _retries,
    "retry_policy.interval_seconds": _interval,
    "previous_valid_until": _iso_time,
}


def value_text(path: str, value: Any, certificates: Mapping[str, str]) -> Value:
    """A recorded value in words: secrets as set or not, a certificate by its name."""
    if value == MASK or path in SECRET_PATHS:
        return "set (not shown)" if value else "not set"
    if path == "webhook.client_certificate_id":
        return certificates.get(str(value), "a certificate no longer uploaded") if value else "none"
    shown = VALUES.get(path)
    if shown is not None:
        return shown(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(json.dumps(v) if isinstance(v, dict | list) else str(v) for v in value)
    return "—" if value is None or value == "" else str(value)


def flatten(changes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"webhook": {"url": u}}`` as ``{"webhook.url": u}``: lists stay whole."""
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        path = f"{prefix}{key}"
        if path in HIDDEN:
            continue
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def change_lines(
    changes: Mapping[str, Any],
    entity: str,
    cat: Catalogue,
    certificates: Mapping[str, str] | None = None,
) -> list[Line]:
    """``changes`` as labelled lines (the form's labels, values in words), in the order
    the service recorded them."""
    lines: list[Line] = []
    entity = str(changes.get("entity") or entity)
    flat = flatten(changes)
    for path in sorted(flat, key=lambda p: ORDER.get(p, len(ORDER))):
        value = flat[path]
        if path == "triggers" and isinstance(value, list):
            lines.extend(trigger_lines(value, entity, cat))
        elif path == "webhook.soap" and value is None:
            continue  # a REST webhook: its type says so
        else:
            lines.append((label_of(path), value_text(path, value, certificates or {})))
    return lines


def what_happened(event: str, changes: dict[str, Any], previous_url: str | None) -> str:
    """A history entry as the start of a sentence ("Renamed to “X”"); the view adds who
    and when. ``previous_url``: the webhook URL before this entry (None: not known)."""
    if event == "Created":
        return f"Created as “{changes.get('name', '')}”" if changes.get("name") else "Created"
    if event == "Renamed":
        return f"Renamed to “{changes.get('name', '')}”"
    if event == "EndpointChanged":
        url = (changes.get("webhook") or {}).get("url")
        if url and url != previous_url:
            return f"Webhook URL changed to {url}"
        return "Webhook settings changed"
    sentence = SENTENCES.get(event)
    if sentence is not None:
        return sentence
    if event == "CompleteDataChanged":
        included = changes.get("include_complete_data")
        return "Complete data included" if included else "Complete data no longer included"
    if event == DISABLED_BY_PLATFORM:
        return disabled_text(str(changes.get("reason") or ""))
    return words(event)


SENTENCES: Mapping[str, str] = {
    "AuthChanged": "Authentication changed (secrets not shown)",
    "TriggersChanged": "Triggers changed",
    "RetryPolicyChanged": "Retries changed",
    "SigningSecretRotated": "Signing secret rotated (secrets not shown)",
    "Activated": "Activated",
    "Deactivated": "Deactivated",
    "Deleted": "Deleted",
}


def changed_only(flat: dict[str, Any], before: dict[str, Any], created: bool) -> dict[str, Any]:
    """What an entry changed: on creation every value given; later, what differs."""
    if created:
        return {p: v for p, v in flat.items() if not any(v == e for e in EMPTY)}
    return {p: v for p, v in flat.items() if p not in before or before[p] != v}


def history_rows(
    entries: Any, entity: str, cat: Catalogue, certificates: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Newest first, each a sentence with who and when, and what it changed as lines."""
    rows: list[dict[str, Any]] = []
    url: str | None = None
    state: dict[str, Any] = {}
    for entry in entries:  # oldest first: the state before each change is known
        changes = whole_numbers(message_dict(entry)["changes"])
        happened = what_happened(entry.event_type, changes, url)
        url = (changes.get("webhook") or {}).get("url", url)
        flat = flatten(changes)
        shown = changed_only(flat, state, entry.event_type == "Created")
        state.update(flat)
        at_entity = str(state.get("entity") or entity)
        lines = change_lines(unflatten(shown), at_entity, cat, certificates)
        if entry.event_type == DISABLED_BY_PLATFORM:
            lines = []  # its sentence gives the reason
        # "Disabled by the platform: ..." names its actor already.
        named = entry.actor and entry.event_type != DISABLED_BY_PLATFORM
        rows.append(
            {
                "version": entry.version,
                "event": entry.event_type,
                "happened": happened,
                "actor": entry.actor if named else "",
                "at": time_html(entry.occurred_at),
                "changes": lines,
            }
        )
    return rows[::-1]


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, last = path.split(".")
        place = nested
        for key in parents:
            place = place.setdefault(key, {})
        place[last] = value
    return nested
