"""The Failed Events view: the filtered list (newest first, paged) and redelivery of one
or of all filtered events after a confirmation that states how many (a dry run counts
them). One failed event's details: failure_detail_views."""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from webhooks.v1.common_pb2 import Catalogue
from webhooks.v1.failures_pb2 import (
    FailedEventFilter,
    FailedEventState,
    ListFailedEventsRequest,
    RedeliverFailedEventsRequest,
)
from webhooks.v1.subscriptions_pb2 import ListSubscriptionsRequest, SubscriptionOrder
from webhooks_catalogue import limits
from webhooks_client.failure_text import STATES, channel_text, state_text
from webhooks_client.protos import timestamp, timestamp_text
from webhooks_console.display import Pages, trigger_name
from webhooks_console.pages import Route, add_routes, call, catalogue
from webhooks_console.values import BadValue, choice, date_time, whole_number

PAGE_SIZE = 25
FILTERS = (
    *("subscription", "entity", "trigger", "channel", "subchannel"),
    *("error_code", "retries", "state", "since", "until", "message"),
)
SUBSCRIPTION_CHOICES = 1000  # names in the webhook filter


class FilterProblem(BadValue):
    """A filter value that cannot be used; the message names the filter."""


def filter_of(args: MultiDict[str, str]) -> FailedEventFilter:
    """The filter inputs as a FailedEventFilter (the service validates the values it can
    take; what cannot even be put into the request is refused here)."""
    try:
        return _filter_of(args)
    except BadValue as problem:
        raise FilterProblem(str(problem)) from None


def _filter_of(args: MultiDict[str, str]) -> FailedEventFilter:
    found = FailedEventFilter(
        entity=args.get("entity", "").strip(),
        trigger=args.get("trigger", "").strip(),
        subchannel=args.get("subchannel", "").strip(),
        message_contains=args.get("message", "").strip(),
    )
    if args.get("subscription"):
        found.subscription_ids.append(args["subscription"])
    codes = [c.strip() for c in args.get("error_code", "").split(",") if c.strip()]
    found.error_codes.extend(codes)
    state = args.get("state", "")
    if state:
        found.states.append(STATES[choice("state", state, STATES)])
    retries = args.get("retries", "").strip()
    if retries:
        found.min_retry_attempts = whole_number(
            "retry attempts", retries, 0, limits.FILTER_RETRY_ATTEMPTS
        )
    channel = args.get("channel", "").strip()
    if channel:
        found.channel = whole_number("channel", channel)
    since = date_time("from", args.get("since", ""))
    until = date_time("to", args.get("until", ""))
    if since is not None:
        found.since.CopyFrom(timestamp(since))
    if until is not None:
        found.until.CopyFrom(timestamp(until))
    return found


def filter_values(args: MultiDict[str, str]) -> dict[str, Any]:
    return {name: args.get(name, "") for name in FILTERS if args.get(name)}


def subscription_names() -> list[tuple[str, str]]:
    response = call(
        "subscriptions",
        "ListSubscriptions",
        ListSubscriptionsRequest(
            page_size=SUBSCRIPTION_CHOICES, order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC
        ),
    )
    return [(s.id, s.name) for s in response.subscriptions]


def event_row(event: Any, cat: Catalogue) -> dict[str, Any]:
    return {
        "event": event,
        "trigger": trigger_name(event.trigger, event.entity, cat),
        "last_attempt": timestamp_text(event.last_attempt_at),
        "channel": channel_text(event),
        "state": state_text(event.state),
    }


def failed_events() -> ResponseReturnValue:
    values = filter_values(request.args)
    problem = ""
    events: list[dict[str, Any]] = []
    next_page = ""
    page_token = request.args.get("page", "")
    try:
        event_filter = filter_of(request.args)
    except FilterProblem as err:
        problem = str(err)
    else:
        response = call(
            "failures",
            "ListFailedEvents",
            ListFailedEventsRequest(
                filter=event_filter,
                page_size=PAGE_SIZE,
                page_token=page_token,
            ),
        )
        cat = catalogue()
        events = [event_row(e, cat) for e in response.failed_events]
        next_page = response.next_page_token
    page = render_template(
        "failed_events.html",
        events=events,
        values=values,
        problem=problem,
        pages=Pages.of(page_token, request.args.getlist("back"), next_page),
        subscriptions=subscription_names(),
        catalogue=catalogue(),
        states=list(STATES),
    )
    return page, 400 if problem else 200


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
        counted = call("failures", "RedeliverFailedEvents", request_)
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
