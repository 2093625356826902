"""An error code filter by failure class finds every failure of that class, also those
with an HTTP status (a SOAP fault's error code is its 500); a status finds its status,
whatever the class. Through the request's filter (filter_of), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.postgres import drop_schemas
from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_failures.filters import filter_of
from webhooks_failures.view import FailuresView, PostgresFailuresView, SQLiteFailuresView

FC = messages_pb2.FailureClass
T0 = datetime(2026, 3, 1, tzinfo=UTC)
# delivery id -> (status, class), applied oldest first: listings are newest first.
FAILURES = {
    "dlv-soap": (500, FC.FAILURE_CLASS_SOAP_FAULT),
    "dlv-http500": (500, FC.FAILURE_CLASS_HTTP_STATUS),
    "dlv-timeout": (0, FC.FAILURE_CLASS_TIMEOUT),
    "dlv-tls": (0, FC.FAILURE_CLASS_TLS),
    "dlv-http503": (503, FC.FAILURE_CLASS_HTTP_STATUS),
}


def _record(number: int, delivery_id: str, status: int, failure_class: int) -> object:
    record = messages_pb2.AttemptRecord(
        delivery_id=delivery_id,
        series=1,
        attempt=1,
        tenant="acme",
        subscription_id="sub-a",
        subscription_name="A",
        event_id=f"evt-{number}",
        entity="Object",
        trigger="OnNew",
        outcome=messages_pb2.ATTEMPT_OUTCOME_FAILED,
        status_code=status,
        failure_class=failure_class,  # type: ignore[arg-type]
        error_message=f"failure {number}",
        request_body=b"{}",
        request_content_type="application/json",
    )
    record.started_at.FromDatetime(T0 + timedelta(seconds=number))
    return record


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def view(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FailuresView]:
    schema = ""
    if request.param == "sqlite":
        made: FailuresView = SQLiteFailuresView(tmp_path / "view.db")
    else:
        schema = f"test_failures_{uuid.uuid4().hex[:12]}"
        made = PostgresFailuresView(request.getfixturevalue("postgres_url"), schema)
    records = [
        _record(n, delivery, status, failure_class)
        for n, (delivery, (status, failure_class)) in enumerate(FAILURES.items(), start=1)
    ]
    made.apply(0, list(enumerate(records, start=1)))  # type: ignore[arg-type]
    yield made
    made.close()
    if schema:
        drop_schemas(request.getfixturevalue("postgres_url"), [schema])


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["soap_fault"], ["dlv-soap"]),
        (["SOAP fault"], ["dlv-soap"]),
        (["soap-fault"], ["dlv-soap"]),
        (["500"], ["dlv-http500", "dlv-soap"]),
        (["timeout"], ["dlv-timeout"]),
        (["Timed out"], ["dlv-timeout"]),  # the label the console and the CLI show
        (["TLS / certificate error"], ["dlv-tls"]),
        (["soap_fault", "timeout"], ["dlv-timeout", "dlv-soap"]),
        (["500", "tls"], ["dlv-tls", "dlv-http500", "dlv-soap"]),
        (["503", "soap_fault", "tls"], ["dlv-http503", "dlv-tls", "dlv-soap"]),
        (["connect"], []),
    ],
)
def test_error_codes_by_status_and_by_class(
    view: FailuresView, codes: list[str], expected: list[str]
) -> None:
    wanted = filter_of(failures_pb2.FailedEventFilter(error_codes=codes))
    listed: list[str] = []
    token = ""
    while True:  # pages of 1: the keyset pagination with the class condition too
        page = view.list_failed("acme", wanted, 1, token)
        listed += [event.delivery_id for event in page.failed_events]
        token = page.next_page_token
        if not token:
            break
    assert listed == expected
    assert view.count_matching("acme", wanted) == len(expected)
