"""Failed Event Details: one failed event's Overview (webhook, trigger, error and time
first, then the event in words), its Payload and its Trial History (each attempt with its
time, result in words, error, and its response and request body to expand and copy).
Ids (delivery, event) are shown as ids; nothing else is an internal name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from flask import Flask, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from webhooks.v1.failures_pb2 import FailedEvent, FailedEventState, GetFailedEventRequest
from webhooks.v1.messages_pb2 import AttemptOutcome, AttemptRecord, FailureClass
from webhooks_catalogue.failure_classes import failure_name
from webhooks_catalogue.vocabulary import channel_label, entity_label, failure_class_label
from webhooks_client.failure_text import payload_text
from webhooks_console.display import time_html, trigger_name
from webhooks_console.pages import Route, add_routes, call, catalogue
from webhooks_console.values import choice

TABS = ("overview", "payload", "history")
STATE_LABELS: dict[int, str] = {
    FailedEventState.FAILED_EVENT_STATE_RETRYING: "Retrying",
    FailedEventState.FAILED_EVENT_STATE_FAILED: "Failed",
    FailedEventState.FAILED_EVENT_STATE_RECOVERED: "Recovered",
    FailedEventState.FAILED_EVENT_STATE_REDELIVERED: "Sent again, waiting for its attempt",
}
STATE_CSS: dict[int, str] = {
    FailedEventState.FAILED_EVENT_STATE_RETRYING: "state-retrying",
    FailedEventState.FAILED_EVENT_STATE_FAILED: "state-failed",
    FailedEventState.FAILED_EVENT_STATE_RECOVERED: "state-recovered",
    FailedEventState.FAILED_EVENT_STATE_REDELIVERED: "state-retrying",
}

Value = str | Markup
HTTP_STATUS = FailureClass.FAILURE_CLASS_HTTP_STATUS


def http_text(status: int) -> str:
    """``HTTP 500 Internal Server Error``."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def error_text(failure_class: int, status_code: int) -> str:
    """The failure in words: "HTTP 500 Internal Server Error", "SOAP fault (HTTP 500)",
    "Timed out"; "" when nothing failed."""
    name = failure_name(failure_class)
    if failure_class in (
        FailureClass.FAILURE_CLASS_HTTP_STATUS,
        FailureClass.FAILURE_CLASS_UNSPECIFIED,
    ):
        return http_text(status_code) if status_code else ""
    label = failure_class_label(name)
    return f"{label} ({http_text(status_code)})" if status_code else label


def state_text(state: int) -> str:
    return STATE_LABELS.get(state, "Unknown")


def channel_text(event: FailedEvent | AttemptRecord) -> str:
    return channel_label(event.channel) if event.HasField("channel") else "—"


@dataclass(frozen=True)
class Fact:
    label: str
    value: Value
    css: str = ""


def lead_facts(event: FailedEvent) -> list[Fact]:
    """What a person asks first: which webhook, on what, what went wrong, when."""
    link = url_for("subscription_details", subscription_id=event.subscription_id)
    webhook = Markup('<a href="{}" id="webhook-link">{}</a>').format(link, event.subscription_name)
    error = error_text(event.failure_class, event.status_code) or event.error_code
    message = message_text(event.error_message, error)
    return [
        Fact("Webhook", webhook),
        Fact("Trigger", trigger_name(event.trigger, event.entity, catalogue())),
        Fact("Error", error or "—", "error"),
        *([Fact("Message", message)] if message else []),
        Fact("Last attempt", time_html(event.last_attempt_at)),
        Fact("State", state_text(event.state), "state " + STATE_CSS.get(event.state, "")),
        Fact("Retries made", str(event.retry_attempts)),
    ]


def event_facts(event: FailedEvent) -> list[Fact]:
    return [
        Fact("Entity", entity_label(event.entity)),
        Fact("Channel", channel_text(event)),
        Fact("Subchannel", event.subchannel or "—"),
        Fact("Event ID", event.event_id, "id"),
        Fact("Delivery ID", event.delivery_id, "id"),
    ]


@dataclass(frozen=True)
class Attempt:
    """One row of the Trial History."""

    key: str  # unique on the page: the ids of its copy sources
    at: Markup
    attempt: str
    result: Value
    error: str
    message: str
    duration: str
    response: str
    request: str
    heading: str = ""  # a row that starts a series of attempts ("Sent again by …")


def result_text(record: AttemptRecord) -> Value:
    if record.outcome == AttemptOutcome.ATTEMPT_OUTCOME_SUCCEEDED:
        return "Delivered"
    if record.will_retry:
        when = time_html(record.next_attempt_at, "")
        return Markup("Failed — next attempt {}").format(
            Markup("at {}").format(when) if when else "scheduled"
        )
    if record.max_attempts and record.attempt >= record.max_attempts:
        return "Failed — no retries left"
    return "Failed"


def attempt_text(record: AttemptRecord) -> str:
    of = f" of {record.max_attempts}" if record.max_attempts else ""
    return f"{record.attempt}{of}"


def message_text(message: str, error: str) -> str:
    """The error message when it says more than the error in words ("HTTP 500" does not)."""
    return "" if not message or message.strip() in error else message


def attempts(records: Iterable[AttemptRecord]) -> list[Attempt]:
    """The Trial History in order, a marker row where someone asked to send it again."""
    rows: list[Attempt] = []
    for index, record in enumerate(records):
        key = f"a{index}"
        if record.outcome == AttemptOutcome.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED:
            who = record.requested_by or "someone"
            heading = f"Sent again by {who}"
            rows.append(
                Attempt(key, time_html(record.started_at), "", "", "", "", "", "", "", heading)
            )
            continue
        rows.append(
            Attempt(
                key=key,
                at=time_html(record.started_at),
                attempt=attempt_text(record),
                result=result_text(record),
                error=(error := error_text(record.failure_class, record.status_code)),
                message=message_text(record.error_message, error),
                duration=f"{record.duration_ms:,} ms",
                response=record.response_snippet.decode("utf-8", "replace"),
                request=record.request_body.decode("utf-8", "replace"),
            )
        )
    return rows


def failed_event(delivery_id: str) -> ResponseReturnValue:
    tab = choice("tab", request.args.get("tab", "overview"), TABS)
    details = call("failures", "GetFailedEvent", GetFailedEventRequest(delivery_id=delivery_id))
    overview = details.overview
    return render_template(
        "failed_event.html",
        overview=overview,
        lead=lead_facts(overview),
        facts=event_facts(overview),
        payload=payload_text(details.payload, details.payload_content_type),
        content_type=details.payload_content_type or "unknown content type",
        history=attempts(details.trial_history),
        tab=tab,
        redeliverable=overview.state != FailedEventState.FAILED_EVENT_STATE_RETRYING,
    )


ROUTES = (Route("/failed-events/<delivery_id>", failed_event),)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
