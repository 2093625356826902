"""The Webhooks list (with its Health column and banners) and the actions on one
subscription from it: the on/off toggle, Enable (a webhook the platform disabled), Send
test event and Delete (after a confirmation page)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.messages_pb2 import AttemptOutcome
from webhooks.v1.sender_pb2 import SendTestEventRequest
from webhooks.v1.subscriptions_pb2 import (
    DeleteSubscriptionRequest,
    GetSubscriptionRequest,
    ListSubscriptionsRequest,
    ListSubscriptionsResponse,
    SetSubscriptionActiveRequest,
    Subscription,
    SubscriptionOrder,
)
from webhooks_catalogue import limits
from webhooks_client.failure_text import class_text
from webhooks_client.health_text import health_summary
from webhooks_console.display import Pages, trigger_text
from webhooks_console.health_banners import banner_subscriptions, banners
from webhooks_console.pages import Route, add_routes, call, catalogue, local_path, remember_tenant
from webhooks_console.subscription_list import (
    SORTS,
    FailuresUnknown,
    ListRequest,
    list_page,
    total_text,
)
from webhooks_console.subscription_list import failure_counts as failure_counts  # details view
from webhooks_console.times import local_time

SEARCH_RESULTS = 20  # the webhook picker's suggestions


def get_subscription(subscription_id: str) -> Subscription:
    found: Subscription = call(
        "subscriptions", "GetSubscription", GetSubscriptionRequest(id=subscription_id)
    )
    return found


def list_request() -> ListRequest:
    return ListRequest(
        query=request.args.get("q", "").strip(),
        sort=request.args.get("sort", "") or "created",
        with_failures=request.args.get("failures") == "1",
        page_token=request.args.get("page", ""),
    )


def subscriptions() -> ResponseReturnValue:
    wanted = list_request()
    problem = ""
    try:
        page = list_page(wanted)
    except FailuresUnknown:
        problem = (
            "The failures service did not answer: the list cannot be filtered or sorted "
            "by failures right now. Showing every webhook, newest first."
        )
        page = list_page(ListRequest(query=wanted.query))
    items = page.subscriptions
    if items:
        remember_tenant(items[0].tenant)
    whole = wanted.whole and not page.next_token
    troubled, more = banner_subscriptions(ListSubscriptionsResponse(subscriptions=items), whole)
    cat = catalogue()
    now = datetime.now(UTC)
    rows = [
        {
            "sub": sub,
            "triggers": [trigger_text(t, sub.entity, cat) for t in sub.triggers],
            "created": local_time(sub.created_at),
            "modified": local_time(sub.updated_at),
            "failures": (page.counts or {}).get(sub.id),
            "health_summary": health_summary(sub.health, now),
        }
        for sub in items
    ]
    keep = {
        "q": wanted.query or None,
        "sort": wanted.sort if wanted.sort != "created" else None,
        "failures": "1" if wanted.with_failures else None,
    }
    return render_template(
        "subscriptions.html",
        rows=rows,
        query=wanted.query,
        wanted=wanted,
        keep=keep,
        sorts=SORTS,
        total_text=total_text(page.total, wanted),
        problem=problem,
        pages=Pages.of(wanted.page_token, request.args.getlist("back"), page.next_token),
        counts_known=page.counts is not None,
        banners=banners(troubled, now, more),
    )


def search_webhooks() -> ResponseReturnValue:
    """Up to SEARCH_RESULTS webhooks whose name contains ``q``, by name, as JSON: the
    Failed Events page's webhook picker asks as the user types."""
    query = request.args.get("q", "").strip()[: limits.NAME_CONTAINS_LENGTH]
    response = call(
        "subscriptions",
        "ListSubscriptions",
        ListSubscriptionsRequest(
            name_contains=query,
            page_size=SEARCH_RESULTS,
            order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC,
        ),
    )
    found = [{"id": s.id, "name": s.name} for s in response.subscriptions]
    return jsonify(webhooks=found, more=bool(response.next_page_token))


def set_active(subscription_id: str) -> ResponseReturnValue:
    active = request.form.get("active") == "on"
    sub = call(
        "subscriptions",
        "SetSubscriptionActive",
        SetSubscriptionActiveRequest(id=subscription_id, active=active),
    )
    flash(f"Webhook “{sub.name}” is {'on' if sub.active else 'off'}.")
    return redirect(local_path(request.form.get("back"), url_for("subscriptions")))


def enable(subscription_id: str) -> ResponseReturnValue:
    """Re-enable a webhook (the platform disabled it): active again, which also clears
    what the platform held against its endpoint."""
    sub = call(
        "subscriptions",
        "SetSubscriptionActive",
        SetSubscriptionActiveRequest(id=subscription_id, active=True),
    )
    flash(f"Webhook “{sub.name}” is enabled again: deliveries resume.")
    back = url_for("subscription_details", subscription_id=subscription_id)
    return redirect(local_path(request.form.get("back"), back))


def send_test_event(subscription_id: str) -> ResponseReturnValue:
    sub = get_subscription(subscription_id)
    response = call(
        "sender", "SendTestEvent", SendTestEventRequest(subscription_id=subscription_id)
    )
    attempt = response.attempt
    if attempt.outcome == AttemptOutcome.ATTEMPT_OUTCOME_SUCCEEDED:
        flash(
            f"Test event to “{sub.name}” delivered: HTTP {attempt.status_code} "
            f"in {attempt.duration_ms} ms."
        )
    else:
        status = f"HTTP {attempt.status_code}, " if attempt.status_code else ""
        flash(
            f"Test event to “{sub.name}” failed: {status}{class_text(attempt.failure_class)}"
            f" — {attempt.error_message or 'no message'}",
            "error",
        )
    return redirect(local_path(request.form.get("back"), url_for("subscriptions")))


def delete_subscription(subscription_id: str) -> ResponseReturnValue:
    sub = get_subscription(subscription_id)
    if request.method == "GET":
        return render_template("confirm_delete.html", sub=sub)
    call(
        "subscriptions",
        "DeleteSubscription",
        DeleteSubscriptionRequest(id=subscription_id, expected_version=sub.version),
    )
    flash(f"Webhook “{sub.name}” deleted.")
    return redirect(url_for("subscriptions"))


ROUTES = (
    Route("/webhooks", subscriptions),
    Route("/webhooks/search", search_webhooks),
    Route("/webhooks/<subscription_id>/active", set_active, ("POST",)),
    Route("/webhooks/<subscription_id>/enable", enable, ("POST",)),
    Route("/webhooks/<subscription_id>/test", send_test_event, ("POST",)),
    Route("/webhooks/<subscription_id>/delete", delete_subscription, ("GET", "POST")),
)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
