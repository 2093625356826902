"""webhooks_health.admit: whether a job goes to its webhook now, or waits until when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.support.health_rules import RULES, T0, attempt, failures, open_circuit, status
from webhooks.v1 import messages_pb2
from webhooks_health import admit, claim_probe, decide_probe
from webhooks_health.record import moment, timestamp

# ---- admission


def jitter(value: float) -> Callable[[], float]:
    return lambda: value


def test_no_record_healthy_and_failing_are_sent() -> None:
    assert admit(None, T0, RULES).send
    assert admit(failures(RULES.failing_after).record, T0, RULES).send
    assert admit(messages_pb2.EndpointHealth(), T0, RULES).send


def test_a_throttle_defers_until_its_end_plus_up_to_a_second() -> None:
    record = attempt(None, status(429, retry_after=5)).record
    admission = admit(record, T0 + timedelta(seconds=1), RULES, jitter=jitter(0.5))
    assert not admission.send and admission.reason == "throttled"
    assert admission.until == T0 + timedelta(seconds=5.5)
    assert admit(record, T0 + timedelta(seconds=5), RULES).send


def test_an_open_circuit_defers_until_the_cooldown_spread_over_one_more() -> None:
    record = open_circuit()
    admission = admit(record, T0 + timedelta(seconds=1), RULES, jitter=jitter(0.5))
    assert not admission.send and admission.reason == "circuit_open"
    cooldown = RULES.cooldown_seconds
    assert admission.until == T0 + timedelta(seconds=cooldown * 1.5)


def test_past_the_cooldown_one_probe_goes_and_the_others_wait() -> None:
    record = open_circuit()
    after = T0 + timedelta(seconds=RULES.cooldown_seconds)
    admission = admit(record, after, RULES)
    assert admission.send and admission.probe
    claimed = decide_probe(record, after, RULES)
    assert claimed.write and claimed.record is not None
    assert moment(claimed.record.probe_started_at) == after
    # The loser reads the claimed record: no second probe, it waits.
    assert decide_probe(claimed.record, after, RULES).write is False
    waiting = admit(claimed.record, after + timedelta(seconds=1), RULES, jitter=jitter(0.0))
    assert not waiting.send and waiting.reason == "circuit_open"
    assert waiting.until == after + timedelta(seconds=2)


def test_a_stale_probe_lets_another_probe_go() -> None:
    after = T0 + timedelta(seconds=RULES.cooldown_seconds)
    claimed = claim_probe(open_circuit(), after)
    assert not admit(claimed, after + timedelta(seconds=59), RULES).send
    stale = admit(claimed, after + timedelta(seconds=60), RULES)
    assert stale.send and stale.probe


def test_a_disabled_webhook_defers() -> None:
    record = attempt(None, status(410)).record
    admission = admit(record, T0, RULES, jitter=jitter(0.0))
    assert not admission.send and admission.reason == "disabled"
    assert admission.until == T0 + timedelta(seconds=RULES.cooldown_seconds)


def test_claim_probe_copies() -> None:
    record = open_circuit()
    claimed = claim_probe(record, T0)
    assert claimed.probe_started_at == timestamp(T0)
    assert not record.HasField("probe_started_at")
