"""The failed-event state machine in memory (webhooks_failures.failed_events): table-driven,
one row per rule; the view applying it on SQLite and PostgreSQL is test_failures_view."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from webhooks.v1 import messages_pb2
from webhooks_failures.failed_events import fold
from webhooks_failures.model import FAILED, RECOVERED, REDELIVERED, RETRYING

OK = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
FAIL = messages_pb2.ATTEMPT_OUTCOME_FAILED
ASKED = messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED
KEY = ("t1", "d1")


def rec(
    outcome: int,
    series: int = 1,
    attempt: int = 1,
    *,
    retry: bool = False,
    at: int = 0,
    message: str = "",
    delivery_id: str = "d1",
) -> messages_pb2.AttemptRecord:
    record = messages_pb2.AttemptRecord(
        tenant="t1",
        delivery_id=delivery_id,
        subscription_id="s1",
        series=series,
        attempt=attempt,
        outcome=outcome,  # type: ignore[arg-type]
        will_retry=retry,
        error_message=message,
    )
    record.started_at.FromMicroseconds(at)
    return record


@dataclass(frozen=True)
class Case:
    name: str
    records: list[messages_pb2.AttemptRecord]
    known: int | None = None  # the delivery's highest series when the view already has it
    was: tuple[int, int] = (FAILED, 1)  # then its state and failed attempts
    seen: tuple[tuple[int, int], ...] = ()  # (series, attempt) already in its history
    state: int | None = None  # None: no change of state (or no failed event at all)
    new: bool | None = None  # None: the batch changes nothing for the delivery
    attempts: int = 0
    failed: int = 0
    max_series: int = 1
    head: tuple[int, int] | None = None  # the head attempt set by the batch
    counts: tuple[int, int] = (0, 0)  # unresolved failed attempts, failed events added


CASES = [
    Case("a failure that will be retried", [rec(FAIL, retry=True)], state=RETRYING, new=True,
         attempts=1, failed=1, head=(1, 1), counts=(1, 1)),
    Case("a failure without retry", [rec(FAIL)], state=FAILED, new=True, attempts=1,
         failed=1, head=(1, 1), counts=(1, 1)),
    Case("a success of a delivery that never failed", [rec(OK)]),
    Case("a redelivery request of an unknown delivery", [rec(ASKED, 2, 0)]),
    Case("retries then success: recovered at once, counts nothing", [rec(FAIL, retry=True),
         rec(OK, attempt=2)], state=RECOVERED, new=True, attempts=2, failed=1, head=(1, 2)),
    Case("a success of a known failed event takes its counts back", [rec(OK, attempt=3)],
         known=1, state=RECOVERED, new=False, attempts=1, head=(1, 3), counts=(-1, -1)),
    Case("a success of a known event with 3 failures", [rec(OK, attempt=4)], known=1,
         was=(RETRYING, 3), state=RECOVERED, new=False, attempts=1, head=(1, 4),
         counts=(-3, -1)),
    Case("a recovered event failing again in a new series counts again",
         [rec(ASKED, 2, 0), rec(FAIL, 2, 1)], known=1, was=(RECOVERED, 2), state=FAILED,
         new=False, attempts=1, failed=1, max_series=2, head=(2, 1), counts=(3, 1)),
    Case("a redelivery of a recovered event: unresolved again until it succeeds",
         [rec(ASKED, 2, 0)], known=1, was=(RECOVERED, 2), state=REDELIVERED, new=False,
         max_series=2, counts=(2, 1)),
    Case("a late failure of a replaced series of a recovered event", [rec(FAIL, 1, 4)],
         known=2, was=(RECOVERED, 2), new=False, attempts=1, failed=1, max_series=2),
    Case("a failure of a known failed event", [rec(FAIL, attempt=2)], known=1,
         state=FAILED, new=False, attempts=1, failed=1, head=(1, 2), counts=(1, 0)),
    Case("a redelivery request", [rec(ASKED, 2, 0)], known=1, state=REDELIVERED, new=False,
         max_series=2),
    Case("a redelivery followed by its first attempt", [rec(ASKED, 2, 0), rec(FAIL, 2, 1,
         retry=True)], known=1, state=RETRYING, new=False, attempts=1, failed=1,
         max_series=2, head=(2, 1), counts=(1, 0)),
    Case("a late attempt of a replaced series", [rec(FAIL, 1, 4)], known=2, new=False,
         attempts=1, failed=1, max_series=2, counts=(1, 0)),
    Case("a late redelivery request of a replaced series", [rec(ASKED, 2, 0)], known=3,
         new=False, max_series=3),
    Case("a record already in the history", [rec(FAIL, 1, 2)], known=1, seen=((1, 2),)),
    Case("a record twice in the batch", [rec(FAIL), rec(FAIL)], state=FAILED, new=True,
         attempts=1, failed=1, head=(1, 1), counts=(1, 1)),
    Case("a record without a delivery id", [rec(FAIL, delivery_id="")]),
    Case("a record of no known outcome", [rec(messages_pb2.ATTEMPT_OUTCOME_UNSPECIFIED)]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_state_rules(case: Case) -> None:
    known = {} if case.known is None else {KEY: case.known}
    seen = {(*KEY, s, a) for s, a in case.seen}
    result = fold(case.records, known, seen, {KEY: case.was} if known else {})
    if case.new is None:
        assert result.changes == {} and result.history == [] and result.counts == {}
        return
    change = result.changes[KEY]
    assert change.new is case.new
    assert change.state == case.state
    assert (change.d_attempts, change.d_failed) == (case.attempts, case.failed)
    assert change.max_series == case.max_series
    head = None if change.latest is None else (change.latest.series, change.latest.attempt)
    assert head == case.head
    assert result.counts.get(("t1", "s1"), [0, 0]) == list(case.counts)


def test_the_newest_time_whatever_the_order_the_failure_last_in_stream_order() -> None:
    result = fold(
        [
            rec(FAIL, attempt=2, retry=True, at=300, message="second"),
            rec(FAIL, attempt=1, retry=True, at=100, message="first"),
            rec(OK, attempt=3, at=200),
        ],
        {},
        set(),
    )
    change = result.changes[KEY]
    assert change.last_us == 300
    assert change.failure is not None and change.failure.error_message == "first"
    assert change.state == RECOVERED


def test_history_in_batch_order_and_the_seen_keys_left_alone() -> None:
    seen = {("t1", "d1", 1, 1)}
    records = [rec(FAIL, 1, 1), rec(FAIL, 1, 2), rec(FAIL, 1, 3)]
    result = fold(records, {KEY: 1}, seen)
    assert [key for key, _ in result.history] == [("t1", "d1", 1, 2), ("t1", "d1", 1, 3)]
    assert seen == {("t1", "d1", 1, 1)}
