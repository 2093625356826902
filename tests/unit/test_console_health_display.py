"""Endpoint health and the rate limit in the console without a service: the list's banners
(worst first, each webhook named), one webhook's banner (Enable only when the platform
disabled it), the platform's disabling in the History, and the form's optional rate
limit both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import MultiDict

from webhooks.v1.common_pb2 import Health, HealthState, Webhook
from webhooks.v1.subscriptions_pb2 import Subscription
from webhooks_catalogue.proto import catalogue_message
from webhooks_client.protos import timestamp
from webhooks_console.form_errors import form_inputs, step_of, violation_input
from webhooks_console.forms import FormProblems, build_spec, form_of, parse_form
from webhooks_console.health_banners import banners, health_class, webhook_health
from webhooks_console.subscription_details_views import what_happened

NOW = datetime(2026, 12, 7, 11, 50, tzinfo=UTC)
CATALOGUE = catalogue_message()


def sub(name: str, state: int, reason: str = "") -> Subscription:
    return Subscription(
        id=f"id-{name}",
        name=name,
        health=Health(state=state, reason=reason),  # type: ignore[arg-type]
    )


def test_the_list_banners_name_the_troubled_webhooks_worst_first() -> None:
    found = banners(
        [
            sub("ok", HealthState.HEALTH_STATE_HEALTHY),
            sub("unknown", HealthState.HEALTH_STATE_UNSPECIFIED),
            sub("slow", HealthState.HEALTH_STATE_THROTTLED),
            sub("flaky", HealthState.HEALTH_STATE_FAILING, "5 attempts in a row failed"),
            sub("down", HealthState.HEALTH_STATE_CIRCUIT_OPEN, "7 of 10 attempts failed"),
            sub("gone", HealthState.HEALTH_STATE_DISABLED, "the endpoint answered 410 Gone"),
            sub("gone too", HealthState.HEALTH_STATE_DISABLED),
        ],
        NOW,
        more=False,
    )
    assert [b.css for b in found] == ["health-disabled", "health-circuit-open", "health-failing"]
    assert [[w.name for w in b.webhooks] for b in found] == [
        ["gone", "gone too"],
        ["down"],
        ["flaky"],
    ]
    assert found[0].webhooks[0].detail == "the endpoint answered 410 Gone", (
        "the banner says the rest"
    )
    assert found[1].webhooks[0].detail == "7 of 10 attempts failed"
    assert found[0].webhooks[0].id == "id-gone"
    assert banners([sub("ok", HealthState.HEALTH_STATE_HEALTHY)], NOW, more=True) == []


def test_one_webhooks_banner_offers_enable_only_when_disabled() -> None:
    healthy = webhook_health(Health(), NOW)
    assert not healthy.shown and not healthy.disabled
    assert health_class(Health()) == "health-healthy"
    failing = Health(
        state=HealthState.HEALTH_STATE_FAILING,
        consecutive_failures=6,
        last_error="HTTP 500: database is down",
    )
    failing.failing_since.CopyFrom(timestamp(datetime(2026, 12, 7, 11, 2, tzinfo=UTC)))
    shown = webhook_health(failing, NOW)
    assert shown.shown and not shown.disabled
    assert shown.summary == "Failing: 6 attempts in a row failed since 11:02 UTC"
    assert shown.failing_since == (
        '<time class="local" datetime="2026-12-07T11:02:00Z">7 Dec 2026, 11:02 UTC</time>'
    )
    assert (shown.consecutive_failures, shown.last_error) == (6, "HTTP 500: database is down")
    assert shown.disabled_since == "", "not disabled"
    gone = Health(state=HealthState.HEALTH_STATE_DISABLED, reason="r")
    disabled = webhook_health(gone, NOW, disabled_at="2026-12-07 11:40:00Z")
    assert disabled.shown and disabled.disabled and disabled.css == "health-disabled"
    assert disabled.disabled_since == "2026-12-07 11:40:00Z"


def test_the_platforms_disabling_in_the_history() -> None:
    changes = {"reason": "every attempt failed for 5 days (12 attempts)"}
    assert what_happened("DisabledByPlatform", changes, None) == (
        "Disabled by the platform: every attempt failed for 5 days (12 attempts)"
    )


def post(rate_limit: str | None) -> MultiDict[str, str]:
    pairs = [
        ("name", "n"),
        ("entity", "Object"),
        ("triggers[0].trigger", "OnNew"),
        ("webhook.type", "rest"),
        ("webhook.url", "https://e.example.com/hooks"),
    ]
    if rate_limit is not None:
        pairs.append(("webhook.rate_limit_per_second", rate_limit))
    return MultiDict(pairs)


@pytest.mark.parametrize(("typed", "sent"), [(None, 0), ("", 0), ("0", 0), (" 25 ", 25)])
def test_the_rate_limit_is_optional(typed: str | None, sent: int) -> None:
    spec, _ = build_spec(parse_form(post(typed)), CATALOGUE)
    assert spec.webhook.rate_limit_per_second == sent


def test_a_rate_limit_that_is_not_a_number_is_refused_at_its_input() -> None:
    form = parse_form(post("fast"))
    with pytest.raises(FormProblems) as refused:
        build_spec(form, CATALOGUE)
    assert refused.value.problems == {"webhook.rate_limit_per_second": "must be a whole number"}
    # A refusal of the service lands at the input too, on the Webhook step.
    path = "subscription.webhook.rate_limit_per_second"
    assert violation_input(path, form_inputs(form)) == "webhook.rate_limit_per_second"
    assert step_of("webhook.rate_limit_per_second") == "webhook"


def test_the_edit_form_shows_the_stored_rate_limit() -> None:
    stored = Subscription(webhook=Webhook(url="https://e.example.com", rate_limit_per_second=40))
    assert form_of(stored).rate_limit == "40"
    assert form_of(Subscription()).rate_limit == "", "no limit: the input stays empty"
