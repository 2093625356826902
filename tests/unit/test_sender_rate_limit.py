"""The rate limit's pure pieces (services/sender/webhooks_sender/rate_limit.py): how a job
goes about its slot, and the slot a parked job carries."""

from __future__ import annotations

import pytest

from webhooks_sender.rate_limit import (
    RATE_SLOT_HEADER,
    SCHEDULE_LEAD_SECONDS,
    Pace,
    carried_slot,
    pace,
    with_slot,
    without_slot,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [
        (-5.0, Pace()),  # a slot already past (a parked job that came back late): at once
        (0.0, Pace()),
        (0.05, Pace()),
        (0.5, Pace(wait=0.5)),
        (1.0, Pace(wait=1.0)),
        (1.5, Pace(park_until=NOW + 1.5 - SCHEDULE_LEAD_SECONDS)),
        (9.8, Pace(park_until=NOW + 9.8 - SCHEDULE_LEAD_SECONDS)),
    ],
)
def test_a_near_slot_is_sent_or_waited_for_and_a_far_one_parked_ahead_of_it(
    ahead: float, expected: Pace
) -> None:
    got = pace(NOW + ahead, NOW)
    assert got.wait == pytest.approx(expected.wait)
    if expected.park_until is None:
        assert got.park_until is None
    else:
        assert got.park_until == pytest.approx(expected.park_until)


def test_a_parked_job_carries_its_slot_in_milliseconds_and_brings_it_back() -> None:
    headers = with_slot({"traceparent": "00-abc"}, NOW + 2.25)
    assert headers == {"traceparent": "00-abc", RATE_SLOT_HEADER: "1800000002250"}
    assert carried_slot(headers) == pytest.approx(NOW + 2.25)


@pytest.mark.parametrize("headers", [None, {}, {"traceparent": "x"}, {RATE_SLOT_HEADER: "soon"}])
def test_no_readable_slot_means_reserving_one(headers: dict[str, str] | None) -> None:
    assert carried_slot(headers) is None


def test_parked_for_another_reason_a_job_leaves_its_slot_behind() -> None:
    assert without_slot({"traceparent": "x"}) is None  # the message's own headers serve
    assert without_slot(None) is None
    assert without_slot({"traceparent": "x", RATE_SLOT_HEADER: "1"}) == {"traceparent": "x"}
