"""The failures view on SQLite files and PostgreSQL schemas: the state rules, counts, every
filter, pagination while failures arrive, details, redelivery targets, expiry and
idempotency. Expected answers come from the generator's plans (tests/support), computed
here in plain Python, never by the view's code."""

from __future__ import annotations

import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.failures_history import (
    FAILED,
    RECOVERED,
    REDELIVERED,
    RETRYING,
    Expected,
    Generator,
    History,
)
from tests.support.postgres import drop_schemas
from webhooks.v1 import messages_pb2
from webhooks_failures import view_schema
from webhooks_failures.model import MAX_PAGE_SIZE, Filter, InvalidPageToken
from webhooks_failures.view import FailuresView, PostgresFailuresView, SQLiteFailuresView
from webhooks_storage import PositionMoved

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 1, tzinfo=UTC)

ViewFactory = Callable[[], FailuresView]


def at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@pytest.fixture(params=STORES)
def new_view(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewFactory]:
    """Factory of empty views of the parametrized store."""
    made: list[tuple[FailuresView, str]] = []

    def make() -> FailuresView:
        if request.param == "sqlite":
            view: FailuresView = SQLiteFailuresView(tmp_path / f"{uuid.uuid4().hex}.db")
            made.append((view, ""))
        else:
            # The view creates its schema when missing (as a fresh deployment does).
            schema = f"test_failures_{uuid.uuid4().hex[:12]}"
            view = PostgresFailuresView(request.getfixturevalue("postgres_url"), schema)
            made.append((view, schema))
        return view

    yield make
    for view, schema in made:
        view.close()
        if schema:
            drop_schemas(request.getfixturevalue("postgres_url"), [schema])


def apply_all(
    view: FailuresView,
    records: Sequence[messages_pb2.AttemptRecord],
    batch: int = 250,
    start: int = 0,
) -> int:
    """Apply records as stream sequences start+1.. in batches; returns the position."""
    position = start
    for i in range(0, len(records), batch):
        chunk = [(position + j + 1, r) for j, r in enumerate(records[i : i + batch])]
        view.apply(position, chunk)
        position = chunk[-1][0]
    return position


def all_pages(view: FailuresView, tenant: str, f: Filter, size: int = 7) -> list[Any]:
    rows: list[Any] = []
    token = ""
    while True:
        page = view.list_failed(tenant, f, size, token)
        assert len(page.failed_events) <= size
        rows += page.failed_events
        token = page.next_page_token
        if not token:
            return rows


# ---- the state rules, one delivery at a time


def record(
    outcome: str,
    series: int = 1,
    attempt: int = 1,
    *,
    second: int = 0,
    status: int = 0,
    failure_class: int = messages_pb2.FAILURE_CLASS_UNSPECIFIED,
    retry: bool = False,
    message: str = "",
    body: bytes = b"{}",
) -> messages_pb2.AttemptRecord:
    outcomes = {
        "ok": messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED,
        "fail": messages_pb2.ATTEMPT_OUTCOME_FAILED,
        "redeliver": messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED,
    }
    r = messages_pb2.AttemptRecord(
        delivery_id="dlv-1",
        series=series,
        attempt=attempt,
        tenant="acme",
        subscription_id="sub-a",
        subscription_name="A",
        event_id="evt-1",
        entity="Object",
        trigger="OnNew",
        outcome=outcomes[outcome],
        status_code=status,
        failure_class=failure_class,  # type: ignore[arg-type]
        error_message=message,
        will_retry=retry,
        request_body=body,
        request_content_type="application/json",
    )
    r.started_at.FromDatetime(T0 + timedelta(seconds=second))
    return r


HTTP = messages_pb2.FAILURE_CLASS_HTTP_STATUS
TIMEOUT = messages_pb2.FAILURE_CLASS_TIMEOUT
# name -> (records, expected (state, error_code, retry_attempts, failed_attempts) or None)
CASES: dict[str, tuple[list[messages_pb2.AttemptRecord], tuple[int, str, int, int] | None]] = {
    "failure with a retry scheduled: retrying": (
        [record("fail", status=500, failure_class=HTTP, retry=True)],
        (RETRYING, "500", 0, 1),
    ),
    "retries exhausted: failed": (
        [
            record("fail", 1, 1, status=503, failure_class=HTTP, retry=True),
            record("fail", 1, 2, second=1, failure_class=TIMEOUT, retry=False),
        ],
        (FAILED, "timeout", 1, 2),
    ),
    "410 Gone: failed at once": (
        [record("fail", status=410, failure_class=HTTP, retry=False)],
        (FAILED, "410", 0, 1),
    ),
    "a success after a failure: recovered": (
        [
            record("fail", 1, 1, status=500, failure_class=HTTP, retry=True),
            record("ok", 1, 2, second=1, status=200),
        ],
        (RECOVERED, "500", 1, 1),
    ),
    "a success alone: not a failed event": ([record("ok", status=200)], None),
    "a redelivery requested: redelivered": (
        [
            record("fail", 1, 1, status=500, failure_class=HTTP),
            record("redeliver", 2, 0, second=5),
        ],
        (REDELIVERED, "500", 0, 1),
    ),
    "then the new series fails again: follows it": (
        [
            record("fail", 1, 1, status=500, failure_class=HTTP),
            record("redeliver", 2, 0, second=5),
            record("fail", 2, 1, second=6, status=502, failure_class=HTTP, retry=True),
        ],
        (RETRYING, "502", 1, 2),
    ),
    "then the new series succeeds: recovered": (
        [
            record("fail", 1, 1, status=500, failure_class=HTTP),
            record("redeliver", 2, 0, second=5),
            record("ok", 2, 1, second=6, status=200),
        ],
        (RECOVERED, "500", 1, 1),
    ),
    "a late attempt of the replaced series counts but does not change the state": (
        [
            record("fail", 1, 1, status=500, failure_class=HTTP, retry=True),
            record("redeliver", 2, 0, second=5),
            record("fail", 1, 2, second=6, status=503, failure_class=HTTP),
        ],
        (REDELIVERED, "500", 1, 2),
    ),
    "a redelivery of a delivery not in the view adds nothing": (
        [record("redeliver", 2, 0)],
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("one_batch", [True, False], ids=["one batch", "batch per record"])
def test_state_rules(new_view: ViewFactory, name: str, one_batch: bool) -> None:
    records, expected = CASES[name]
    view = new_view()
    apply_all(view, records, batch=len(records) if one_batch else 1)
    details = view.details("acme", "dlv-1")
    if expected is None:
        assert details is None
        assert view.counts("acme", []) == []
        return
    assert details is not None
    o = details.overview
    assert (o.state, o.error_code, o.retry_attempts) == expected[:3]
    # The counts (the Webhooks list's ⚠) are of the unresolved failed events only.
    counts = view.counts("acme", ["sub-a"])
    unresolved = (expected[3], 1) if o.state != RECOVERED else (0, 0)
    assert [(c.failed_attempts, c.failed_events) for c in counts] == [unresolved]
    assert len(details.trial_history) == len(records)
    assert view.position() == len(records)


# ---- a generated history: filters, counts, details, targets


@pytest.fixture(scope="module")
def history() -> History:
    return Generator(seed=7, subscriptions=5).history(3000)


@pytest.fixture(params=STORES, scope="module")
def loaded(
    request: pytest.FixtureRequest,
    history: History,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FailuresView]:
    """One view holding the whole history (read-only tests share it)."""
    schema = ""
    if request.param == "sqlite":
        view: FailuresView = SQLiteFailuresView(tmp_path_factory.mktemp("fv") / "view.db")
    else:
        schema = f"test_failures_{uuid.uuid4().hex[:12]}"
        view = PostgresFailuresView(request.getfixturevalue("postgres_url"), schema)
    apply_all(view, history.records)
    yield view
    view.close()
    if schema:
        drop_schemas(request.getfixturevalue("postgres_url"), [schema])


def matching(history: History, tenant: str, f: Filter) -> list[str]:
    """The delivery ids ``f`` selects, newest first, in plain Python."""

    def keep(e: Expected) -> bool:
        return (
            e.tenant == tenant
            and (not f.subscription_ids or e.subscription_id in f.subscription_ids)
            and (not f.entity or e.entity == f.entity)
            and (not f.trigger or e.trigger == f.trigger)
            and (f.channel is None or e.channel == f.channel)
            and (not f.subchannel or e.subchannel == f.subchannel)
            and (not f.error_codes or e.error_code in f.error_codes)
            and (not f.states or e.state in f.states)
            and (f.since is None or at(e.last_attempt_us) >= f.since)
            and (f.until is None or at(e.last_attempt_us) < f.until)
            and (f.message_contains.lower() in e.error_message.lower())
            and (f.min_retry_attempts is None or e.attempts - 1 >= f.min_retry_attempts)
        )

    found = [e for e in history.expected.values() if keep(e)]
    found.sort(key=lambda e: (e.last_attempt_us, e.delivery_id), reverse=True)
    return [e.delivery_id for e in found]


def some_time(history: History, fraction: float) -> datetime:
    times = sorted(e.last_attempt_us for e in history.expected.values())
    return at(times[int(len(times) * fraction)])


FILTERS: dict[str, Callable[[History], Filter]] = {
    "none": lambda h: Filter(),
    "one subscription": lambda h: Filter(subscription_ids=("sub-1",)),
    "two subscriptions": lambda h: Filter(subscription_ids=("sub-3", "sub-0")),
    "entity": lambda h: Filter(entity="Invoice"),
    "trigger": lambda h: Filter(trigger="OnDelete"),
    "channel": lambda h: Filter(channel=2),
    "subchannel": lambda h: Filter(subchannel="mobile"),
    "one error code": lambda h: Filter(error_codes=("503",)),
    "codes and classes": lambda h: Filter(error_codes=("timeout", "410", "tls")),
    "one state": lambda h: Filter(states=(RETRYING,)),
    "two states": lambda h: Filter(states=(FAILED, REDELIVERED)),
    "since": lambda h: Filter(since=some_time(h, 0.7)),
    "until": lambda h: Filter(until=some_time(h, 0.2)),
    "time range": lambda h: Filter(since=some_time(h, 0.3), until=some_time(h, 0.6)),
    "message, other case": lambda h: Filter(message_contains="bad GATEWAY"),
    "message with %": lambda h: Filter(message_contains="100%"),
    "message with _": lambda h: Filter(message_contains="PROXY_1"),
    "message with a lone _": lambda h: Filter(message_contains="_"),
    "message nowhere": lambda h: Filter(message_contains="zebra"),
    "at least 2 retry attempts": lambda h: Filter(min_retry_attempts=2),
    "retried, failed": lambda h: Filter(min_retry_attempts=1, states=(FAILED,)),
    "subscription and state": lambda h: Filter(subscription_ids=("sub-2",), states=(FAILED,)),
    "entity, trigger and channel": lambda h: Filter(entity="Object", trigger="OnNew", channel=1),
    "codes, states and subscriptions": lambda h: Filter(
        subscription_ids=("sub-1", "sub-4"),
        error_codes=("500", "502", "timeout"),
        states=(RETRYING, FAILED, RECOVERED),
    ),
    "everything": lambda h: Filter(
        subscription_ids=("sub-0", "sub-1", "sub-2"),
        entity="Contact",
        states=(FAILED, RECOVERED, RETRYING),
        since=some_time(h, 0.1),
        until=some_time(h, 0.9),
        message_contains="http",
        subchannel="web",
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_alone_and_combined(loaded: FailuresView, history: History, name: str) -> None:
    f = FILTERS[name](history)
    for tenant in ("acme", "globex"):
        expected = matching(history, tenant, f)
        listed = all_pages(loaded, tenant, f)
        assert [e.delivery_id for e in listed] == expected
        assert loaded.count_matching(tenant, f) == len(expected)
    if name not in ("message nowhere",):
        assert matching(history, "acme", f), "the filter should select something"


def test_listed_rows_carry_the_overview(loaded: FailuresView, history: History) -> None:
    for e in all_pages(loaded, "globex", Filter(), size=500):
        x = history.expected[("globex", e.delivery_id)]
        assert e.tenant == "globex"
        assert (e.subscription_id, e.subscription_name) == (
            x.subscription_id,
            f"Hook {x.subscription_id}",
        )
        assert (e.entity, e.trigger, e.subchannel) == (x.entity, x.trigger, x.subchannel)
        assert (e.channel if e.HasField("channel") else None) == x.channel
        assert (e.state, e.error_code, e.error_message) == (x.state, x.error_code, x.error_message)
        assert e.retry_attempts == x.attempts - 1
        assert e.last_attempt_at.ToMicroseconds() == x.last_attempt_us
        assert e.event_id == f"evt-{e.delivery_id}"


def test_counts_per_subscription(loaded: FailuresView, history: History) -> None:
    for tenant in ("acme", "globex"):
        expected: dict[str, list[int]] = {}
        for e in history.expected.values():
            if e.tenant == tenant and e.state != RECOVERED:  # only the unresolved count
                count = expected.setdefault(e.subscription_id, [0, 0])
                count[0] += e.failed_attempts
                count[1] += 1
        counts = loaded.counts(tenant, [])
        assert {c.subscription_id: [c.failed_attempts, c.failed_events] for c in counts} == expected
        named = loaded.counts(tenant, ["sub-3", "unknown", "sub-3"])
        assert [(c.subscription_id, c.failed_attempts, c.failed_events) for c in named] == [
            ("sub-3", *expected.get("sub-3", [0, 0])),
            ("unknown", 0, 0),
        ]


def test_details_hold_the_trial_history_in_order(loaded: FailuresView, history: History) -> None:
    redelivered = [e for e in history.expected.values() if e.series > 1]
    assert redelivered
    for x in redelivered[:20] + list(history.expected.values())[:20]:
        details = loaded.details(x.tenant, x.delivery_id)
        assert details is not None
        assert details.overview.delivery_id == x.delivery_id
        assert [(r.series, r.attempt) for r in details.trial_history] == sorted(x.history)
        markers = [r for r in details.trial_history if r.attempt == 0]
        assert all(r.requested_by == "ops" for r in markers)
        latest = max(a for a in x.history if a[1] > 0)
        assert details.payload == f'{{"delivery":"{x.delivery_id}","try":{latest[1]}}}'.encode()
        assert details.payload_content_type == "application/json"
    acme = next(e for e in history.expected.values() if e.tenant == "acme")
    assert loaded.details("globex", acme.delivery_id) is None  # another tenant's
    assert loaded.details("acme", "no-such-delivery") is None


def test_redelivery_targets(loaded: FailuresView, history: History) -> None:
    x = next(e for e in history.expected.values() if e.series > 1 and e.tenant == "acme")
    (target,) = loaded.redelivery_targets("acme", delivery_id=x.delivery_id)
    assert (target.delivery_id, target.subscription_id, target.tenant) == (
        x.delivery_id,
        x.subscription_id,
        "acme",
    )
    assert target.next_series == x.series + 1
    assert (target.entity, target.trigger, target.channel) == (x.entity, x.trigger, x.channel)
    latest = max(a for a in x.history if a[1] > 0)
    assert target.payload_json == f'{{"delivery":"{x.delivery_id}","try":{latest[1]}}}'.encode()
    assert target.occurred_at is not None and target.occurred_at.tzinfo is not None
    assert 1 <= target.subscription_version <= 5
    assert loaded.redelivery_targets("globex", delivery_id=x.delivery_id) == []

    f = Filter(states=(FAILED,))
    targets = loaded.redelivery_targets("acme", filter=f)
    assert [t.delivery_id for t in targets] == matching(history, "acme", f)
    assert len(loaded.redelivery_targets("acme", filter=f, limit=3)) == 3


def test_bad_page_tokens(loaded: FailuresView) -> None:
    first = loaded.list_failed("acme", Filter(), 5, "")
    assert first.next_page_token
    forged = urlsafe_b64encode(b'[1, "0000", "x", 5]').decode()
    for token in ("garbage!", "e30", forged, first.next_page_token[:-3]):
        with pytest.raises(InvalidPageToken):
            loaded.list_failed("acme", Filter(), 5, token)
    with pytest.raises(InvalidPageToken):  # another filter
        loaded.list_failed("acme", Filter(states=(FAILED,)), 5, first.next_page_token)
    with pytest.raises(InvalidPageToken):  # another tenant
        loaded.list_failed("globex", Filter(), 5, first.next_page_token)
    # The same filter built again is the same filter.
    again = loaded.list_failed("acme", Filter(), 5, first.next_page_token)
    assert again.failed_events[0].delivery_id != first.failed_events[-1].delivery_id


def test_page_sizes_are_bounded(loaded: FailuresView) -> None:
    assert len(loaded.list_failed("acme", Filter(), 0, "").failed_events) == 50
    total = loaded.count_matching("acme", Filter())
    assert total > 50
    page = loaded.list_failed("acme", Filter(), 10_000, "")
    assert len(page.failed_events) == min(total, MAX_PAGE_SIZE)


# ---- changes: pagination while failures arrive, idempotency, expiry


def test_pages_have_no_gaps_or_duplicates_while_failures_arrive(
    new_view: ViewFactory, history: History
) -> None:
    view = new_view()
    half = len(history.records) // 2
    position = apply_all(view, history.records[:half])
    f = Filter(states=(RETRYING, FAILED, REDELIVERED, RECOVERED))
    snapshot = all_pages(view, "acme", f, size=500)
    first = view.list_failed("acme", f, 10, "")
    cursor = (
        first.failed_events[-1].last_attempt_at.ToMicroseconds(),
        first.failed_events[-1].delivery_id,
    )
    below = {
        e.delivery_id: e.last_attempt_at.ToMicroseconds()
        for e in snapshot
        if (e.last_attempt_at.ToMicroseconds(), e.delivery_id) < cursor
    }

    # The rest of the history arrives between every two pages (new failures, retries).
    rest = history.records[half:]
    step = len(rest) // 10 + 1  # all of it within the first ten pages (of about twenty)
    seen = [e.delivery_id for e in first.failed_events]
    token = first.next_page_token
    later: list[Any] = []
    while token:
        if rest:
            position = apply_all(view, rest[:step], start=position)
            rest = rest[step:]
        page = view.list_failed("acme", f, 10, token)
        later += page.failed_events
        token = page.next_page_token
    assert rest == [], "every record arrived while paging"
    ids = [e.delivery_id for e in later]
    assert len(ids) == len(set(ids)) and not set(ids) & set(seen), "no duplicates"
    keys = [(e.last_attempt_at.ToMicroseconds(), e.delivery_id) for e in later]
    assert keys == sorted(keys, reverse=True) and all(k < cursor for k in keys)
    # No gaps: every row below the cursor is there, unless an attempt since moved it up.
    now = {
        e.delivery_id: e.last_attempt_at.ToMicroseconds() for e in all_pages(view, "acme", f, 500)
    }
    unchanged = {d for d, us in below.items() if now.get(d) == us}
    assert unchanged <= set(ids)
    assert set(ids) <= set(below)
    assert len(unchanged) > 100 and len(unchanged) < len(below), "both kinds of rows occur"


def test_a_batch_applied_again_changes_nothing(new_view: ViewFactory, history: History) -> None:
    view = new_view()
    records = history.records[:2000]
    n = apply_all(view, records)
    before = view.dump()
    # A kill between the write and the ack: the same records come again, at their own
    # sequences (the position then stays) or republished at new ones.
    view.apply(n, [(seq, r) for seq, r in enumerate(records, 1)][1500:])
    assert view.dump() == before and view.position() == n
    view.apply(n, [(n + i, r) for i, r in enumerate(records[1200:], 1)])
    assert view.dump() == before
    assert view.position() == n + 800
    # Duplicates inside one batch count once too.
    twice = new_view()
    twice.apply(0, list(enumerate(records[:300] + records[:300], 1)))
    once = new_view()
    once.apply(0, list(enumerate(records[:300], 1)))
    assert twice.dump() == once.dump()


def test_a_moved_position_discards_the_batch(new_view: ViewFactory, history: History) -> None:
    view = new_view()
    n = apply_all(view, history.records[:100])
    before = view.dump()
    with pytest.raises(PositionMoved):
        view.apply(n - 1, [(n + 1, history.records[100])])
    assert view.dump() == before and view.position() == n
    view.apply(n, [], position=n + 3)  # skipped messages only
    assert view.position() == n + 3


def test_expire_removes_old_failed_events(new_view: ViewFactory, history: History) -> None:
    view = new_view()
    apply_all(view, history.records)
    cutoff = some_time(history, 0.4)
    old = [e for e in history.expected.values() if at(e.last_attempt_us) < cutoff]
    kept = [e for e in history.expected.values() if at(e.last_attempt_us) >= cutoff]
    assert view.expire(cutoff, chunk=97) == len(old)
    assert view.expire(cutoff) == 0
    for e in old[:20]:
        assert view.details(e.tenant, e.delivery_id) is None
    for tenant in ("acme", "globex"):
        assert {e.delivery_id for e in all_pages(view, tenant, Filter(), 500)} == {
            e.delivery_id for e in kept if e.tenant == tenant
        }
        expected: dict[str, list[int]] = {}
        for e in kept:
            if e.tenant == tenant and e.state != RECOVERED:
                count = expected.setdefault(e.subscription_id, [0, 0])
                count[0] += e.failed_attempts
                count[1] += 1
        counts = view.counts(tenant, [])
        assert {c.subscription_id: [c.failed_attempts, c.failed_events] for c in counts} == expected
    history_rows = view.dump()["history"]
    assert len(history_rows) == sum(len(e.history) for e in kept)
    assert view.expire(T0 + timedelta(days=3650)) == len(kept)
    assert view.counts("acme", []) == [] and view.dump()["history"] == []


def test_a_shadow_swapped_in_replaces_the_view(new_view: ViewFactory, history: History) -> None:
    view = new_view()
    apply_all(view, history.records[:500])
    shadow = view.fresh_shadow()
    n = apply_all(shadow, history.records)
    assert view.swap_in(shadow) == len(history.expected)
    assert view.position() == n
    reference = new_view()
    apply_all(reference, history.records, batch=1000)
    assert view.dump() == reference.dump()
    # A second shadow (index names must not collide with the swapped-in ones).
    again = view.fresh_shadow()
    apply_all(again, history.records[:10])
    view.swap_in(again)
    assert view.position() == 10


# ---- the counts are of the unresolved failed events


def test_a_recovery_takes_the_events_counts_back_and_a_new_failure_gives_them_again(
    new_view: ViewFactory,
) -> None:
    view = new_view()
    position = apply_all(
        view,
        [
            record("fail", 1, 1, status=500, failure_class=HTTP, retry=True),
            record("fail", 1, 2, second=1, status=500, failure_class=HTTP),
        ],
    )
    assert view.counts("acme", []) == view.counts("acme", ["sub-a"])
    assert [(c.failed_attempts, c.failed_events) for c in view.counts("acme", ["sub-a"])] == [
        (2, 1)
    ]
    position = apply_all(
        view,
        [record("redeliver", 2, 0, second=5), record("ok", 2, 1, second=6, status=200)],
        start=position,
    )
    assert [(c.failed_attempts, c.failed_events) for c in view.counts("acme", ["sub-a"])] == [
        (0, 0)
    ]
    assert view.counts("acme", []) == []
    apply_all(
        view,
        [
            record("redeliver", 3, 0, second=7),
            record("fail", 3, 1, second=8, status=503, failure_class=HTTP),
        ],
        start=position,
    )
    assert [(c.failed_attempts, c.failed_events) for c in view.counts("acme", ["sub-a"])] == [
        (3, 1)
    ]


def test_recovered_failed_events_expire_and_their_row_goes_with_them(
    new_view: ViewFactory,
) -> None:
    view = new_view()
    apply_all(
        view,
        [
            record("fail", 1, 1, status=500, failure_class=HTTP, retry=True),
            record("ok", 1, 2, second=1, status=200),
        ],
    )
    assert view.counts("acme", []) == []
    assert len(view.dump()["counts"]) == 1, "the subscription's row, at zero"
    assert view.expire(T0 - timedelta(days=1)) == 0
    assert view.expire(T0 + timedelta(days=1)) == 1
    assert view.details("acme", "dlv-1") is None
    assert view.dump()["counts"] == []


def test_a_view_from_before_gets_counts_of_the_unresolved_only(new_view: ViewFactory) -> None:
    view = new_view()
    records = [record("fail", 1, 1, status=500, failure_class=HTTP, retry=True)]
    records += [record("ok", 1, 2, second=1, status=200)]
    second = record("fail", 1, 1, status=500, failure_class=HTTP)
    second.delivery_id = "dlv-2"
    apply_all(view, [*records, second])
    counts_table = view.tables.counts
    legacy = counts_table.replace("failure_open_counts", "failure_counts")
    with view.transaction() as cursor:  # as a view from before left them
        cursor.execute(f"DROP TABLE {counts_table}")
        cursor.execute(
            f"CREATE TABLE {legacy} (tenant TEXT NOT NULL, subscription_id TEXT NOT NULL, "
            "failed_attempts BIGINT NOT NULL, failed_events BIGINT NOT NULL, "
            "PRIMARY KEY (tenant, subscription_id))"
        )
        cursor.execute(f"INSERT INTO {legacy} VALUES ('acme', 'sub-a', 2, 2)")
    view.create_tables()  # what opening a view does
    assert [(c.failed_attempts, c.failed_events) for c in view.counts("acme", ["sub-a"])] == [
        (1, 1)
    ]
    with view.transaction(write=False) as cursor:
        assert not view_schema.exists(cursor, view.dialect, legacy)
    view.create_tables()  # once only
    assert view.dump()["counts"] == [("acme", "sub-a", 1, 1)]
