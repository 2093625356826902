"""A subscription's Details: a summary a customer reads (``subscription_summary``) and its
History (``subscription_history``): each entry a sentence with who and when, and what it
changed in the form's words."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from flask import Flask, render_template
from flask.typing import ResponseReturnValue

from webhooks.v1.subscriptions_pb2 import (
    Certificate,
    GetSubscriptionHistoryRequest,
    ListCertificatesRequest,
)
from webhooks_client.health_text import DISABLED_BY_PLATFORM
from webhooks_console.display import trigger_text
from webhooks_console.health_banners import webhook_health
from webhooks_console.pages import Route, add_routes, call, catalogue
from webhooks_console.subscription_history import change_lines, history_rows, what_happened
from webhooks_console.subscription_summary import summary
from webhooks_console.subscription_views import failure_counts, get_subscription

__all__ = ["change_lines", "register", "what_happened"]


def disabled_at(entries: list[dict[str, Any]]) -> str:
    """When the platform last disabled the webhook: its newest DisabledByPlatform entry."""
    return next((e["at"] for e in entries if e["event"] == DISABLED_BY_PLATFORM), "")


def certificates() -> Sequence[Certificate] | None:
    """The organisation's client certificates (names for ids); None when the service
    cannot say (the page is still shown)."""
    try:
        found = call("subscriptions", "ListCertificates", ListCertificatesRequest())
    except grpc.RpcError:
        return None
    return list(found.certificates)


def subscription_details(subscription_id: str) -> ResponseReturnValue:
    sub = get_subscription(subscription_id)
    history = call(
        "subscriptions",
        "GetSubscriptionHistory",
        GetSubscriptionHistoryRequest(id=subscription_id),
    )
    counts = failure_counts([sub.id])
    cat = catalogue()
    uploaded = certificates()
    names = {c.id: c.name for c in uploaded or ()}
    entries = history_rows(history.entries, sub.entity, cat, names)
    return render_template(
        "subscription_details.html",
        sub=sub,
        sections=summary(sub, len(sub.triggers), uploaded),
        triggers=[trigger_text(t, sub.entity, cat) for t in sub.triggers],
        entries=entries,
        failures=(counts or {}).get(sub.id),
        health=webhook_health(sub.health, datetime.now(UTC), disabled_at(entries)),
    )


ROUTES = (Route("/webhooks/<subscription_id>", subscription_details),)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
