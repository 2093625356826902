"""The failures view's message search on SQLite (view_schema: the tenant's distinct messages
and an FTS5 trigram table over them, kept by the fold): the listing and the count through
it equal the LIKE scan's for every kind of text; messages a fold replaces or retention
removes leave it; it survives a rebuild's swap; a file from before it gets it, filled."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webhooks.v1 import messages_pb2
from webhooks_failures import view_search
from webhooks_failures.model import Filter
from webhooks_failures.view import FailuresView, SQLiteFailuresView

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MESSAGES = (
    "HTTP 502 Bad Gateway from proxy_1",
    "HTTP 503: Service Unavailable",
    "HTTP 429 Too Many Requests (100% quota)",
    'upstream said "no" (ΣΊΣΥΦΟΣ)',
    "TLS: certificate has expired",
    "Straße gesperrt",
)
TEXTS = (
    "gateway", "BAD GATEWAY", "proxy_1", "y_1", "100%", "0% q", '"no"', "σίσυφος", "STRASSE",
    "http", "zebra", "_", "%", "ht", "", "503: s", "expired",
)  # fmt: skip


def failure(
    delivery: int, attempt: int, message: str, tenant: str = "acme"
) -> messages_pb2.AttemptRecord:
    r = messages_pb2.AttemptRecord(
        delivery_id=f"d{delivery}",
        series=1,
        attempt=attempt,
        tenant=tenant,
        subscription_id=f"sub-{delivery % 3}",
        subscription_name="S",
        event_id=f"e{delivery}",
        entity="Object",
        trigger="OnNew",
        outcome=messages_pb2.ATTEMPT_OUTCOME_FAILED,
        status_code=500,
        failure_class=messages_pb2.FAILURE_CLASS_HTTP_STATUS,
        error_message=message,
        will_retry=True,
    )
    r.started_at.FromDatetime(T0 + timedelta(seconds=delivery * 10 + attempt))
    return r


def apply(view: FailuresView, records: list[messages_pb2.AttemptRecord]) -> None:
    position = view.position()
    view.apply(position, list(enumerate(records, position + 1)))


def listing(view: FailuresView, tenant: str, f: Filter) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = view.list_failed(tenant, f, 7, token)
        ids += [e.delivery_id for e in page.failed_events]
        token = page.next_page_token
        if not token:
            return ids


def by_scan(
    view: FailuresView, tenant: str, f: Filter, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], int]:
    with monkeypatch.context() as m:
        m.setattr(view_search, "MESSAGE_KEYS_MAX", -1)  # never the search
        return listing(view, tenant, f), view.count_matching(tenant, f)


def messages(view: FailuresView) -> set[tuple[str, str]]:
    with view.transaction(write=False) as cursor:
        cursor.execute(f"SELECT tenant, message_key FROM {view.tables.messages}")
        return set(cursor.fetchall())


def searched(view: FailuresView, text: str) -> set[str]:
    with view.transaction(write=False) as cursor:
        cursor.execute(
            f"SELECT m.message_key FROM {view.tables.search} JOIN {view.tables.messages} AS m "
            f"ON m.id = {view.tables.search}.rowid WHERE {view.tables.search} MATCH ?",
            (f'"{text}"',),
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def view(tmp_path: Path) -> FailuresView:
    v = SQLiteFailuresView(tmp_path / "view.db")
    records = []
    for d in range(60):
        tenant = "acme" if d % 4 else "globex"
        for attempt in (1, 2, 3)[: 1 + d % 3]:
            records.append(failure(d, attempt, MESSAGES[(d + attempt) % len(MESSAGES)], tenant))
    apply(v, records)
    return v


@pytest.mark.parametrize("text", TEXTS)
def test_search_equals_the_scan(
    view: FailuresView, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for f in (
        Filter(message_contains=text),
        Filter(message_contains=text, subscription_ids=("sub-1",)),
        Filter(message_contains=text, subscription_ids=("sub-0", "sub-2"), entity="Object"),
    ):
        for tenant in ("acme", "globex"):
            expected, count = by_scan(view, tenant, f, monkeypatch)
            assert listing(view, tenant, f) == expected
            assert view.count_matching(tenant, f) == count
            # and with the row-count bound forcing the scan for the listing
            monkeypatch.setattr(view_search, "MESSAGE_ROWS_MAX", 0)
            assert listing(view, tenant, f) == expected
            monkeypatch.undo()


def test_the_search_finds_what_is_asked(view: FailuresView) -> None:
    f = Filter(message_contains="gateway")
    listed = listing(view, "acme", f)
    assert listed and all(
        "gateway" in e.error_message.lower()
        for e in view.list_failed("acme", f, 100, "").failed_events
    )


def test_replaced_and_expired_messages_leave_the_search(tmp_path: Path) -> None:
    v = SQLiteFailuresView(tmp_path / "view.db")
    apply(v, [failure(1, 1, "first words"), failure(2, 1, "shared words")])
    assert messages(v) == {("acme", "first words"), ("acme", "shared words")}
    # d1's message is replaced: "first words" is no one's any more
    apply(v, [failure(1, 2, "Shared Words")])
    assert messages(v) == {("acme", "shared words")}
    assert searched(v, "first") == set()
    assert listing(v, "acme", Filter(message_contains="first")) == []
    assert listing(v, "acme", Filter(message_contains="shared")) == ["d2", "d1"]
    assert v.expire(T0 + timedelta(days=1)) == 2
    assert messages(v) == set()
    assert searched(v, "words") == set()


def test_the_search_survives_a_rebuild(view: FailuresView, monkeypatch: pytest.MonkeyPatch) -> None:
    shadow = view.fresh_shadow()
    apply(shadow, [failure(d, 1, MESSAGES[d % len(MESSAGES)]) for d in range(30)])
    view.swap_in(shadow)
    apply(view, [failure(100, 1, "brand new text"), failure(3, 2, "replaced text")])
    f = Filter(message_contains="new text")
    assert listing(view, "acme", f) == ["d100"]
    assert listing(view, "acme", Filter(message_contains="text")) == ["d100", "d3"]
    for text in TEXTS:
        f = Filter(message_contains=text)
        assert listing(view, "acme", f) == by_scan(view, "acme", f, monkeypatch)[0]


def test_a_file_from_before_the_search_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "view.db"
    v = SQLiteFailuresView(path)
    apply(v, [failure(d, 1, MESSAGES[d % len(MESSAGES)]) for d in range(12)])
    v.close()
    with sqlite3.connect(path) as connection:  # as the view was before the search
        for table in ("failure_messages", "failure_search"):
            connection.execute(f"DROP TABLE {table}")
    v = SQLiteFailuresView(path)
    assert len(messages(v)) == len(MESSAGES)
    assert listing(v, "acme", Filter(message_contains="proxy_1")) == ["d6", "d0"]
