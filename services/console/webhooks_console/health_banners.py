"""Endpoint health on the console's pages: the badge of the Webhooks list's Health column,
the banners at the top of the list (webhooks disabled by the platform, with their circuit
open, failing: each named, with a link), and the banner of one webhook's page. The words
are ``webhooks_client.health_text``'s, as the CLI prints them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from webhooks.v1.common_pb2 import Health
from webhooks.v1.subscriptions_pb2 import (
    ListSubscriptionsRequest,
    ListSubscriptionsResponse,
    Subscription,
    SubscriptionOrder,
)
from webhooks_client.health_text import (
    CIRCUIT_OPEN,
    DISABLED,
    FAILING,
    HEALTHY,
    TROUBLED,
    health_detail,
    health_name,
    health_state,
    health_summary,
)
from webhooks_console.display import time_html
from webhooks_console.pages import call

# The most webhooks the list's banners look at: one ListSubscriptions page at its largest.
# An organisation with more has them named as far as that page goes ("and more").
BANNER_SCAN = 1000
BANNER_TITLES: dict[int, str] = {
    DISABLED: "Disabled by the platform: deliveries stopped until you enable them",
    CIRCUIT_OPEN: "Circuit open: deliveries wait until the endpoint answers again",
    FAILING: "Failing: the latest delivery attempts failed",
}


def health_class(health: Health) -> str:
    """The badge's CSS class: ``health-circuit-open``."""
    return "health-" + health_name(health).replace(" ", "-")


@dataclass(frozen=True)
class Named:
    """A webhook a banner names (its page linked) and why, when (the banner says the state)."""

    id: str
    name: str
    detail: str


@dataclass(frozen=True)
class Banner:
    state: int
    css: str  # health-disabled, ...
    title: str
    webhooks: tuple[Named, ...]
    more: bool  # not every webhook was looked at


def banners(subscriptions: Iterable[Subscription], now: datetime, more: bool) -> list[Banner]:
    """One banner per troubled state that has webhooks, worst first."""
    found: dict[int, list[Named]] = {state: [] for state in TROUBLED}
    classes: dict[int, str] = {}
    for sub in subscriptions:
        state = health_state(sub.health)
        if state in found:
            found[state].append(Named(sub.id, sub.name, health_detail(sub.health, now)))
            classes[state] = health_class(sub.health)
    return [
        Banner(state, classes[state], BANNER_TITLES[state], tuple(named), more)
        for state, named in found.items()
        if named
    ]


@dataclass(frozen=True)
class WebhookHealth:
    """One webhook's banner: shown unless healthy; Enable only when the platform disabled
    it."""

    shown: bool
    disabled: bool
    css: str
    summary: str
    disabled_since: str  # when the platform disabled it ("" when not, or not known)
    failing_since: str
    consecutive_failures: int
    last_error: str


def webhook_health(health: Health, now: datetime, disabled_at: str = "") -> WebhookHealth:
    """``disabled_at``: when the platform disabled the webhook, from its history (a disabled
    webhook's health carries the reason only: the disabling is a fact of the webhook)."""
    state = health_state(health)
    return WebhookHealth(
        shown=state != HEALTHY,
        disabled=state == DISABLED,
        css=health_class(health),
        summary=health_summary(health, now),
        disabled_since=disabled_at if state == DISABLED else "",
        failing_since=time_html(health.failing_since, ""),
        consecutive_failures=health.consecutive_failures,
        last_error=health.last_error,
    )


def banner_subscriptions(
    page: ListSubscriptionsResponse, whole: bool
) -> tuple[list[Subscription], bool]:
    """The webhooks the list's banners look at, and whether there are more: the page shown
    when it holds every webhook (``whole``: first page, no search, no next page), else
    one page of up to BANNER_SCAN."""
    if whole:
        return list(page.subscriptions), False
    request = ListSubscriptionsRequest(
        page_size=BANNER_SCAN, order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_NAME_ASC
    )
    scanned: ListSubscriptionsResponse = call("subscriptions", "ListSubscriptions", request)
    return list(scanned.subscriptions), bool(scanned.next_page_token)
