"""webhooks_health: the shown health, the breaker's window, the operator events' ids and
data (pure parts)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.health_rules import FAIL, OK, T0, attempt, failures, status
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue.samples import sample_data
from webhooks_health import (
    DATA_DEFAULTS,
    FailureWindow,
    announcement_event_id,
    health_key,
    notice_event,
    operator_event,
    shown_health,
    subscription_of_key,
)
from webhooks_messaging.subjects import events_subject
from webhooks_router.validation import validate_event

HS = common_pb2.HealthState


def test_keys_split_back_and_refuse_dots() -> None:
    assert health_key("acme", "s-1") == "acme.s-1"
    assert subscription_of_key("acme.s-1") == "s-1"
    with pytest.raises(ValueError, match="health key"):
        health_key("acme", "a.b")


def test_no_record_shows_healthy() -> None:
    assert shown_health(None, T0) == common_pb2.Health(state=HS.HEALTH_STATE_HEALTHY)


def test_a_throttle_over_shows_what_the_webhook_was_before() -> None:
    throttled = attempt(None, status(429, 5)).record
    assert shown_health(throttled, T0).state == HS.HEALTH_STATE_THROTTLED
    assert shown_health(throttled, T0 + timedelta(seconds=5)).state == HS.HEALTH_STATE_HEALTHY
    failing = failures(5).record
    after = attempt(failing, status(429, 5), T0 + timedelta(minutes=1)).record
    shown = shown_health(after, T0 + timedelta(minutes=2))
    assert shown.state == HS.HEALTH_STATE_FAILING and not shown.HasField("until")


def test_the_window_counts_within_its_span_only() -> None:
    window = FailureWindow(300)
    for second in range(10):
        window.record("s", 1000.0 + second, failed=second % 2 == 0)
    assert window.verdict("s", 1010.0) == (5, 10)
    assert window.verdict("other", 1010.0) == (0, 0)
    # 300 s later the first bucket (1000-1009 s) has left the window.
    assert window.verdict("s", 1320.0) == (0, 0)
    window.forget("s")
    assert window.verdict("s", 1010.0) == (0, 0)


def test_the_window_is_bounded() -> None:
    window = FailureWindow(300, max_tracked=3)
    for index in range(5):
        window.record(f"s{index}", 1000.0, failed=True)
    assert len(window) == 3
    assert window.verdict("s0", 1000.0) == (0, 0)  # the least recently used went first
    assert window.verdict("s4", 1000.0) == (1, 1)
    # A webhook idle for a whole window is forgotten at the next sweep.
    window.record("s4", 1400.0, failed=False)
    assert len(window) == 1


def test_event_ids() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    ms = int(at.timestamp() * 1000)
    assert announcement_event_id("OnFailing", "s", at=at) == f"webhook:s:failing:{ms}"
    assert announcement_event_id("OnCircuitOpened", "s", at=at) == f"webhook:s:circuit-opened:{ms}"
    assert announcement_event_id("OnDisabled", "s", at=at) == f"webhook:s:disabled:{ms}"
    assert announcement_event_id("OnRecovered", "s", at=at) == f"webhook:s:recovered:{ms}"
    assert announcement_event_id("OnRetriesExhausted", "s", delivery_id="d") == (
        "webhook:s:exhausted:d"
    )
    expiring = announcement_event_id("OnCertificateExpiring", "s", certificate_id="c", not_after=at)
    assert expiring == f"webhook:s:certificate-expiring:c:{int(at.timestamp())}"
    with pytest.raises(ValueError, match="trigger"):
        announcement_event_id("OnNew", "s", at=at)
    with pytest.raises(ValueError, match="128"):
        announcement_event_id("OnRetriesExhausted", "s", delivery_id="d" * 120)


def subscription() -> messages_pb2.SubscriptionState:
    return messages_pb2.SubscriptionState(
        id="3f6c2b1e-8d4a-4f7e-9b2c-5a1d0e7f9c34",
        tenant="acme",
        name="Orders to CRM",
        entity="Object",
        webhook=common_pb2.Webhook(url="https://user:secret@crm.example.com/hooks?token=x#f"),
    )


def test_operator_event_data_has_every_key_and_no_secret() -> None:
    change = failures(5)
    (notice,) = change.notices
    event = operator_event(
        "OnFailing",
        tenant="acme",
        subscription=subscription(),
        health=notice.health,
        event_id=notice.event_id,
        occurred_at=T0 + timedelta(seconds=4),
    )
    assert (event.tenant, event.entity, event.trigger) == ("acme", "Webhook", "OnFailing")
    assert event.event_id == notice.event_id and not event.HasField("channel")
    assert event.occurred_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=4)
    data = json.loads(event.data_json)
    assert set(data) == set(DATA_DEFAULTS) == set(sample_data("Webhook", "OnFailing"))
    assert data["Url"] == "https://crm.example.com/hooks"
    assert "secret" not in event.data_json.decode()
    assert data["State"] == "failing" and data["ConsecutiveFailures"] == 5
    assert data["FailingSince"] == "2026-03-01T12:00:00.000Z"
    assert data["LastError"] == "HTTP 500" and data["DeliveryId"] == ""


def test_operator_event_extra_keys_are_checked() -> None:
    event = operator_event(
        "OnCertificateExpiring",
        tenant="acme",
        subscription=subscription(),
        health=None,
        event_id="webhook:s:certificate-expiring:c:1",
        occurred_at=T0,
        CertificateId="c",
        CertificateName="crm-client",
        CertificateNotAfter="2026-03-11T00:00:00.000Z",
    )
    data = json.loads(event.data_json)
    assert data["State"] == "healthy" and data["CertificateName"] == "crm-client"
    with pytest.raises(ValueError, match="Colour"):
        operator_event(
            "OnFailing",
            tenant="acme",
            subscription=subscription(),
            health=None,
            event_id="x",
            occurred_at=T0,
            Colour="red",
        )


def test_every_operator_event_passes_the_routers_validation() -> None:
    exhausted = replace(FAIL, exhausted=True, delivery_id="d-" + "7" * 36, event_id="e-1")
    opened = attempt(failures(4).record, exhausted, T0 + timedelta(minutes=1), window=(10, 10))
    gone = attempt(None, status(410))
    recovered = attempt(opened.record, OK, T0 + timedelta(minutes=2))
    notices = [*opened.notices, *gone.notices, *recovered.notices]
    assert {notice.trigger for notice in notices} == {
        "OnFailing",
        "OnCircuitOpened",
        "OnRetriesExhausted",
        "OnDisabled",
        "OnRecovered",
    }
    for notice in notices:
        event = notice_event(notice, tenant="acme", subscription=subscription(), occurred_at=T0)
        data = validate_event(
            event, subject=events_subject("acme", "Webhook", notice.trigger), now=T0.timestamp()
        )
        assert data["SubscriptionId"] == subscription().id
        assert (data["DeliveryId"] != "") == (notice.trigger == "OnRetriesExhausted")
