"""The Webhooks list (with its Health column and banners) and the actions on one
subscription from it: the on/off toggle, Enable (a webhook the platform disabled), Send
test event and Delete (after a confirmation page)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from flask import Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.failures_pb2 import CountFailuresRequest, SubscriptionFailureCount
from webhooks.v1.messages_pb2 import AttemptOutcome
from webhooks.v1.sender_pb2 import SendTestEventRequest
from webhooks.v1.subscriptions_pb2 import (
    DeleteSubscriptionRequest,
    GetSubscriptionRequest,
    ListSubscriptionsRequest,
    SetSubscriptionActiveRequest,
    Subscription,
    SubscriptionOrder,
)
from webhooks_client.failure_text import class_text
from webhooks_client.health_text import health_summary
from webhooks_client.protos import timestamp_text
from webhooks_console.display import Pages, trigger_text
from webhooks_console.health_banners import banner_subscriptions, banners
from webhooks_console.pages import Route, add_routes, call, catalogue, local_path, remember_tenant

PAGE_SIZE = 20


def failure_counts(ids: list[str]) -> dict[str, SubscriptionFailureCount] | None:
    """Failed attempts per subscription; None when the failures service cannot say (the
    list is still shown)."""
    if not ids:
        return {}
    try:
        response = call("failures", "CountFailures", CountFailuresRequest(subscription_ids=ids))
    except grpc.RpcError:
        return None
    return {count.subscription_id: count for count in response.counts}


def get_subscription(subscription_id: str) -> Subscription:
    found: Subscription = call(
        "subscriptions", "GetSubscription", GetSubscriptionRequest(id=subscription_id)
    )
    return found


def subscriptions() -> ResponseReturnValue:
    query = request.args.get("q", "").strip()
    page_token = request.args.get("page", "")
    back = request.args.getlist("back")
    response = call(
        "subscriptions",
        "ListSubscriptions",
        ListSubscriptionsRequest(
            name_contains=query,
            page_size=PAGE_SIZE,
            page_token=page_token,
            order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_DESC,
        ),
    )
    items = list(response.subscriptions)
    if items:
        remember_tenant(items[0].tenant)
    counts = failure_counts([s.id for s in items])
    whole = not query and not page_token and not response.next_page_token
    troubled, more = banner_subscriptions(response, whole)
    cat = catalogue()
    now = datetime.now(UTC)
    rows = [
        {
            "sub": sub,
            "triggers": [trigger_text(t, sub.entity, cat) for t in sub.triggers],
            "created": timestamp_text(sub.created_at),
            "modified": timestamp_text(sub.updated_at),
            "failures": (counts or {}).get(sub.id),
            "health_summary": health_summary(sub.health, now),
        }
        for sub in items
    ]
    return render_template(
        "subscriptions.html",
        rows=rows,
        query=query,
        pages=Pages.of(page_token, back, response.next_page_token),
        counts_known=counts is not None,
        banners=banners(troubled, now, more),
    )


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
    Route("/webhooks/<subscription_id>/active", set_active, ("POST",)),
    Route("/webhooks/<subscription_id>/enable", enable, ("POST",)),
    Route("/webhooks/<subscription_id>/test", send_test_event, ("POST",)),
    Route("/webhooks/<subscription_id>/delete", delete_subscription, ("GET", "POST")),
)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
