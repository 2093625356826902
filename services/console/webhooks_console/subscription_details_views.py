"""A subscription's Details with its History: each entry as a sentence with who and when,
and its changes as lines (triggers in words, secrets as the service masked them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from google.protobuf.json_format import ParseDict, ParseError

from webhooks.v1.common_pb2 import Catalogue, TriggerSpec
from webhooks.v1.subscriptions_pb2 import GetSubscriptionHistoryRequest
from webhooks_catalogue.vocabulary import words
from webhooks_client.health_text import DISABLED_BY_PLATFORM, disabled_text
from webhooks_client.protos import message_dict, timestamp_text
from webhooks_client.subscription_text import subscription_fields, whole_numbers
from webhooks_console.display import trigger_text
from webhooks_console.health_banners import webhook_health
from webhooks_console.pages import Route, add_routes, call, catalogue
from webhooks_console.subscription_views import failure_counts, get_subscription


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


def change_lines(changes: dict[str, Any], entity: str, cat: Catalogue) -> list[tuple[str, str]]:
    """A history entry's changes as (field, value) lines: nested fields dotted, triggers in
    words as the Webhooks list shows them, secrets as the service masked them."""
    lines: list[tuple[str, str]] = []
    entity = str(changes.get("entity") or entity)

    def walk(path: str, value: Any) -> None:
        if path == "triggers" and isinstance(value, list):
            for index, item in enumerate(value, start=1):
                try:
                    trigger = ParseDict(
                        stored_trigger(item), TriggerSpec(), ignore_unknown_fields=True
                    )
                    text = trigger_text(trigger, entity, cat).text
                except (ParseError, TypeError):
                    text = json.dumps(item, sort_keys=True)
                lines.append((f"trigger {index}", text))
        elif isinstance(value, dict):
            for key in sorted(value):
                walk(f"{path}.{key}" if path else key, value[key])
        elif isinstance(value, list):
            shown = [json.dumps(v) if isinstance(v, dict | list) else str(v) for v in value]
            lines.append((path, ", ".join(shown) or "—"))
        elif isinstance(value, bool):
            lines.append((path, "yes" if value else "no"))
        else:
            lines.append((path, "—" if value is None or value == "" else str(value)))

    walk("", changes)
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
    if event == "AuthChanged":
        return "Authentication changed (secrets not shown)"
    if event == "TriggersChanged":
        return "Triggers changed"
    if event == "CompleteDataChanged":
        included = changes.get("include_complete_data")
        return "Complete data included" if included else "Complete data no longer included"
    if event == "RetryPolicyChanged":
        return "Retries changed"
    if event == "SigningSecretRotated":
        return "Signing secret rotated (secrets not shown)"
    if event == DISABLED_BY_PLATFORM:
        return disabled_text(str(changes.get("reason") or ""))
    if event in ("Activated", "Deactivated", "Deleted"):
        return event
    return words(event)


def history_rows(entries: Any, entity: str, cat: Catalogue) -> list[dict[str, Any]]:
    """Newest first, each a sentence with who and when, and its changes as lines."""
    rows: list[dict[str, Any]] = []
    url: str | None = None
    for entry in entries:  # oldest first: the URL before each change is known
        changes = whole_numbers(message_dict(entry)["changes"])
        happened = what_happened(entry.event_type, changes, url)
        url = (changes.get("webhook") or {}).get("url", url)
        at = timestamp_text(entry.occurred_at)
        # "Disabled by the platform: ..." names its actor already.
        named = entry.actor and entry.event_type != DISABLED_BY_PLATFORM
        by = f" by {entry.actor}" if named else ""
        rows.append(
            {
                "version": entry.version,
                "event": entry.event_type,
                "sentence": f"{happened}{by} at {at}",
                "at": at,
                "actor": entry.actor,
                "changes": change_lines(changes, entity, cat),
            }
        )
    return rows[::-1]


def disabled_at(entries: list[dict[str, Any]]) -> str:
    """When the platform last disabled the webhook: its newest DisabledByPlatform entry."""
    return next((e["at"] for e in entries if e["event"] == DISABLED_BY_PLATFORM), "")


def subscription_details(subscription_id: str) -> ResponseReturnValue:
    sub = get_subscription(subscription_id)
    history = call(
        "subscriptions",
        "GetSubscriptionHistory",
        GetSubscriptionHistoryRequest(id=subscription_id),
    )
    counts = failure_counts([sub.id])
    cat = catalogue()
    entries = history_rows(history.entries, sub.entity, cat)
    return render_template(
        "subscription_details.html",
        sub=sub,
        fields=subscription_fields(sub),
        triggers=[trigger_text(t, sub.entity, cat) for t in sub.triggers],
        entries=entries,
        failures=(counts or {}).get(sub.id),
        health=webhook_health(sub.health, datetime.now(UTC), disabled_at(entries)),
    )


ROUTES = (Route("/webhooks/<subscription_id>", subscription_details),)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
