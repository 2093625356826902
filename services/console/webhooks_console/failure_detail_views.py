"""Failed Event Details: one failed event's Overview, Payload and Trial History."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue

from webhooks.v1.failures_pb2 import FailedEventState, GetFailedEventRequest
from webhooks_client.failure_text import (
    HISTORY_HEADERS,
    history_row,
    overview_fields,
    payload_text,
)
from webhooks_console.pages import Route, add_routes, call
from webhooks_console.values import choice

TABS = ("overview", "payload", "history")


def failed_event(delivery_id: str) -> ResponseReturnValue:
    tab = choice("tab", request.args.get("tab", "overview"), TABS)
    details = call("failures", "GetFailedEvent", GetFailedEventRequest(delivery_id=delivery_id))
    overview = details.overview
    return render_template(
        "failed_event.html",
        overview=overview,
        fields=overview_fields(overview),
        payload=payload_text(details.payload, details.payload_content_type),
        content_type=details.payload_content_type or "unknown content type",
        history_headers=HISTORY_HEADERS,
        history=[history_row(record) for record in details.trial_history],
        tab=tab,
        redeliverable=overview.state != FailedEventState.FAILED_EVENT_STATE_RETRYING,
    )


ROUTES = (Route("/failed-events/<delivery_id>", failed_event),)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
