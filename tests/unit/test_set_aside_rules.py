"""What consumers accept from a stream (webhooks_messaging.checks) and how a letter is made
and counted (webhooks_messaging.deadletters), in memory."""

from __future__ import annotations

import logging

import pytest

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_messaging.checks import (
    attempt_record_problem,
    delivery_job_problem,
    subscription_message_problem,
)
from webhooks_messaging.deadletters import (
    MAX_HEADERS,
    SAMPLE_BYTES,
    DeadLetters,
    Original,
    build_letter,
    letter_subject,
    origin_token,
)


def subscription_event(**fields: object) -> messages_pb2.SubscriptionDomainEvent:
    state = messages_pb2.SubscriptionState(
        id="sub-1",
        tenant="acme",
        version=1,
        webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST),
    )
    for name, value in fields.items():
        setattr(state, name, value)
    return messages_pb2.SubscriptionDomainEvent(subscription=state)


SUBJECT = "subscriptions.acme.subscription.sub-1"


def test_a_well_formed_subscription_message_is_accepted() -> None:
    assert subscription_message_problem(SUBJECT, subscription_event()) == ""
    certificate = messages_pb2.SubscriptionDomainEvent(
        certificate=messages_pb2.CertificateState(id="c-1", tenant="acme", version=2)
    )
    assert subscription_message_problem("subscriptions.acme.certificate.c-1", certificate) == ""


@pytest.mark.parametrize(
    ("subject", "event", "starts"),
    [
        ("subscriptions.globex.subscription.sub-1", subscription_event(), "subscription.tenant"),
        ("subscriptions.acme.subscription.sub-2", subscription_event(), "subscription.id"),
        ("subscriptions.acme.certificate.sub-1", subscription_event(), "state: a subscription"),
        ("subscriptions.acme.sub-1", subscription_event(), "subject"),
        (SUBJECT, messages_pb2.SubscriptionDomainEvent(), "state: neither"),
        (SUBJECT, subscription_event(version=0), "subscription.version"),
        (SUBJECT, subscription_event(tenant="no/such"), "subscription.tenant"),
    ],
)
def test_a_subscription_message_must_be_what_its_subject_says(
    subject: str, event: messages_pb2.SubscriptionDomainEvent, starts: str
) -> None:
    assert subscription_message_problem(subject, event).startswith(starts)


def test_out_of_range_values_of_a_subscription_state_are_refused() -> None:
    event = subscription_event()
    event.subscription.previous_valid_until.seconds = 2**62
    assert subscription_message_problem(SUBJECT, event).startswith(
        "subscription.previous_valid_until: out of range"
    )
    event = subscription_event()
    event.subscription.webhook.type = 99  # type: ignore[assignment]
    assert subscription_message_problem(SUBJECT, event) == "subscription.webhook.type: unknown"


def job(**fields: object) -> messages_pb2.DeliveryJob:
    made = messages_pb2.DeliveryJob(
        job_id="e:s",
        delivery_id="d",
        event_id="e",
        tenant="acme",
        subscription_id="s",
        attempt=1,
        payload_json=b"{}",
    )
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def test_a_job_must_be_of_its_subjects_tenant_and_subscription() -> None:
    assert delivery_job_problem("deliveries.jobs.acme.s", job()) == ""
    assert delivery_job_problem("deliveries.jobs.globex.s", job()).startswith("tenant:")
    assert delivery_job_problem("deliveries.jobs.acme.t", job()).startswith("subscription_id:")
    assert delivery_job_problem("deliveries.retry.acme.s", job()).startswith("subject:")
    assert delivery_job_problem("deliveries.jobs.acme.s", job(attempt=0)).startswith("attempt")
    stamped = job()
    stamped.occurred_at.seconds = -(2**62)
    assert delivery_job_problem("deliveries.jobs.acme.s", stamped).startswith("occurred_at")


def record(**fields: object) -> messages_pb2.AttemptRecord:
    made = messages_pb2.AttemptRecord(
        delivery_id="d",
        tenant="acme",
        subscription_id="s",
        attempt=1,
        outcome=messages_pb2.ATTEMPT_OUTCOME_FAILED,
    )
    for name, value in fields.items():
        setattr(made, name, value)
    return made


@pytest.mark.parametrize(
    ("subject", "made", "starts"),
    [
        ("attempts.acme.s", record(), ""),
        ("attempts.globex.s", record(), "tenant:"),
        ("attempts.acme.t", record(), "subscription_id:"),
        ("attempts.acme.s", record(outcome=0), "outcome"),
        ("attempts.acme.s", record(failure_class=77), "failure_class"),
        ("attempts.acme.s", record(delivery_id=""), "delivery_id"),
        ("attempts.acme.s", record(status_code=-1), "status_code"),
        ("attempts.acme.s", record(duration_ms=2**40), "duration_ms"),
        # A first attempt that succeeded, on its own subject; nothing else is there.
        ("attempts.acme.s.ok", record(outcome=messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED), ""),
        ("attempts.acme.s.ok", record(), "subject:"),
        ("attempts.acme.s.ok", record(outcome=1, attempt=2), "subject:"),
        ("attempts.acme.s.ok", record(outcome=1, series=1, manual=True), "subject:"),
        ("attempts.acme.s.no", record(outcome=1), "subject:"),
        ("attempts.acme.s.ok.x", record(outcome=1), "subject:"),
    ],
)
def test_an_attempt_record_must_be_storable(
    subject: str, made: messages_pb2.AttemptRecord, starts: str
) -> None:
    problem = attempt_record_problem(subject, made)
    assert problem.startswith(starts) if starts else problem == ""


def test_the_timestamp_that_froze_the_failures_view_is_refused() -> None:
    poison = record()
    poison.started_at.seconds = 2**62
    assert attempt_record_problem("attempts.acme.s", poison).startswith("started_at: out of range")


def test_a_letter_is_bounded_whatever_the_original() -> None:
    original = Original(
        subject="x" * 10_000,
        data=b"\xff" * (SAMPLE_BYTES * 3),
        headers={f"h{i}": "v" * 10_000 for i in range(100)},
        stream="SUBSCRIPTIONS",
        sequence=7,
    )
    letter = build_letter("router-table", "undecodable", "bad \udcff bytes " * 500, original)
    assert len(letter.data) == SAMPLE_BYTES and letter.data_size == SAMPLE_BYTES * 3
    assert len(letter.headers) == MAX_HEADERS
    assert all(len(v) <= 256 for v in letter.headers.values())
    assert len(letter.subject) <= 256 and len(letter.detail) <= 1000
    assert len(letter.SerializeToString()) < 128 * 1024  # DEADLETTERS' max message size
    assert (letter.stream, letter.stream_sequence) == ("SUBSCRIPTIONS", 7)


def test_a_letters_subject_names_its_original() -> None:
    assert origin_token("ATTEMPTS", 12, 0, b"") == "ATTEMPTS-12"
    assert origin_token("", 0, 42, b"") == "notification-42"
    assert origin_token("", 0, 0, b"abc") == origin_token("", 0, 0, b"abc")
    assert letter_subject("relay", "too-large", "notification-42") == (
        "deadletters.relay.too-large.notification-42"
    )


def test_set_aside_counts_every_record_and_logs_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = DeadLetters("failures-projector")  # no connection: counted and logged only
    with caplog.at_level(logging.WARNING, logger="webhooks_messaging.deadletters"):
        for sequence in range(1, 101):
            dead.set_aside("invalid", "started_at: out of range", Original(sequence=sequence))
        dead.set_aside("undecodable", "not an AttemptRecord", Original(sequence=101))
    assert dead.counts == {"invalid": 100, "undecodable": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one per kind, not one per record
    assert "(invalid)" in lines[0] and "(undecodable)" in lines[1]
