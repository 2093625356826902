"""What a response means (outcomes.py) and when the next attempt is due (retries.py),
table-driven, in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webhooks.v1 import messages_pb2
from webhooks_sender.outcomes import SUCCEEDED, Outcome, response_outcome
from webhooks_sender.retries import RetryPolicy, schedule_time
from webhooks_sender.soap_faults import SoapFault

FC = messages_pb2.FailureClass
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "headers", "fault", "expected"),
    [
        (200, {}, None, SUCCEEDED),
        (204, {}, None, SUCCEEDED),
        (500, {}, None, Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 500")),
        (
            500,
            {},
            SoapFault("soap:Server", "down"),
            Outcome(FC.FAILURE_CLASS_SOAP_FAULT, "SOAP Fault soap:Server: down"),
        ),
        (
            200,
            {},
            SoapFault("soap:Client", "bad"),
            Outcome(FC.FAILURE_CLASS_SOAP_FAULT, "SOAP Fault soap:Client: bad"),
        ),
        (
            302,
            {"Location": "https://user:pw@elsewhere.example:8443/x?token=1"},
            None,
            Outcome(
                FC.FAILURE_CLASS_HTTP_STATUS,
                "HTTP 302: redirect to https://elsewhere.example:8443/x not followed",
            ),
        ),
        (
            301,
            {},
            None,
            Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 301: redirect to (none) not followed"),
        ),
        (
            429,
            {"Retry-After": "120"},
            None,
            Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 429", 120.0),
        ),
        (
            503,
            {"Retry-After": "Sun, 01 Mar 2026 12:01:00 GMT"},
            None,
            Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 503", 60.0),
        ),
        (503, {"Retry-After": "soon"}, None, Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 503")),
        # A gateway's 502 or 504 asks for a pause as much as a 429 (Standard Webhooks).
        (502, {"Retry-After": "7"}, None, Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 502", 7.0)),
        (504, {"Retry-After": "9"}, None, Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 504", 9.0)),
        (500, {"Retry-After": "120"}, None, Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 500")),
        (410, {}, None, Outcome(FC.FAILURE_CLASS_HTTP_STATUS, "HTTP 410", final=True)),
    ],
)
def test_response_outcome(
    status: int, headers: dict[str, str], fault: SoapFault | None, expected: Outcome
) -> None:
    assert response_outcome(status, headers, fault, NOW) == expected


def test_success_is_one_object() -> None:
    assert response_outcome(200, {}, None, NOW) is SUCCEEDED


POLICY = RetryPolicy(retries=3, interval_seconds=300, retry_after_max_seconds=3600)


@pytest.mark.parametrize(
    ("attempt", "final", "retry_after", "expected"),
    [
        (1, False, None, NOW + timedelta(seconds=300)),
        (3, False, None, NOW + timedelta(seconds=300)),
        (4, False, None, None),  # the last of 1 + 3 attempts
        (1, True, None, None),  # 410, or the subscription is gone
        (1, False, 10.0, NOW + timedelta(seconds=300)),  # never sooner than the interval
        (1, False, 900.0, NOW + timedelta(seconds=900)),
        (1, False, 86400.0, NOW + timedelta(seconds=3600)),  # at most the operator's bound
    ],
)
def test_next_attempt_at(
    attempt: int, final: bool, retry_after: float | None, expected: datetime | None
) -> None:
    assert POLICY.next_attempt_at(attempt, NOW, final=final, retry_after=retry_after) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (NOW, "2026-03-01T12:00:00Z"),
        (NOW + timedelta(microseconds=1), "2026-03-01T12:00:01Z"),  # never early
    ],
)
def test_schedule_time(at: datetime, expected: str) -> None:
    assert schedule_time(at) == expected
