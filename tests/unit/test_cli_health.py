"""Endpoint health and the rate limit in the CLI without a service: the HEALTH column, the
health block of ``get``, the platform's disabling in the history, ``enable``, and
``--rate-limit`` on create and update; and the shared display helpers both clients use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.struct_pb2 import Struct

from webhooks.v1.common_pb2 import Health, HealthState, Webhook
from webhooks.v1.subscriptions_pb2 import Subscription, SubscriptionHistoryEntry
from webhooks_cli.errors import UsageError
from webhooks_cli.main import main, parse_args
from webhooks_cli.spec import create_spec, update_spec
from webhooks_cli.subscriptions import activate
from webhooks_cli.views import SUBSCRIPTION_HEADERS, history_row, subscription_row
from webhooks_client.health_text import (
    HEALTH_NAMES,
    clock_text,
    health_fields,
    health_name,
    health_summary,
)
from webhooks_client.protos import timestamp
from webhooks_client.subscription_text import subscription_fields

CREATE = ["subscriptions", "create", "--name", "n", "--entity", "Object", "--trigger", "OnNew"]
NOW = datetime(2026, 12, 7, 11, 50, tzinfo=UTC)


def no_stdin() -> str:
    raise AssertionError("stdin must not be read")


def health(state: int, **fields: object) -> Health:
    found = Health(state=state)  # type: ignore[arg-type]
    for name, value in fields.items():
        if isinstance(value, datetime):
            getattr(found, name).CopyFrom(timestamp(value))
        else:
            setattr(found, name, value)
    return found


# --- the shared display helpers ---------------------------------------------------------------


def test_every_state_has_a_display_name_and_unset_reads_healthy() -> None:
    assert set(HEALTH_NAMES.values()) == {
        "healthy",
        "failing",
        "circuit open",
        "throttled",
        "disabled",
    }
    assert health_name(Health()) == "healthy"
    assert health_summary(Health(), NOW) == "Healthy"


def test_the_summary_says_state_reason_and_when() -> None:
    opened = health(
        HealthState.HEALTH_STATE_CIRCUIT_OPEN,
        reason="7 of 10 attempts failed in 5 minutes",
        until=datetime(2026, 12, 7, 12, 3, tzinfo=UTC),
    )
    assert health_summary(opened, NOW) == (
        "Circuit open: 7 of 10 attempts failed in 5 minutes — retrying at 12:03 UTC"
    )
    throttled = health(
        HealthState.HEALTH_STATE_THROTTLED,
        reason="the endpoint answered 429",
        until=datetime(2026, 12, 8, 0, 1, tzinfo=UTC),
    )
    assert health_summary(throttled, NOW) == (
        "Throttled: the endpoint answered 429 — resuming at 2026-12-08 00:01 UTC"
    )
    failing = health(
        HealthState.HEALTH_STATE_FAILING,
        consecutive_failures=6,
        failing_since=datetime(2026, 12, 7, 11, 2, tzinfo=UTC),
    )
    assert health_summary(failing, NOW) == "Failing: 6 attempts in a row failed since 11:02 UTC"
    gone = health(HealthState.HEALTH_STATE_DISABLED, reason="the endpoint answered 410 Gone")
    assert health_summary(gone, NOW) == ("Disabled by the platform: the endpoint answered 410 Gone")
    assert clock_text(Health().until, NOW) == ""


# --- list, get, history -----------------------------------------------------------------------


def test_the_list_has_a_health_column() -> None:
    sub = Subscription(id="s1", name="n", health=health(HealthState.HEALTH_STATE_CIRCUIT_OPEN))
    row = subscription_row(sub)
    assert len(row) == len(SUBSCRIPTION_HEADERS)
    assert row[SUBSCRIPTION_HEADERS.index("HEALTH")] == "circuit open"
    assert subscription_row(Subscription(id="s2"))[SUBSCRIPTION_HEADERS.index("HEALTH")] == (
        "healthy"
    )


def test_get_shows_a_health_block() -> None:
    failing = health(
        HealthState.HEALTH_STATE_FAILING,
        reason="5 attempts in a row failed",
        consecutive_failures=5,
        failing_since=datetime(2026, 12, 7, 11, 2, tzinfo=UTC),
        last_error="HTTP 500",
    )
    fields = dict(health_fields(failing))
    assert fields["health"] == "failing"
    assert fields["reason"] == "5 attempts in a row failed"
    assert fields["consecutive failures"] == "5"
    assert fields["failing since"] == "2026-12-07 11:02:00Z"
    assert fields["last error"] == "HTTP 500"
    assert health_fields(Health()) == [("health", "healthy")]


def test_the_platforms_disabling_reads_as_a_sentence_in_the_history() -> None:
    changes = Struct()
    changes.update({"reason": "the endpoint answered 410 Gone"})
    entry = SubscriptionHistoryEntry(
        version=4, event_type="DisabledByPlatform", actor="platform", changes=changes
    )
    row = history_row(entry)
    assert row[2] == "Disabled by the platform: the endpoint answered 410 Gone"
    assert row[3] == "platform"


# --- enable, --rate-limit ---------------------------------------------------------------------


def test_enable_is_activate() -> None:
    args = parse_args(["subscriptions", "enable", "s1", "--expected-version", "3"])
    assert args.id == "s1" and args.expected_version == 3
    # The same handler as activate: SetSubscriptionActive(active=True).
    assert args.client_handler.target() is activate
    assert parse_args(["subscriptions", "activate", "s1"]).client_handler.target() is activate


def test_rate_limit_on_create_and_update() -> None:
    spec = create_spec(parse_args([*CREATE, "--url", "https://e.com", "--rate-limit", "25"]))
    assert spec.webhook.rate_limit_per_second == 25
    spec = create_spec(parse_args([*CREATE, "--url", "https://e.com"]), no_stdin)
    assert spec.webhook.rate_limit_per_second == 0, "none unless given"
    current = Subscription(
        id="s1", name="n", webhook=Webhook(url="https://e.com", rate_limit_per_second=25)
    )
    spec, mask = update_spec(current, parse_args(["subscriptions", "update", "s1", "--name", "m"]))
    assert list(mask.paths) == ["name"] and spec.webhook.rate_limit_per_second == 25
    argv = ["subscriptions", "update", "s1", "--rate-limit", "0"]
    spec, mask = update_spec(current, parse_args(argv))
    assert list(mask.paths) == ["webhook"] and spec.webhook.rate_limit_per_second == 0
    assert spec.webhook.url == "https://e.com", "the rest of the webhook is kept"
    shown = dict(subscription_fields(current))
    assert shown["rate limit"] == "25 per second"
    assert dict(subscription_fields(Subscription()))["rate limit"] == "none"


def test_a_rate_limit_no_request_can_carry_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--token", "t", "--address", "127.0.0.1:1", *CREATE, "--url", "https://e.com"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--rate-limit", "-1"])
    assert exit_.value.code == 2
    assert "--rate-limit: 0 (no limit) or more" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--rate-limit: must be a whole number"):
        create_spec(parse_args([*argv, "--rate-limit", str(2**31)]), no_stdin)
