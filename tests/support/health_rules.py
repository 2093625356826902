"""Attempts and records for the health rules' tests (webhooks_health, pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import load_settings
from webhooks_health import AttemptFacts, Change, HealthRules, after_attempt

HS = common_pb2.HealthState
FC = messages_pb2.FailureClass
RULES = HealthRules.of(load_settings({}))
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUB = "3f6c2b1e-8d4a-4f7e-9b2c-5a1d0e7f9c34"

OK = AttemptFacts(
    succeeded=True,
    status_code=200,
    failure_class=FC.FAILURE_CLASS_UNSPECIFIED,
    message="",
    retry_after=None,
    exhausted=False,
    probe=False,
    announces=True,
    subscription_version=3,
    delivery_id="d-1",
    event_id="e-1",
)
FAIL = replace(
    OK,
    succeeded=False,
    status_code=500,
    failure_class=FC.FAILURE_CLASS_HTTP_STATUS,
    message="HTTP 500",
)


def status(code: int, retry_after: float | None = None) -> AttemptFacts:
    return replace(FAIL, status_code=code, message=f"HTTP {code}", retry_after=retry_after)


def attempt(
    record: messages_pb2.EndpointHealth | None,
    facts: AttemptFacts,
    at: datetime = T0,
    window: tuple[int, int] = (0, 0),
    rules: HealthRules = RULES,
) -> Change:
    return after_attempt(
        record, facts, at, rules, tenant="acme", subscription_id=SUB, window=window
    )


def failures(count: int, facts: AttemptFacts = FAIL, every: float = 1.0) -> Change:
    """``count`` failures ``every`` seconds apart, none tripping the breaker (window empty)."""
    record = None
    change = None
    for index in range(count):
        change = attempt(record, facts, T0 + timedelta(seconds=every * index))
        record = change.record
    assert change is not None
    return change


def state(change: Change) -> int:
    assert change.record is not None
    return change.record.health.state


def open_circuit() -> messages_pb2.EndpointHealth:
    record = attempt(None, FAIL, T0, window=(10, 10)).record
    assert record is not None
    return record
