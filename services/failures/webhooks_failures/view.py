"""The failed-events view: the ATTEMPTS stream folded into SQL tables by the state rules of
``failed_events.py``, and the queries of the failures API.

``apply`` writes a batch of records and the stream position it reaches in one
transaction (the position is a compare-and-set: two projectors on one database never both
apply a batch). A record's key in the trial history (tenant, delivery, series, attempt)
makes it count once, whichever batch brings it again.

The parts, each in its module: ``view_schema`` (the tables), ``view_fold`` (a batch
written with a few statements whatever its size), ``view_query`` (a Filter as SQL, page
tokens), ``view_search`` (SQLite's message search: which plan), ``view_rows`` (rows as
the API's messages), ``view_retention`` (expiry), ``view_postgres`` (PostgreSQL's
connections, schema lock and pg_trgm).

Every method is synchronous (blocking database calls): callers in an event loop run them
with ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_failures import view_query, view_retention, view_rows, view_schema, view_search
from webhooks_failures.model import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Filter,
    Page,
    RedeliveryTarget,
)
from webhooks_failures.view_fold import Folder
from webhooks_failures.view_postgres import StatementConnector, schema_lock
from webhooks_failures.view_rows import ROW_COLUMNS
from webhooks_failures.view_schema import LIVE, SHADOW, Tables
from webhooks_storage import Cursor, SQLiteConnector, SqlStore
from webhooks_storage.store import Connector


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
                return
            if self.dialect == "sqlite" and not view_schema.exists(
                cursor, self.dialect, self.tables.search
            ):
                view_schema.add_search(cursor, self.tables)  # a file from before the search
            view_schema.migrate_counts(cursor, self.tables, self.dialect)

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

    # ---- queries

    def _statement(self) -> AbstractContextManager[Cursor]:
        """Where a query of one statement runs: on PostgreSQL outside a transaction (one
        round trip, see view_postgres); on SQLite a read transaction (local calls)."""
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
            token = view_query.encode_token(
                tenant, filter, last[view_rows.LAST_ATTEMPT_US], last[view_rows.DELIVERY_ID]
            )
        return Page([view_rows.failed_event(row) for row in rows], token)

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
        return view_search.messages(
            cursor, self.dialect, self.tables, tenant, filter, listing=listing
        )

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
        return view_rows.details(row, history)

    def counts(
        self, tenant: str, subscription_ids: Sequence[str]
    ) -> list[failures_pb2.SubscriptionFailureCount]:
        """Per subscription: its unresolved failed events (every state but RECOVERED: a
        redelivery that succeeded resolves one) and their failed attempts, kept by the
        fold so this is a key lookup. Named subscriptions are answered in the order given,
        with zeros when they have none; no names: every subscription of the tenant that
        has any, by id."""
        t = self.tables
        found: dict[str, tuple[int, int]] = {}
        wanted: list[str] = list(dict.fromkeys(subscription_ids))
        with self.transaction(write=False) as cursor:
            if wanted:
                for chunk in view_query.id_chunks(self.dialect, wanted):
                    condition, params = view_query.in_list(self.dialect, "subscription_id", chunk)
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
        return [view_rows.redelivery_target(m, bytes(blob)) for m, blob in rows]

    # ---- retention

    def expire(self, before: datetime, chunk: int = 1000) -> int:
        """Delete failed events (and their history) whose last attempt is before
        ``before``; returns how many (view_retention)."""
        deleted = view_retention.expire(self, self.tables, self._folder, before, chunk)
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


class SQLiteFailuresView(FailuresView):
    def __init__(self, path: Path) -> None:
        super().__init__(SQLiteConnector(path))
        self.create_tables()


class PostgresFailuresView(FailuresView):
    """On PostgreSQL: the schema is created if missing, under an advisory lock (replicas
    starting together would race on CREATE ... IF NOT EXISTS), with pg_trgm for the
    message search when the extension can be created."""

    def __init__(self, conninfo: str, schema: str) -> None:
        with schema_lock(conninfo, schema) as trgm:
            super().__init__(StatementConnector(conninfo, schema), trgm_schema=trgm)
            self.create_tables()
