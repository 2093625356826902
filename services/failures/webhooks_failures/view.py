"""The failed-events view: the ATTEMPTS stream folded into SQL tables by the state rules of
``failed_events.py``, and the queries of the failures API.

``apply`` writes a batch of records and the stream position it reaches in one
transaction (the position is a compare-and-set: two projectors on one database never both
apply a batch). A record's key in the trial history (tenant, delivery, series, attempt)
makes it count once, whichever batch brings it again. ``view_fold`` writes a batch with a
few statements whatever its size; ``view_query`` turns a Filter into SQL and pages.

Every method is synchronous (blocking database calls): callers in an event loop run them
with ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_failures import view_query, view_schema
from webhooks_failures.model import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Filter,
    Page,
    RedeliveryTarget,
)
from webhooks_failures.view_fold import Folder
from webhooks_failures.view_schema import LIVE, SHADOW, Tables
from webhooks_storage import Cursor, PostgresConnector, SQLiteConnector, SqlStore
from webhooks_storage.store import Connector

log = logging.getLogger(__name__)

# Rows read per IN list (SQLite allows 32766 parameters; PostgreSQL uses one array).
CHUNK = 500
# SQLite, the message search (see _messages): a text in more of the tenant's distinct
# messages than this is looked for by the scan; a listing with other equality filters reads
# the text's rows through the index by message when they are at most MESSAGE_ROWS_MAX (each
# read, checked, sorted), else the scan of the filters' index, which stops after a
# page (it reads about page / share-of-rows-with-the-text rows).
MESSAGE_KEYS_MAX = 1000
MESSAGE_ROWS_MAX = 4000
# Equality filters besides the text: with none, the text's messages give the listing order.
_EQUALITY_FIELDS = (
    "subscription_ids", "error_codes", "states", "entity", "trigger", "subchannel",
)  # fmt: skip

ROW_COLUMNS = (
    "tenant, delivery_id, event_id, subscription_id, subscription_name, entity, trigger_name, "
    "channel, subchannel, last_attempt_us, error_code, status_code, failure_class, "
    "error_message, attempts, failed_attempts, state, max_series, head_series, head_attempt"
)


def _micros_timestamp(us: int) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def _failed_event(row: Sequence[Any]) -> failures_pb2.FailedEvent:
    (tenant, delivery_id, event_id, subscription_id, subscription_name, entity, trigger,
     channel, subchannel, last_us, code, status_code, failure_class, message, attempts,
     _failed, state, *_rest) = row  # fmt: skip
    event = failures_pb2.FailedEvent(
        delivery_id=delivery_id,
        tenant=tenant,
        subscription_id=subscription_id,
        subscription_name=subscription_name,
        entity=entity,
        trigger=trigger,
        subchannel=subchannel,
        last_attempt_at=_micros_timestamp(last_us),
        error_code=code,
        status_code=status_code,
        failure_class=failure_class,
        error_message=message,
        retry_attempts=max(attempts - 1, 0),
        state=state,
        event_id=event_id,
    )
    if channel is not None:
        event.channel = channel
    return event


def _chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FailuresView(SqlStore):
    """The view over one set of tables (the live ones, or a rebuild's shadow)."""

    def __init__(
        self,
        connector: Connector,
        tables: Tables = LIVE,
        *,
        trgm_schema: str | None = None,
        owns_connector: bool = True,
    ) -> None:
        super().__init__(connector)
        self.tables = tables
        self._trgm_schema = trgm_schema
        self._owns_connector = owns_connector
        self._folder = Folder(self.dialect, tables)

    # ---- tables

    def create_tables(self) -> None:
        """Create this view's tables unless they exist (they are created all at once)."""
        with self.transaction() as cursor:
            if not view_schema.exists(cursor, self.dialect, self.tables.tracking):
                for statement in view_schema.ddl(self.tables, self.dialect, self._trgm_schema):
                    cursor.execute(statement)
            elif self.dialect == "sqlite" and not view_schema.exists(
                cursor, self.dialect, self.tables.search
            ):
                view_schema.add_search(cursor, self.tables)  # a file from before the search

    def fresh_shadow(self) -> FailuresView:
        """Empty shadow tables on the same database, for a rebuild (any left by an
        interrupted rebuild are dropped)."""
        shadow = FailuresView(
            self.connector, SHADOW, trgm_schema=self._trgm_schema, owns_connector=False
        )
        with self.transaction() as cursor:
            view_schema.drop(cursor, SHADOW, self.dialect)
            for statement in view_schema.ddl(SHADOW, self.dialect, self._trgm_schema):
                cursor.execute(statement)
        return shadow

    def swap_in(self, shadow: FailuresView) -> int:
        """Make ``shadow``'s tables this view's, atomically; returns its failed events.
        The caller pauses every projector of this view first."""
        with self.transaction() as cursor:
            view_schema.swap(cursor, shadow.tables, self.tables, self.dialect)
            cursor.execute(f"SELECT COUNT(*) FROM {self.tables.events}")
            count = int(cursor.fetchone()[0])
        self.refresh_statistics()
        if self.dialect == "postgres":
            # Fresh tables have no statistics until autovacuum gets to them: until then
            # the planner guesses, and listings of a large view are slow.
            with self.transaction() as cursor:
                cursor.execute(f"ANALYZE {self.tables.events}")
        return count

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in key order: what a rebuild must reproduce."""
        t = self.tables
        queries = {
            "events": f"SELECT * FROM {t.events} ORDER BY tenant, delivery_id",
            "history": f"SELECT * FROM {t.history} ORDER BY tenant, delivery_id, series, attempt",
            "counts": f"SELECT * FROM {t.counts} ORDER BY tenant, subscription_id",
        }
        with self.transaction(write=False) as cursor:
            out = {}
            for name, query in queries.items():
                cursor.execute(query)
                out[name] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                             for row in cursor.fetchall()]  # fmt: skip
            return out

    def close(self) -> None:
        if self._owns_connector:
            super().close()

    # ---- projection

    def position(self) -> int:
        with self.transaction(write=False) as cursor:
            cursor.execute(f"SELECT position FROM {self.tables.tracking} WHERE singleton = 1")
            return int(cursor.fetchone()[0])

    def apply(
        self,
        previous: int,
        batch: Sequence[tuple[int, messages_pb2.AttemptRecord]],
        *,
        position: int | None = None,
    ) -> None:
        """Apply ``batch`` (stream sequence, record) and move the position from
        ``previous`` to ``position`` (default: the batch's last sequence; the projector
        passes a later one when messages after the last record were undecodable).
        Raises PositionMoved, changing nothing, when the position is not ``previous``."""
        if position is None:
            position = batch[-1][0] if batch else previous
        with self.transaction() as cursor:
            # First: on PostgreSQL this row lock queues a second projector here.
            self.advance(cursor, self.tables.tracking, previous, position)
            if batch:
                self._folder.fold(cursor, [record for _, record in batch])

    def _id_chunks(self, ids: list[str]) -> Iterable[Sequence[str]]:
        return [ids] if self.dialect == "postgres" else _chunks(ids)

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if self.dialect == "postgres":
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    # ---- queries

    def _statement(self) -> AbstractContextManager[Cursor]:
        """Where a query of one statement runs: on PostgreSQL outside a transaction (one
        round trip, see _PostgresConnector); on SQLite a read transaction (local calls)."""
        statement = getattr(self.connector, "statement", None)
        if self.dialect == "postgres" and statement is not None:
            return cast(AbstractContextManager[Cursor], statement())
        return self.transaction(write=False)

    def list_failed(self, tenant: str, filter: Filter, page_size: int, page_token: str) -> Page:
        """Newest first (last attempt, then delivery id); see view_query for what a page
        token guarantees while failures arrive."""
        if page_size <= 0:
            page_size = DEFAULT_PAGE_SIZE
        page_size = min(page_size, MAX_PAGE_SIZE)
        after = view_query.decode_token(page_token, tenant, filter) if page_token else None
        with self._statement() as cursor:
            sql, params = view_query.listing_sql(
                self.tables.events,
                ROW_COLUMNS,
                tenant,
                filter,
                page_size + 1,
                after,
                self._messages(cursor, tenant, filter, listing=True),
            )
            if self.dialect == "postgres":
                # One JSON cell instead of ~1,000: psycopg's pure-Python row loading costs
                # far more per value than json.loads does (figures: bench/README.md).
                sql = (
                    f"SELECT COALESCE(json_agg(json_build_array({ROW_COLUMNS}) "
                    f"ORDER BY {view_query.ORDER}), '[]')::text FROM ({sql}) AS page"
                )
            cursor.execute(self.sql(sql), params)
            rows = (
                json.loads(cursor.fetchone()[0])
                if self.dialect == "postgres"
                else cursor.fetchall()
            )
        token = ""
        if len(rows) > page_size:
            rows = rows[:page_size]
            last = rows[-1]
            token = view_query.encode_token(tenant, filter, last[9], last[1])
        return Page([_failed_event(row) for row in rows], token)

    def count_matching(self, tenant: str, filter: Filter) -> int:
        table = self.tables.events
        with self._statement() as cursor:
            messages = self._messages(cursor, tenant, filter, listing=False)
            w = view_query.where(tenant, filter, messages=messages)
            cursor.execute(
                self.sql(
                    f"SELECT COUNT(*) FROM {view_query.source(table, messages)} WHERE {w.sql()}"
                ),
                w.params,
            )
            return int(cursor.fetchone()[0])

    def _messages(
        self, cursor: Cursor, tenant: str, filter: Filter, *, listing: bool
    ) -> view_query.Messages | None:
        """SQLite: the tenant's messages containing the filter's text when a query should
        read their rows through the index by message, else None (the LIKE: no text, one
        shorter than a trigram, one in too many messages, or, for a listing with other
        equality filters, in too many rows). PostgreSQL: None (its planner uses the
        pg_trgm index on its own)."""
        if self.dialect != "sqlite" or not filter.message_contains:
            return None
        phrase = view_query.search_phrase(filter.message_contains)
        if phrase is None:
            return None
        t = self.tables
        cursor.execute(
            f"SELECT m.message_key FROM {t.search} CROSS JOIN {t.messages} AS m "
            f"ON m.id = {t.search}.rowid WHERE {t.search} MATCH ? AND m.tenant = ? LIMIT ?",
            (phrase, tenant, MESSAGE_KEYS_MAX + 1),
        )
        keys = tuple(row[0] for row in cursor.fetchall())
        if len(keys) > MESSAGE_KEYS_MAX:
            return None
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND name LIKE 'fx\\_msg\\_%' ESCAPE '\\'",
            (t.events,),
        )
        messages = view_query.Messages(keys, cursor.fetchone()[0])
        equality = filter.channel is not None or any(getattr(filter, n) for n in _EQUALITY_FIELDS)
        if not keys or not listing or (not equality and len(keys) <= view_query.MAX_SPLIT_VALUES):
            return messages
        w = view_query.where(
            tenant, Filter(message_contains=filter.message_contains), messages=messages
        )
        cursor.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {view_query.source(t.events, messages)} "
            f"WHERE {w.sql()} LIMIT ?)",
            [*w.params, MESSAGE_ROWS_MAX + 1],
        )
        return messages if int(cursor.fetchone()[0]) <= MESSAGE_ROWS_MAX else None

    def details(self, tenant: str, delivery_id: str) -> failures_pb2.FailedEventDetails | None:
        t = self.tables
        with self.transaction(write=False) as cursor:
            cursor.execute(
                self.sql(
                    f"SELECT {ROW_COLUMNS} FROM {t.events} WHERE tenant = ? AND delivery_id = ?"
                ),
                (tenant, delivery_id),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(
                self.sql(
                    f"SELECT series, attempt, record FROM {t.history} "
                    "WHERE tenant = ? AND delivery_id = ? ORDER BY series, attempt"
                ),
                (tenant, delivery_id),
            )
            history = cursor.fetchall()
        details = failures_pb2.FailedEventDetails(overview=_failed_event(row))
        head = (row[18], row[19])
        for series, attempt, blob in history:
            record = messages_pb2.AttemptRecord.FromString(bytes(blob))
            details.trial_history.append(record)
            if (series, attempt) == head:
                details.payload = record.request_body
                details.payload_content_type = record.request_content_type
        return details

    def counts(
        self, tenant: str, subscription_ids: Sequence[str]
    ) -> list[failures_pb2.SubscriptionFailureCount]:
        """Per subscription: failed attempts and failed events (every row of the view is
        a failed event, whatever its state). Named subscriptions are answered in the
        order given, with zeros when they have none; no names: every subscription of the
        tenant that has any, by id."""
        t = self.tables
        found: dict[str, tuple[int, int]] = {}
        wanted: list[str] = list(dict.fromkeys(subscription_ids))
        with self.transaction(write=False) as cursor:
            if wanted:
                for chunk in self._id_chunks(wanted):
                    condition, params = self._in("subscription_id", chunk)
                    cursor.execute(
                        self.sql(
                            "SELECT subscription_id, failed_attempts, failed_events "
                            f"FROM {t.counts} WHERE tenant = ? AND {condition}"
                        ),
                        (tenant, *params),
                    )
                    found.update((s, (a, e)) for s, a, e in cursor.fetchall())
            else:
                cursor.execute(
                    self.sql(
                        "SELECT subscription_id, failed_attempts, failed_events "
                        f"FROM {t.counts} WHERE tenant = ? AND failed_events > 0 "
                        "ORDER BY subscription_id"
                    ),
                    (tenant,),
                )
                found = {s: (a, e) for s, a, e in cursor.fetchall()}
                wanted = list(found)
        return [
            failures_pb2.SubscriptionFailureCount(
                subscription_id=s,
                failed_attempts=found.get(s, (0, 0))[0],
                failed_events=found.get(s, (0, 0))[1],
            )
            for s in wanted
        ]

    def redelivery_targets(
        self,
        tenant: str,
        *,
        delivery_id: str | None = None,
        filter: Filter | None = None,
        limit: int = 10_000,
    ) -> list[RedeliveryTarget]:
        """What a redelivery of one failed event (``delivery_id``) or of those matching
        ``filter`` (newest first, at most ``limit``) needs, from their latest attempt."""
        t = self.tables
        columns = "delivery_id, max_series, head_series, head_attempt, last_attempt_us"
        inner: tuple[str, list[Any]] = (
            f"SELECT {columns} FROM {t.events} WHERE tenant = ? AND delivery_id = ?",
            [tenant, delivery_id],
        )
        with self.transaction(write=False) as cursor:
            if delivery_id is None:
                filter = filter or Filter()
                messages = self._messages(cursor, tenant, filter, listing=True)
                inner = view_query.listing_sql(
                    t.events, columns, tenant, filter, limit, None, messages
                )
            sql = (
                f"SELECT f.max_series, h.record FROM ({inner[0]}) AS f JOIN {t.history} AS h "
                "ON h.tenant = ? AND h.delivery_id = f.delivery_id "
                "AND h.series = f.head_series AND h.attempt = f.head_attempt "
                f"ORDER BY f.{view_query.ORDER.replace(', ', ', f.')}"
            )
            cursor.execute(self.sql(sql), [*inner[1], tenant])
            rows = cursor.fetchall()
        return [_target(max_series, bytes(blob)) for max_series, blob in rows]

    # ---- retention

    def expire(self, before: datetime, chunk: int = 1000) -> int:
        """Delete failed events (and their history) whose last attempt is before
        ``before``; returns how many. Chunked transactions: a projector sharing the
        database is never held up for long."""
        cutoff = view_query.micros(before)
        t = self.tables
        with self.transaction(write=False) as cursor:
            cursor.execute(f"SELECT DISTINCT tenant FROM {t.counts}")
            tenants = [row[0] for row in cursor.fetchall()]
        lock = " FOR UPDATE" if self.dialect == "postgres" else ""
        deleted = 0
        for tenant in tenants:
            while True:
                with self.transaction() as cursor:
                    cursor.execute(
                        self.sql(
                            "SELECT delivery_id, subscription_id, failed_attempts, message_key "
                            f"FROM {t.events}"
                            f" WHERE tenant = ? AND last_attempt_us < ? LIMIT ?{lock}"
                        ),
                        (tenant, cutoff, chunk),
                    )
                    rows = cursor.fetchall()
                    if not rows:
                        break
                    self._delete(cursor, tenant, rows)
                    deleted += len(rows)
        self.refresh_statistics()
        return deleted

    def fill_message_search(self) -> None:
        """SQLite: add to the message search the messages of rows written without the fold
        (a benchmark's seed); the fold keeps it otherwise. PostgreSQL: nothing to do."""
        if self.dialect == "sqlite":
            with self.transaction() as cursor:
                cursor.execute(view_schema.fill_messages(self.tables))

    def refresh_statistics(self) -> None:
        """SQLite's planner statistics, sampled (tens of ms at a million rows): they let it
        pick the most selective index for combined filters. PostgreSQL's autovacuum keeps
        its own. Run by expire, i.e. by the retention loop every minute."""
        if self.dialect != "sqlite":
            return
        with self.transaction() as cursor:
            cursor.execute("PRAGMA analysis_limit = 20000")
            cursor.execute(f"ANALYZE {self.tables.events}")

    def _delete(self, cursor: Cursor, tenant: str, rows: Sequence[Sequence[Any]]) -> None:
        t = self.tables
        ids = [row[0] for row in rows]
        for chunk in self._id_chunks(ids):
            condition, params = self._in("delivery_id", chunk)
            for table in (t.history, t.events):
                cursor.execute(
                    self.sql(f"DELETE FROM {table} WHERE tenant = ? AND {condition}"),
                    (tenant, *params),
                )
        removed: dict[str, list[int]] = {}
        for _, subscription_id, failed_attempts, _key in rows:
            count = removed.setdefault(subscription_id, [0, 0])
            count[0] += failed_attempts
            count[1] += 1
        cursor.executemany(
            self.sql(
                f"UPDATE {t.counts} SET failed_attempts = failed_attempts - ?, "
                "failed_events = failed_events - ? WHERE tenant = ? AND subscription_id = ?"
            ),
            [(a, e, tenant, s) for s, (a, e) in removed.items()],
        )
        cursor.execute(
            self.sql(f"DELETE FROM {t.counts} WHERE tenant = ? AND failed_events <= 0"),
            (tenant,),
        )
        if self.dialect == "sqlite":
            self._folder.drop_unused_messages(cursor, {(tenant, row[3]) for row in rows})


def _target(max_series: int, blob: bytes) -> RedeliveryTarget:
    record = messages_pb2.AttemptRecord.FromString(blob)
    return RedeliveryTarget(
        delivery_id=record.delivery_id,
        event_id=record.event_id,
        tenant=record.tenant,
        subscription_id=record.subscription_id,
        subscription_version=record.subscription_version,
        subscription_name=record.subscription_name,
        entity=record.entity,
        trigger=record.trigger,
        channel=record.channel if record.HasField("channel") else None,
        subchannel=record.subchannel,
        occurred_at=(
            record.occurred_at.ToDatetime(tzinfo=UTC) if record.HasField("occurred_at") else None
        ),
        payload_json=record.payload_json or record.request_body,
        replay=record.replay,
        next_series=max_series + 1,
    )


class SQLiteFailuresView(FailuresView):
    def __init__(self, path: Path) -> None:
        super().__init__(SQLiteConnector(path))
        self.create_tables()


class _PostgresConnector(PostgresConnector):
    """PostgresConnector with its connections in autocommit: ``transaction`` is still
    BEGIN … COMMIT, and ``statement`` runs one read statement in one round trip (in a
    transaction it took three: BEGIN, the query, COMMIT; each a wake-up of the server
    process, which on a busy machine is what the p99 of a listing is made of)."""

    def __init__(self, conninfo: str, schema: str, max_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        # The base class's pool (same settings), autocommit added.
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"options": f"-c search_path={schema}", "autocommit": True},
            open=True,
        )

    @contextmanager
    def statement(self) -> Iterator[Cursor]:
        with self._pool.connection() as connection:
            yield connection.cursor()


class PostgresFailuresView(FailuresView):
    """On PostgreSQL: the schema is created if missing, under an advisory lock (replicas
    starting together would race on CREATE ... IF NOT EXISTS), with pg_trgm for the
    message search when the extension can be created."""

    def __init__(self, conninfo: str, schema: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("SELECT pg_advisory_lock(hashtext('webhooks.failures.schema'))")
            try:
                connection.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
                trgm = _trigram_schema(connection)
                super().__init__(_PostgresConnector(conninfo, schema), trgm_schema=trgm)
                self.create_tables()
            finally:
                connection.execute(
                    "SELECT pg_advisory_unlock(hashtext('webhooks.failures.schema'))"
                )


def _trigram_schema(connection: Any) -> str | None:
    """The schema holding pg_trgm, creating the extension (in public) if it can; None if
    it cannot: the message search then reads the tenant's rows in order, filtered."""
    query = (
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    row = connection.execute(query).fetchone()
    if row is not None:
        return str(row[0])
    try:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    except Exception as err:  # privileges or the contrib package missing
        log.warning("pg_trgm unavailable (%s): message search without an index", err)
        return None
    row = connection.execute(query).fetchone()
    return str(row[0]) if row is not None else None
