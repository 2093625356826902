"""The lanes: a tenant's token bucket (router lanes.py), the router's turn between lanes
(intake.bulk_next) and the sender's bulk share (intake.bulk_free)."""

from __future__ import annotations

import pytest

from webhooks_messaging import delivery_job_subject, events_subject, is_bulk_event, is_bulk_job
from webhooks_messaging.checks import delivery_job_problem
from webhooks_messaging.jobs import delivery_job
from webhooks_router.intake import BULK_EVERY, bulk_next
from webhooks_router.lanes import TenantLanes
from webhooks_sender.intake import bulk_free


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_beyond_the_bucket_goes_bulk() -> None:
    lanes = TenantLanes(rate=10, burst=5, clock=Clock())
    assert [lanes.bulk("a") for _ in range(7)] == [False] * 5 + [True] * 2


def test_the_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    clock = Clock()
    lanes = TenantLanes(rate=10, burst=5, clock=clock)
    for _ in range(5):
        lanes.bulk("a")
    assert lanes.bulk("a")
    clock.now += 0.25  # 2.5 tokens
    assert [lanes.bulk("a") for _ in range(3)] == [False, False, True]
    clock.now += 3600  # never more than the burst
    assert [lanes.bulk("a") for _ in range(6)] == [False] * 5 + [True]


def test_a_steady_rate_within_the_bucket_stays_standard() -> None:
    clock = Clock()
    lanes = TenantLanes(rate=200, burst=2000, clock=clock)
    for _ in range(10_000):  # 50 s at 200 events/s
        clock.now += 1 / 200
        assert not lanes.bulk("quiet")


def test_tenants_have_buckets_of_their_own() -> None:
    lanes = TenantLanes(rate=1, burst=2, clock=Clock())
    assert [lanes.bulk("a") for _ in range(3)] == [False, False, True]
    assert [lanes.bulk("b") for _ in range(2)] == [False, False]


def test_the_tenants_kept_are_bounded_least_recently_used_first() -> None:
    lanes = TenantLanes(rate=1, burst=1, max_tenants=2, clock=Clock())
    assert not lanes.bulk("a")
    assert not lanes.bulk("b")
    assert lanes.bulk("a")  # a is the most recent now
    assert not lanes.bulk("c")  # b is forgotten
    assert len(lanes) == 2
    assert lanes.bulk("a")  # a was kept, its bucket empty
    assert not lanes.bulk("b")  # b starts afresh


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TenantLanes(rate=0, burst=1)
    with pytest.raises(ValueError):
        TenantLanes(rate=1, burst=0)


def test_the_standard_lane_goes_first_but_bulk_gets_one_batch_in_four() -> None:
    order = []
    in_a_row = 0
    for _ in range(12):  # both lanes always have a batch ready
        if bulk_next(True, True, in_a_row):
            order.append("bulk")
            in_a_row = 0
        else:
            order.append("standard")
            in_a_row += 1
    assert order.count("bulk") == 12 // BULK_EVERY
    assert order[:BULK_EVERY] == ["standard"] * (BULK_EVERY - 1) + ["bulk"]


def test_a_lane_alone_goes_whenever_it_has_work() -> None:
    assert bulk_next(False, True, 0)
    assert not bulk_next(True, False, 10)
    assert not bulk_next(False, False, 0)


def test_the_bulk_lane_holds_at_most_half_the_sender() -> None:
    assert bulk_free(capacity=1024, held=0, held_bulk=0) == 512
    assert bulk_free(capacity=1024, held=600, held_bulk=500) == 12
    assert bulk_free(capacity=1024, held=1000, held_bulk=0) == 24  # the free slots bound it
    assert bulk_free(capacity=1024, held=512, held_bulk=512) == 0
    assert bulk_free(capacity=1, held=0, held_bulk=0) == 1


def test_the_lanes_subjects_keep_the_tenant_at_the_same_token() -> None:
    assert events_subject("acme", "User", "OnNew") == "events.acme.User.OnNew"
    assert events_subject("acme", "User", "OnNew", bulk=True) == "events-bulk.acme.User.OnNew"
    assert delivery_job_subject("acme", "s1", bulk=True) == "deliveries.bulk.acme.s1"
    assert is_bulk_event("events-bulk.acme.User.OnNew")
    assert not is_bulk_event("events.acme.User.OnNew")
    assert is_bulk_job("deliveries.bulk.acme.s1")
    assert not is_bulk_job("deliveries.jobs.acme.s1")


def test_a_job_checks_alike_on_either_lane() -> None:
    job = delivery_job(
        job_id="j",
        delivery_id="d1",
        event_id="e1",
        tenant="acme",
        subscription_id="s1",
        subscription_version=1,
        subscription_name="n",
        entity="User",
        trigger="OnNew",
        subchannel="",
        occurred_at=None,
        channel=None,
        payload_json=b"{}",
        replay=False,
    )
    for bulk in (False, True):
        assert delivery_job_problem(delivery_job_subject("acme", "s1", bulk=bulk), job) == ""
        assert "tenant" in delivery_job_problem(delivery_job_subject("other", "s1", bulk=bulk), job)
    assert "subject" in delivery_job_problem("deliveries.retry.acme.s1", job)
