"""The Failed Events view: the filtered list (newest first, paged) and redelivery of one
or of all filtered events after a confirmation that states how many (a dry run counts
them). One failed event's details: failure_detail_views. The filters: failure_filters."""

from __future__ import annotations

from typing import Any

import grpc
from flask import Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.common_pb2 import Catalogue
from webhooks.v1.failures_pb2 import (
    FailedEventState,
    ListFailedEventsRequest,
    RedeliverFailedEventsRequest,
)
from webhooks_catalogue.vocabulary import trigger_label
from webhooks_client.failure_text import STATES, channel_text, state_text
from webhooks_console.display import Pages, trigger_name
from webhooks_console.failure_detail_views import error_text
from webhooks_console.failure_filters import (
    FilterProblem,
    filter_of,
    filter_values,
    filter_zone,
    refused_problem,
    webhook_name,
)
from webhooks_console.pages import Route, add_routes, call, catalogue
from webhooks_console.times import local_time

PAGE_SIZE = 25


def event_row(event: Any, cat: Catalogue) -> dict[str, Any]:
    return {
        "event": event,
        "trigger": trigger_name(event.trigger, event.entity, cat),
        "last_attempt": local_time(event.last_attempt_at),
        "channel": channel_text(event),
        "state": state_text(event.state),
        "error": error_cell(event),
    }


def error_cell(event: Any) -> str:
    """The Error code column: the HTTP status, with the failure class beside it when the
    status alone does not say what failed ("500 · SOAP fault"), or the class alone."""
    label = error_text(event.failure_class, 0)
    if not label:
        return str(event.error_code)
    return f"{event.status_code} · {label}" if event.status_code else label


def failed_events() -> ResponseReturnValue:
    values = filter_values(request.args)
    problem: FilterProblem | None = None
    events: list[dict[str, Any]] = []
    next_page = ""
    page_token = request.args.get("page", "")
    try:
        event_filter = filter_of(request.args)
        response = call(
            "failures",
            "ListFailedEvents",
            ListFailedEventsRequest(
                filter=event_filter, page_size=PAGE_SIZE, page_token=page_token
            ),
        )
    except FilterProblem as err:
        problem = err
    except grpc.RpcError as error:
        problem = refused_problem(error, request.args)
        if problem is None:
            raise
    else:
        cat = catalogue()
        events = [event_row(e, cat) for e in response.failed_events]
        next_page = response.next_page_token
    page = render_template(
        "failed_events.html",
        events=events,
        values=values,
        webhook=picked_webhook(values),
        zone=filter_zone(values),
        problem=str(problem or ""),
        invalid=problem.field if problem else "",
        pages=Pages.of(page_token, request.args.getlist("back"), next_page),
        catalogue=catalogue(),
        trigger_names=trigger_names(),
        states=list(STATES),
    )
    return page, 400 if problem else 200


def picked_webhook(values: dict[str, Any]) -> str:
    """The name the picker's box shows: as typed, else the picked webhook's name."""
    if values.get("webhook"):
        return str(values["webhook"])
    if values.get("subscription"):
        return webhook_name(values["subscription"]) or "a webhook that was deleted"
    return ""


def trigger_names() -> list[str]:
    """Every trigger's display name once, in the catalogue's order (the filter's list)."""
    return list(
        dict.fromkeys(trigger_label(t.name) for e in catalogue().entities for t in e.triggers)
    )


def redeliver_one(delivery_id: str) -> ResponseReturnValue:
    response = call(
        "failures",
        "RedeliverFailedEvents",
        RedeliverFailedEventsRequest(delivery_id=delivery_id),
    )
    flash(f"Sent again: {response.redelivered} of {response.matched} failed event.")
    return redirect(url_for("failed_event", delivery_id=delivery_id))


def redeliver_filtered() -> ResponseReturnValue:
    source = request.args if request.method == "GET" else request.form
    values = filter_values(source)
    try:
        event_filter = filter_of(source)
    except FilterProblem as err:
        flash(str(err), "error")
        return redirect(url_for("failed_events", **values))
    if not event_filter.states:
        # As the CLI: without a state, only FAILED ones (retrying ones have an attempt
        # scheduled, recovered ones were delivered).
        event_filter.states.append(FailedEventState.FAILED_EVENT_STATE_FAILED)
    request_ = RedeliverFailedEventsRequest(filter=event_filter, dry_run=True)
    if request.method == "GET":
        try:
            counted = call("failures", "RedeliverFailedEvents", request_)
        except grpc.RpcError as error:
            if refused_problem(error, source) is None:
                raise
            # The list says what is wrong, above the filters as they were.
            return redirect(url_for("failed_events", **values))
        return render_template("confirm_redeliver.html", matched=counted.matched, values=values)
    expected = request.form.get("matched", "")
    request_.dry_run = False
    response = call("failures", "RedeliverFailedEvents", request_)
    flash(
        f"Sent again: {response.redelivered} of {response.matched} matching failed events"
        + (f" (you confirmed {expected})." if expected else ".")
    )
    return redirect(url_for("failed_events", **values))


ROUTES = (
    Route("/failed-events", failed_events),
    Route("/failed-events/<delivery_id>/redeliver", redeliver_one, ("POST",)),
    Route("/failed-events/redeliver", redeliver_filtered, ("GET", "POST")),
)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
