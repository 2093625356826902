"""The failures view's tables on SQLite and PostgreSQL, and the swap a rebuild ends with.

Four tables per generation of the view: the failed events (one row per delivery, its
latest state and counters), their trial history (every AttemptRecord, serialized, keyed by
delivery, series and attempt: the key that makes applying a record twice a no-op), the
per-subscription counts (kept by the projector so CountFailures is a key lookup, not a scan
of a million rows) and the stream position applied.

A rebuild fills a second set of tables (the shadow) and renames it over the live one.
Index names are unique per database (SQLite) or schema (PostgreSQL) and survive a table
rename, so every index name ends in a token drawn when its tables are created: the
shadow's indexes never collide with the live ones they replace.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from webhooks_storage import Cursor


@dataclass(frozen=True)
class Tables:
    events: str
    history: str
    counts: str
    tracking: str

    @classmethod
    def named(cls, suffix: str) -> Tables:
        return cls(
            events=f"failed_events{suffix}",
            history=f"failure_history{suffix}",
            counts=f"failure_counts{suffix}",
            tracking=f"failures_tracking{suffix}",
        )

    def all(self) -> tuple[str, ...]:
        return (self.events, self.history, self.counts, self.tracking)


LIVE = Tables.named("")
SHADOW = Tables.named("_shadow")

# Column types per dialect. PostgreSQL compares text in the "C" collation: delivery ids
# order the same as on SQLite (bytewise), and the keyset comparisons of pagination agree
# with the index order whatever the database's default collation.
_TYPES = {
    "sqlite": {"text": "TEXT", "blob": "BLOB"},
    "postgres": {"text": 'TEXT COLLATE "C"', "blob": "BYTEA"},
}


def ddl(tables: Tables, dialect: str, trgm_schema: str | None = None) -> list[str]:
    """CREATE statements of one generation of the tables (they must not exist yet)."""
    t = _TYPES[dialect]
    text, blob = t["text"], t["blob"]
    token = secrets.token_hex(4)
    ev = tables.events

    def index(name: str, columns: str) -> str:
        return f"CREATE INDEX fx_{name}_{token} ON {ev} ({columns})"

    statements = [
        f"""CREATE TABLE {ev} (
            tenant {text} NOT NULL, delivery_id {text} NOT NULL, event_id {text} NOT NULL,
            subscription_id {text} NOT NULL, subscription_name {text} NOT NULL,
            entity {text} NOT NULL, trigger_name {text} NOT NULL, channel INTEGER,
            subchannel {text} NOT NULL, last_attempt_us BIGINT NOT NULL,
            error_code {text} NOT NULL, status_code INTEGER NOT NULL,
            failure_class INTEGER NOT NULL, error_message {text} NOT NULL,
            message_key {text} NOT NULL, attempts INTEGER NOT NULL,
            failed_attempts INTEGER NOT NULL, state INTEGER NOT NULL,
            max_series INTEGER NOT NULL, head_series INTEGER NOT NULL,
            head_attempt INTEGER NOT NULL,
            PRIMARY KEY (tenant, delivery_id))""",
        # Every filtered listing is "newest first": each index ends with the sort key so a
        # first page is an ordered index range read that stops after page_size rows.
        index("time", "tenant, last_attempt_us, delivery_id"),
        index("sub", "tenant, subscription_id, last_attempt_us, delivery_id"),
        index("state", "tenant, state, last_attempt_us, delivery_id"),
        index("code", "tenant, error_code, last_attempt_us, delivery_id"),
        index("entity", "tenant, entity, last_attempt_us, delivery_id"),
        f"""CREATE TABLE {tables.history} (
            tenant {text} NOT NULL, delivery_id {text} NOT NULL, series INTEGER NOT NULL,
            attempt INTEGER NOT NULL, record {blob} NOT NULL,
            PRIMARY KEY (tenant, delivery_id, series, attempt))""",
        f"""CREATE TABLE {tables.counts} (
            tenant {text} NOT NULL, subscription_id {text} NOT NULL,
            failed_attempts BIGINT NOT NULL, failed_events BIGINT NOT NULL,
            PRIMARY KEY (tenant, subscription_id))""",
        f"""CREATE TABLE {tables.tracking} (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1), position BIGINT NOT NULL)""",
        f"INSERT INTO {tables.tracking} (singleton, position) VALUES (1, 0)",
    ]
    if dialect == "postgres" and trgm_schema is not None:
        # Substring search (LIKE '%text%') over the casefolded message: a trigram index
        # answers it without reading every row of the tenant.
        statements.append(
            f"CREATE INDEX fx_msg_{token} ON {ev} "
            f"USING gin (message_key {trgm_schema}.gin_trgm_ops)"
        )
    return statements


def exists(cursor: Cursor, dialect: str, table: str) -> bool:
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return cursor.fetchone() is not None
    # The pool's connections have the view's schema as search_path.
    cursor.execute("SELECT to_regclass(%s)", (table,))
    return cursor.fetchone()[0] is not None


def drop(cursor: Cursor, tables: Tables) -> None:
    for table in tables.all():
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def swap(cursor: Cursor, shadow: Tables, live: Tables) -> None:
    """Replace the live tables by the shadow ones, in the caller's transaction: readers see
    the old view or the new one, never a mix (DDL is transactional on both databases)."""
    drop(cursor, live)
    for old, new in zip(shadow.all(), live.all(), strict=True):
        cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")
