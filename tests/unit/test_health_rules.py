"""webhooks_health's pure rules: the breaker, throttling, auto-disable, failing, and which
operator events an attempt raises (docs/operations.md states each rule)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.support.health_rules import (
    FAIL,
    OK,
    RULES,
    SUB,
    T0,
    attempt,
    failures,
    open_circuit,
    state,
    status,
)
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_health import Change, claim_probe
from webhooks_health.record import moment

HS = common_pb2.HealthState
FC = messages_pb2.FailureClass


# ---- success


def test_a_success_with_no_record_stores_nothing() -> None:
    change = attempt(None, OK)
    assert change == Change(False, None, (), ())


def test_any_success_resets_the_streak() -> None:
    record = failures(3).record
    change = attempt(record, OK, T0 + timedelta(seconds=10))
    assert change.write and change.record is None
    assert change.announcements == ()  # the streak never announced: no OnRecovered


def test_subscription_gone_says_nothing_about_the_endpoint() -> None:
    gone = replace(FAIL, status_code=0, failure_class=FC.FAILURE_CLASS_SUBSCRIPTION_GONE)
    assert attempt(None, gone).write is False
    assert attempt(failures(2).record, gone).write is False


# ---- failing


def test_failing_after_n_consecutive_failures_announced_once() -> None:
    below = failures(RULES.failing_after - 1)
    assert state(below) == HS.HEALTH_STATE_HEALTHY and below.announcements == ()
    at = failures(RULES.failing_after)
    assert state(at) == HS.HEALTH_STATE_FAILING
    assert at.announcements == ("OnFailing",)
    (notice,) = at.notices
    assert notice.event_id == f"webhook:{SUB}:failing:{int(T0.timestamp() * 1000)}"
    assert notice.health.consecutive_failures == RULES.failing_after
    more = attempt(at.record, FAIL, T0 + timedelta(minutes=1))
    assert state(more) == HS.HEALTH_STATE_FAILING and more.announcements == ()


def test_recovered_only_after_an_announced_streak() -> None:
    failing = failures(RULES.failing_after)
    change = attempt(failing.record, OK, T0 + timedelta(minutes=5))
    assert change.write and change.record is None
    assert change.announcements == ("OnRecovered",)
    (notice,) = change.notices
    assert notice.event_id == f"webhook:{SUB}:recovered:{int(T0.timestamp() * 1000)}"
    assert notice.health.state == HS.HEALTH_STATE_HEALTHY
    assert moment(notice.health.failing_since) == T0


def test_the_record_keeps_the_last_error_and_its_times() -> None:
    change = failures(2, replace(FAIL, message="x" * 2000))
    assert change.record is not None
    health = change.record.health
    assert health.consecutive_failures == 2 and change.record.streak_attempts == 2
    assert moment(health.failing_since) == T0
    assert moment(health.last_failure_at) == T0 + timedelta(seconds=1)
    assert len(health.last_error) == 500
    assert change.record.tenant == "acme" and change.record.subscription_id == SUB


# ---- the breaker


def test_the_breaker_opens_at_the_threshold_and_not_below() -> None:
    record = failures(2).record
    below = attempt(record, FAIL, T0, window=(6, 10))  # 60 % < 70 %
    assert state(below) != HS.HEALTH_STATE_CIRCUIT_OPEN
    at = attempt(record, FAIL, T0, window=(7, 10))
    assert state(at) == HS.HEALTH_STATE_CIRCUIT_OPEN
    assert at.transitions == ("opened",)
    assert at.announcements == ("OnCircuitOpened",)
    assert at.record is not None
    assert at.record.health.reason == "7 of 10 attempts failed in 5 minutes"
    assert moment(at.record.health.until) == T0 + timedelta(seconds=RULES.cooldown_seconds)
    assert at.record.cooldown_seconds == RULES.cooldown_seconds
    assert at.notices[0].event_id == f"webhook:{SUB}:circuit-opened:{int(T0.timestamp() * 1000)}"


def test_the_breaker_needs_the_minimum_of_requests() -> None:
    below = attempt(None, FAIL, T0, window=(9, 9))
    assert state(below) == HS.HEALTH_STATE_HEALTHY
    assert state(attempt(None, FAIL, T0, window=(10, 10))) == HS.HEALTH_STATE_CIRCUIT_OPEN


def test_a_failed_probe_reopens_with_the_cooldown_doubled_to_the_maximum() -> None:
    record = open_circuit()
    cooldowns = []
    at = T0
    for _ in range(7):
        at = at + timedelta(seconds=record.cooldown_seconds + 1)
        record = claim_probe(record, at)
        change = attempt(record, replace(FAIL, probe=True), at, window=(11, 11))
        assert change.transitions == ("reopened",)
        assert "OnCircuitOpened" not in change.announcements  # once per streak
        assert change.record is not None
        record = change.record
        assert not record.HasField("probe_started_at")
        assert moment(record.health.until) == at + timedelta(seconds=record.cooldown_seconds)
        cooldowns.append(record.cooldown_seconds)
    assert cooldowns == [60, 120, 240, 480, 600, 600, 600]


def test_a_failure_sent_before_the_circuit_opened_does_not_reopen_it() -> None:
    record = open_circuit()
    change = attempt(record, FAIL, T0 + timedelta(seconds=1), window=(11, 11))
    assert change.transitions == () and state(change) == HS.HEALTH_STATE_CIRCUIT_OPEN
    assert change.record is not None
    assert change.record.health.until == record.health.until


def test_a_successful_probe_closes_the_circuit_and_recovers() -> None:
    record = claim_probe(open_circuit(), T0 + timedelta(seconds=31))
    change = attempt(record, replace(OK, probe=True), T0 + timedelta(seconds=32))
    assert change.write and change.record is None
    assert change.transitions == ("closed",)
    assert change.announcements == ("OnRecovered",)


# ---- auto-disable


def test_410_disables_at_once() -> None:
    change = attempt(failures(1).record, status(410), T0 + timedelta(seconds=5))
    assert state(change) == HS.HEALTH_STATE_DISABLED
    assert change.record is not None
    assert change.record.health.reason == "the endpoint answered 410 Gone"
    assert moment(change.record.disabled_at) == T0 + timedelta(seconds=5)
    assert change.transitions == ("disabled",)
    assert change.announcements == ("OnDisabled",)
    # Once: a disabled record changes no more (only re-enabling deletes it).
    assert attempt(change.record, status(410)).write is False
    assert attempt(change.record, OK).write is False


def test_disabled_after_the_period_only_with_the_minimum_of_attempts() -> None:
    period = RULES.disable_after_seconds
    # Failing for the whole period, but one attempt short of the minimum.
    few = failures(RULES.disable_min_attempts - 1, every=period / (RULES.disable_min_attempts - 2))
    assert state(few) != HS.HEALTH_STATE_DISABLED
    # The minimum of attempts, but a second short of the period.
    short = failures(
        RULES.disable_min_attempts, every=(period - 1) / (RULES.disable_min_attempts - 1)
    )
    assert state(short) != HS.HEALTH_STATE_DISABLED
    both = failures(RULES.disable_min_attempts, every=period / (RULES.disable_min_attempts - 1))
    assert state(both) == HS.HEALTH_STATE_DISABLED
    assert both.record is not None
    assert both.record.health.reason == (
        f"every attempt failed for 5 days ({RULES.disable_min_attempts} attempts)"
    )
    assert "OnDisabled" in both.announcements


def test_a_success_in_between_restarts_the_disable_period() -> None:
    period = RULES.disable_after_seconds
    record = failures(RULES.disable_min_attempts, every=60).record
    record = attempt(record, OK, T0 + timedelta(hours=1)).record
    later = attempt(record, FAIL, T0 + timedelta(seconds=period + 60))
    assert state(later) == HS.HEALTH_STATE_HEALTHY
    assert later.record is not None and later.record.streak_attempts == 1


# ---- throttling


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_slow_down_statuses_throttle_for_retry_after(code: int) -> None:
    change = attempt(None, status(code, retry_after=5))
    assert state(change) == HS.HEALTH_STATE_THROTTLED
    assert change.transitions == ("throttled",)
    assert change.record is not None
    assert moment(change.record.health.until) == T0 + timedelta(seconds=5)


def test_retry_after_is_capped() -> None:
    rules = replace(RULES, retry_after_max_seconds=120)
    change = attempt(None, status(429, retry_after=86400), rules=rules)
    assert change.record is not None
    assert moment(change.record.health.until) == T0 + timedelta(seconds=120)


def test_without_retry_after_the_throttle_doubles_from_min_to_max() -> None:
    record = None
    waits = []
    for index in range(9):
        at = T0 + timedelta(minutes=index)
        change = attempt(record, status(503), at)
        record = change.record
        assert record is not None
        until = moment(record.health.until)
        assert until is not None
        waits.append((until - at).total_seconds())
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    # A success ends the throttle and its back-off.
    assert attempt(record, OK, T0 + timedelta(hours=1)).record is None


def test_a_success_during_a_throttle_leaves_it_to_its_end() -> None:
    throttled = attempt(failures(2).record, status(429, retry_after=5), T0 + timedelta(seconds=2))
    assert attempt(throttled.record, OK, T0 + timedelta(seconds=3)).write is False
    after = attempt(throttled.record, OK, T0 + timedelta(seconds=7))
    assert after.write and after.record is None


def test_other_failures_do_not_throttle() -> None:
    assert state(attempt(None, status(500))) == HS.HEALTH_STATE_HEALTHY
    timeout = replace(FAIL, status_code=0, failure_class=FC.FAILURE_CLASS_TIMEOUT)
    assert state(attempt(None, replace(timeout, status_code=429))) == HS.HEALTH_STATE_HEALTHY


# ---- precedence: DISABLED > CIRCUIT_OPEN > THROTTLED > FAILING > HEALTHY


def test_precedence_of_the_states() -> None:
    failing = failures(RULES.failing_after).record
    throttled = attempt(failing, status(429, 5), T0 + timedelta(minutes=1))
    assert state(throttled) == HS.HEALTH_STATE_THROTTLED  # over failing
    opened = attempt(throttled.record, status(429, 5), T0 + timedelta(minutes=1), window=(10, 10))
    assert state(opened) == HS.HEALTH_STATE_CIRCUIT_OPEN  # over throttled
    gone = attempt(opened.record, status(410), T0 + timedelta(minutes=2), window=(11, 11))
    assert state(gone) == HS.HEALTH_STATE_DISABLED  # over the circuit
    # A throttle still running is not undone by an ordinary failure; one that is over is.
    still = attempt(throttled.record, FAIL, T0 + timedelta(minutes=1, seconds=2))
    assert state(still) == HS.HEALTH_STATE_THROTTLED
    over = attempt(throttled.record, FAIL, T0 + timedelta(minutes=1, seconds=6))
    assert state(over) == HS.HEALTH_STATE_FAILING


# ---- announcements: only an ordinary event's attempt announces (loop rule 2)


def test_a_webhook_events_attempt_counts_but_never_announces() -> None:
    quiet = replace(FAIL, announces=False)
    failing = failures(RULES.failing_after, quiet)
    assert state(failing) == HS.HEALTH_STATE_FAILING and failing.announcements == ()
    assert failing.record is not None and not failing.record.failing_announced
    opened = attempt(failing.record, quiet, T0 + timedelta(minutes=1), window=(10, 10))
    assert state(opened) == HS.HEALTH_STATE_CIRCUIT_OPEN and opened.announcements == ()
    assert opened.transitions == ("opened",)
    gone = attempt(None, replace(status(410), announces=False))
    assert state(gone) == HS.HEALTH_STATE_DISABLED and gone.announcements == ()
    exhausted = attempt(None, replace(quiet, exhausted=True))
    assert exhausted.announcements == ()
    # The streak was never announced: its end is not either.
    assert attempt(failing.record, OK, T0 + timedelta(minutes=2)).announcements == ()
    # An ordinary event's failure in the same streak announces what is still unannounced.
    later = attempt(failing.record, FAIL, T0 + timedelta(minutes=2))
    assert later.announcements == ("OnFailing",)


def test_retries_exhausted_at_most_once_per_notice_window() -> None:
    exhausted = replace(FAIL, exhausted=True, delivery_id="d-9", event_id="e-9")
    first = attempt(None, exhausted)
    assert first.announcements == ("OnRetriesExhausted",)
    (notice,) = first.notices
    assert notice.event_id == f"webhook:{SUB}:exhausted:d-9"
    assert (notice.delivery_id, notice.delivered_event_id) == ("d-9", "e-9")
    within = T0 + timedelta(seconds=RULES.exhausted_notice_seconds - 1)
    assert attempt(first.record, exhausted, within).announcements == ()
    # A success within the window keeps a healthy record that remembers the notice ...
    healthy = attempt(first.record, OK, within)
    assert healthy.write and healthy.record is not None
    assert healthy.record.health.state == HS.HEALTH_STATE_HEALTHY
    assert healthy.record.health.consecutive_failures == 0
    assert attempt(healthy.record, exhausted, within).announcements == ()
    assert attempt(healthy.record, OK, within).write is False  # the hot path stays cheap
    # ... and once the window is over, the next exhaustion is announced again.
    after = T0 + timedelta(seconds=RULES.exhausted_notice_seconds)
    assert attempt(healthy.record, exhausted, after).announcements == ("OnRetriesExhausted",)
    assert attempt(first.record, OK, after).record is None
