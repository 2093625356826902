"""One batch of AttemptRecords written into the failures tables, as failed_events decides.

Per batch, whatever its size: one read of the rows it touches (delivery id, highest
series, state and failed attempts only) and of their history keys, the fold of
failed_events, then one bulk statement per table: new failed events inserted, existing ones
updated by deltas (attempts added, the newest time kept, fields replaced only when the
batch has a newer value for them), the history inserted, the per-subscription counts of
unresolved failures added to (or taken from, as events recover).

On SQLite the fold also keeps the message search (view_schema): the batch's new messages
are added to the tenant's distinct messages, and those a batch replaced that no failed
event uses any more are removed: a few statements per batch, their rows the batch's
distinct messages.

Bulk means executemany on SQLite (its per-row cost is in C) and, on PostgreSQL, a single
statement reading every row from one JSON parameter: psycopg's pure-Python executemany
pays for every row, json.dumps of a whole batch is one fast call (figures:
bench/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from webhooks.v1 import messages_pb2
from webhooks_failures import failed_events
from webhooks_failures.failed_events import Before, Change, EventKey
from webhooks_failures.model import error_code
from webhooks_failures.view_query import CHUNK
from webhooks_failures.view_schema import Tables
from webhooks_storage import Cursor

Column = tuple[str, str]  # (name, PostgreSQL array element type)

EVENT_COLUMNS: list[Column] = [
    ("tenant", "text"), ("delivery_id", "text"), ("event_id", "text"),
    ("subscription_id", "text"), ("subscription_name", "text"), ("entity", "text"),
    ("trigger_name", "text"), ("channel", "int"), ("subchannel", "text"),
    ("last_attempt_us", "bigint"), ("error_code", "text"), ("status_code", "int"),
    ("failure_class", "int"), ("error_message", "text"), ("message_key", "text"),
    ("attempts", "int"), ("failed_attempts", "int"), ("state", "int"),
    ("max_series", "int"), ("head_series", "int"), ("head_attempt", "int"),
]  # fmt: skip
# Inputs of the update of an existing row ("in_": never the name of a column, so that
# unqualified names in the statement are the table's).
UPDATE_INPUTS: list[Column] = [
    ("in_tenant", "text"), ("in_delivery", "text"), ("in_attempts", "int"),
    ("in_failed", "int"), ("in_last", "bigint"), ("in_max_series", "int"),
    ("in_state", "int"), ("in_described", "bool"), ("in_head_series", "int"),
    ("in_head_attempt", "int"), ("in_event_id", "text"), ("in_subscription_name", "text"),
    ("in_entity", "text"), ("in_trigger", "text"), ("in_channel", "int"),
    ("in_subchannel", "text"), ("in_errored", "bool"), ("in_error_code", "text"),
    ("in_status_code", "int"), ("in_failure_class", "int"), ("in_error_message", "text"),
    ("in_message_key", "text"),
]  # fmt: skip
DESCRIBED = ("head_series", "head_attempt", "event_id", "subscription_name", "entity",
             "trigger_name", "channel", "subchannel")  # fmt: skip
ERRORED = ("error_code", "status_code", "failure_class", "error_message", "message_key")
_INPUT_OF = {"trigger_name": "in_trigger"}
UPDATE_SET = ", ".join(
    [
        "attempts = attempts + {in_attempts}",
        "failed_attempts = failed_attempts + {in_failed}",
        "last_attempt_us = GREATEST(last_attempt_us, {in_last})",
        "max_series = {in_max_series}",
        "state = COALESCE({in_state}, state)",
        *(
            f"{c} = CASE WHEN {{in_{g}}} THEN {{{_INPUT_OF.get(c, 'in_' + c)}}} ELSE {c} END"
            for g, columns in (("described", DESCRIBED), ("errored", ERRORED))
            for c in columns
        ),
    ]
)
HISTORY_COLUMNS: list[Column] = [
    ("tenant", "text"), ("delivery_id", "text"), ("series", "int"), ("attempt", "int"),
    ("record", "bytea"),
]  # fmt: skip
COUNT_COLUMNS: list[Column] = [
    ("tenant", "text"), ("subscription_id", "text"), ("failed_attempts", "bigint"),
    ("failed_events", "bigint"),
]  # fmt: skip


def _insert_row(change: Change) -> tuple[Any, ...]:
    # A new row was created by a failed attempt of the newest series: both are set.
    latest, failure = change.latest, change.failure
    assert latest is not None and failure is not None
    return (
        change.tenant, change.delivery_id, latest.event_id, change.subscription_id,
        latest.subscription_name, latest.entity, latest.trigger, _channel(latest),
        latest.subchannel, change.last_us, error_code(failure), failure.status_code,
        failure.failure_class, failure.error_message, failure.error_message.casefold(),
        change.d_attempts, change.d_failed, change.state, change.max_series, latest.series,
        latest.attempt,
    )  # fmt: skip


def _update_row(change: Change) -> tuple[Any, ...]:
    latest, failure = change.latest, change.failure
    described: tuple[Any, ...] = (False, 0, 0, "", "", "", "", None, "")
    if latest is not None:
        described = (
            True, latest.series, latest.attempt, latest.event_id,
            latest.subscription_name, latest.entity, latest.trigger, _channel(latest),
            latest.subchannel,
        )  # fmt: skip
    errored: tuple[Any, ...] = (False, "", 0, 0, "", "")
    if failure is not None:
        errored = (
            True, error_code(failure), failure.status_code, failure.failure_class,
            failure.error_message, failure.error_message.casefold(),
        )  # fmt: skip
    return (
        change.tenant, change.delivery_id, change.d_attempts, change.d_failed, change.last_us,
        change.max_series, change.state, *described, *errored,
    )  # fmt: skip


def _channel(record: messages_pb2.AttemptRecord) -> int | None:
    return record.channel if record.HasField("channel") else None


class Bulk:
    """A statement over many rows: executemany on SQLite; on PostgreSQL one statement
    reading the rows from a single JSON parameter."""

    def __init__(self, dialect: str, sql: str, columns: Sequence[Column]) -> None:
        self.postgres = dialect == "postgres"
        self.sql = sql
        self._hex = [i for i, (_, kind) in enumerate(columns) if kind == "bytea"]

    def run(self, cursor: Cursor, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if not self.postgres:
            cursor.executemany(self.sql, rows)
            return
        if self._hex:
            rows = [_hexed(row, self._hex) for row in rows]
        cursor.execute(self.sql, [json.dumps(rows, separators=(",", ":"))])


def _hexed(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        values[i] = values[i].hex()
    return tuple(values)


def _json_rows(columns: Sequence[Column]) -> str:
    """The rows of the JSON parameter (an array of arrays) as a subquery with named and
    typed columns. JSON, not arrays: psycopg's pure-Python driver dumps a JSON string in
    one call, an array element by element."""

    def extract(i: int, name: str, kind: str) -> str:
        if kind == "bytea":
            return f"decode(e->>{i}, 'hex') AS {name}"
        return f"(e->>{i})::{kind} AS {name}"

    exprs = ", ".join(extract(i, name, kind) for i, (name, kind) in enumerate(columns))
    return f"(SELECT {exprs} FROM jsonb_array_elements(%s::jsonb) AS j(e))"


def bulk_insert(dialect: str, table: str, columns: Sequence[Column], suffix: str = "") -> Bulk:
    names = ", ".join(name for name, _ in columns)
    if dialect == "postgres":
        values = f"SELECT * FROM {_json_rows(columns)} AS u"
    else:
        values = f"VALUES ({', '.join('?' * len(columns))})"
    return Bulk(dialect, f"INSERT INTO {table} ({names}) {values} {suffix}", columns)


def bulk_update(
    dialect: str, table: str, inputs: Sequence[Column], assignments: str, where: str
) -> Bulk:
    names = [name for name, _ in inputs]
    if dialect == "postgres":
        refs = {name: f"u.{name}" for name in names}
        sql = (
            f"UPDATE {table} SET {assignments.format(**refs)} "
            f"FROM {_json_rows(inputs)} AS u WHERE {where.format(**refs)}"
        )
    else:
        refs = {name: f"?{i}" for i, name in enumerate(names, 1)}
        assignments = assignments.replace("GREATEST(", "MAX(")
        sql = f"UPDATE {table} SET {assignments.format(**refs)} WHERE {where.format(**refs)}"
    return Bulk(dialect, sql, inputs)


class Folder:
    """The statements of ``apply`` for one set of tables, built once."""

    def __init__(self, dialect: str, tables: Tables) -> None:
        self.dialect = dialect
        t = tables
        self._add_messages = (
            f"INSERT OR IGNORE INTO {t.messages} (tenant, message_key) VALUES (?, ?)"
        )
        self._drop_messages = (
            f"DELETE FROM {t.messages} WHERE tenant = ?1 AND message_key = ?2 AND NOT EXISTS "
            f"(SELECT 1 FROM {t.events} WHERE tenant = ?1 AND message_key = ?2)"
        )
        self._insert = bulk_insert(dialect, t.events, EVENT_COLUMNS)
        self._update = bulk_update(
            dialect,
            t.events,
            UPDATE_INPUTS,
            UPDATE_SET,
            "tenant = {in_tenant} AND delivery_id = {in_delivery}",
        )
        self._history = bulk_insert(dialect, t.history, HISTORY_COLUMNS)
        self._counts = bulk_insert(
            dialect,
            t.counts,
            COUNT_COLUMNS,
            "ON CONFLICT (tenant, subscription_id) DO UPDATE SET "
            f"failed_attempts = {t.counts}.failed_attempts + excluded.failed_attempts, "
            f"failed_events = {t.counts}.failed_events + excluded.failed_events",
        )
        columns = "delivery_id, max_series, state, failed_attempts"
        rows = f"SELECT {columns} FROM {t.events} WHERE tenant = ? AND "
        history = f"SELECT delivery_id, series, attempt FROM {t.history} WHERE tenant = ? AND "
        if dialect == "postgres":
            # One JSON value each way (see _json_rows); the rows are locked until commit,
            # so expire cannot delete one under the fold.
            ids = "delivery_id = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb)))"
            self._select_rows = _json_result(f"{rows}{ids} FOR UPDATE", columns)
            self._select_history = _json_result(history + ids, "delivery_id, series, attempt")
        else:
            # With the row's message, for the message search's upkeep.
            rows = rows.replace("failed_attempts FROM", "failed_attempts, message_key FROM")
            self._select_rows = rows + "delivery_id IN ({})"
            self._select_history = history + "delivery_id IN ({})"

    def fold(self, cursor: Cursor, records: Sequence[messages_pb2.AttemptRecord]) -> None:
        ids: dict[str, dict[str, None]] = {}  # tenant -> delivery ids (ordered, unique)
        for record in records:
            ids.setdefault(record.tenant, {})[record.delivery_id] = None
        known, before, old_keys = self._known(cursor, ids)
        seen = self._seen(cursor, known)
        batch = failed_events.fold(records, known, seen, before)
        changes = batch.changes.values()
        self._insert.run(cursor, [_insert_row(c) for c in changes if c.new])
        self._update.run(cursor, [_update_row(c) for c in changes if not c.new])
        self._history.run(cursor, [(*k, r.SerializeToString()) for k, r in batch.history])
        self._counts.run(cursor, [(*key, *value) for key, value in batch.counts.items()])
        if self.dialect == "sqlite":
            self._keep_messages(cursor, changes, old_keys)

    def _keep_messages(
        self,
        cursor: Cursor,
        changes: Iterable[Change],
        old_keys: dict[tuple[str, str], str],
    ) -> None:
        """The message search after the batch's writes: its new messages added, those it
        replaced removed unless another failed event still has them."""
        added: dict[tuple[str, str], None] = {}
        replaced: dict[tuple[str, str], None] = {}
        for change in changes:
            if change.failure is None:
                continue  # the row's message is unchanged
            key = change.failure.error_message.casefold()
            added[(change.tenant, key)] = None
            old = old_keys.get((change.tenant, change.delivery_id))
            if old is not None and old != key:
                replaced[(change.tenant, old)] = None
        if added:
            cursor.executemany(self._add_messages, list(added))
        self.drop_unused_messages(cursor, replaced)

    def drop_unused_messages(self, cursor: Cursor, keys: Iterable[tuple[str, str]]) -> None:
        """SQLite: remove these (tenant, message_key) from the message search unless a
        failed event still has them."""
        rows = list(keys)
        if rows:
            cursor.executemany(self._drop_messages, rows)

    def _known(
        self, cursor: Cursor, ids: dict[str, dict[str, None]]
    ) -> tuple[dict[EventKey, int], dict[EventKey, Before], dict[EventKey, str]]:
        """(tenant, delivery id) -> highest series, of the batch's rows in the view; ->
        their state and failed attempts; and on SQLite -> their message_key."""
        known: dict[EventKey, int] = {}
        before: dict[EventKey, Before] = {}
        old_keys: dict[EventKey, str] = {}
        for tenant, wanted in ids.items():
            for row in self._lookup(cursor, self._select_rows, tenant, list(wanted)):
                key = (tenant, row[0])
                known[key] = row[1]
                before[key] = (row[2], row[3])
                if len(row) > 4:
                    old_keys[key] = row[4]
        return known, before, old_keys

    def _seen(
        self, cursor: Cursor, known: dict[tuple[str, str], int]
    ) -> set[tuple[str, str, int, int]]:
        """The history keys of those rows (a delivery without a row has no history)."""
        by_tenant: dict[str, list[str]] = {}
        for tenant, delivery_id in known:
            by_tenant.setdefault(tenant, []).append(delivery_id)
        seen: set[tuple[str, str, int, int]] = set()
        for tenant, wanted in by_tenant.items():
            for d, s, a in self._lookup(cursor, self._select_history, tenant, wanted):
                seen.add((tenant, d, s, a))
        return seen

    def _lookup(
        self, cursor: Cursor, template: str, tenant: str, ids: list[str]
    ) -> list[Sequence[Any]]:
        if self.dialect == "postgres":
            cursor.execute(template.replace("?", "%s"), [tenant, json.dumps(ids)])
            found: list[Sequence[Any]] = json.loads(cursor.fetchone()[0])
            return found
        found = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            cursor.execute(template.format(", ".join("?" * len(chunk))), [tenant, *chunk])
            found += cursor.fetchall()
        return found


def _json_result(query: str, columns: str) -> str:
    return (
        f"SELECT COALESCE(json_agg(json_build_array({columns})), '[]')::text "
        f"FROM ({query}) AS found"
    )
