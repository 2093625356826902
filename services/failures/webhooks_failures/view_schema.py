"""The failures view's tables on SQLite and PostgreSQL, and the swap a rebuild ends with.

Per generation of the view: the failed events, their trial history, the per-subscription
counts and the stream position applied; on SQLite also the message search's tables. Why
the tables, indexes and index names are as they are: services/failures/README.md, "The
view's tables".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from webhooks_failures.model import RECOVERED
from webhooks_storage import Cursor


@dataclass(frozen=True)
class Tables:
    events: str
    history: str
    counts: str
    tracking: str
    messages: str  # SQLite only: the distinct messages per tenant
    search: str  # SQLite only: the FTS5 trigram table over them

    @classmethod
    def named(cls, suffix: str) -> Tables:
        return cls(
            events=f"failed_events{suffix}",
            history=f"failure_history{suffix}",
            # Of the unresolved failed events only; "failure_counts" held every failed
            # event's and is replaced when a view from before is opened (migrate_counts).
            counts=f"failure_open_counts{suffix}",
            tracking=f"failures_tracking{suffix}",
            messages=f"failure_messages{suffix}",
            search=f"failure_search{suffix}",
        )

    def all(self, dialect: str) -> tuple[str, ...]:
        """Every table of the generation; the messages table before the search table (its
        triggers write into it)."""
        tables = (self.events, self.history, self.counts, self.tracking)
        return (*tables, self.messages, self.search) if dialect == "sqlite" else tables


LIVE = Tables.named("")
SHADOW = Tables.named("_shadow")

# Column types per dialect. PostgreSQL compares text in the "C" collation: delivery ids
# order the same as on SQLite (bytewise), and the keyset comparisons of pagination agree
# with the index order whatever the database's default collation.
_TYPES = {
    "sqlite": {"text": "TEXT", "blob": "BLOB"},
    "postgres": {"text": 'TEXT COLLATE "C"', "blob": "BYTEA"},
}


# The columns the filters test by equality; each listing index carries those it does not
# lead with, after the listing order.
FILTER_COLUMNS = (
    "subscription_id", "error_code", "state", "entity", "trigger_name", "channel", "subchannel",
)  # fmt: skip
# name -> leading column (None: the time index, for listings without an equality filter)
LISTING_INDEXES = {
    "time": None,
    "sub": "subscription_id",
    "state": "state",
    "code": "error_code",
    "entity": "entity",
}


def listing_index_columns(lead: str | None) -> str:
    rest = [c for c in FILTER_COLUMNS if c != lead]
    return ", ".join(["tenant", *([lead] if lead else []), "last_attempt_us", "delivery_id", *rest])


def search_ddl(tables: Tables, token: str) -> list[str]:
    """SQLite: the messages table, the FTS5 trigram table over them (case-sensitive, since
    message_key is casefolded already; contentless: it keeps trigrams and positions, not
    the text), the triggers keeping it in step, and the events' index by message."""
    return [
        f"""CREATE TABLE {tables.messages} (
            id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, message_key TEXT NOT NULL,
            UNIQUE (tenant, message_key))""",
        f"CREATE VIRTUAL TABLE {tables.search} USING fts5(message_key, content='', "
        "columnsize=0, tokenize='trigram case_sensitive 1')",
        *search_triggers(tables, token),
        f"CREATE INDEX fx_msg_{token} ON {tables.events} "
        "(tenant, message_key, last_attempt_us, delivery_id)",
    ]


def search_triggers(tables: Tables, token: str) -> list[str]:
    # A contentless FTS5 table deletes a row given the values it was indexed with: the
    # delete trigger passes the old message_key. The hidden column named after the table
    # is not renamed with it, so a swap recreates these for the new names.
    ms, se = tables.messages, tables.search
    return [
        f"CREATE TRIGGER fx_search_insert_{token} AFTER INSERT ON {ms} BEGIN "
        f"INSERT INTO {se} (rowid, message_key) VALUES (new.id, new.message_key); END",
        f"CREATE TRIGGER fx_search_delete_{token} AFTER DELETE ON {ms} BEGIN "
        f"INSERT INTO {se} ({se}, rowid, message_key) "
        "VALUES ('delete', old.id, old.message_key); END",
    ]


def fill_messages(tables: Tables) -> str:
    """SQLite: the messages of the events table that the messages table lacks (for rows
    written without the fold: a view from before the search, a benchmark's seed)."""
    return (
        f"INSERT OR IGNORE INTO {tables.messages} (tenant, message_key) "
        f"SELECT DISTINCT tenant, message_key FROM {tables.events}"
    )


def ddl(tables: Tables, dialect: str, trgm_schema: str | None = None) -> list[str]:
    """CREATE statements of one generation of the tables (they must not exist yet)."""
    t = _TYPES[dialect]
    text, blob = t["text"], t["blob"]
    token = secrets.token_hex(4)
    ev = tables.events

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
        # Every filtered listing is "newest first": each index has the sort key after its
        # leading column so a first page is an ordered index range read that stops after
        # page_size rows, and the other filter columns after it (see the module's doc).
        *(
            f"CREATE INDEX fx_{name}_{token} ON {ev} ({listing_index_columns(lead)})"
            for name, lead in LISTING_INDEXES.items()
        ),
        f"""CREATE TABLE {tables.history} (
            tenant {text} NOT NULL, delivery_id {text} NOT NULL, series INTEGER NOT NULL,
            attempt INTEGER NOT NULL, record {blob} NOT NULL,
            PRIMARY KEY (tenant, delivery_id, series, attempt))""",
        counts_ddl(tables, dialect),
        f"""CREATE TABLE {tables.tracking} (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1), position BIGINT NOT NULL)""",
        f"INSERT INTO {tables.tracking} (singleton, position) VALUES (1, 0)",
    ]
    if dialect == "sqlite":
        statements += search_ddl(tables, token)
    if dialect == "postgres" and trgm_schema is not None:
        # Substring search (LIKE '%text%') over the casefolded message: a trigram index
        # answers it without reading every row of the tenant.
        statements.append(
            f"CREATE INDEX fx_msg_{token} ON {ev} "
            f"USING gin (message_key {trgm_schema}.gin_trgm_ops)"
        )
    return statements


def counts_ddl(tables: Tables, dialect: str) -> str:
    text = _TYPES[dialect]["text"]
    return f"""CREATE TABLE {tables.counts} (
            tenant {text} NOT NULL, subscription_id {text} NOT NULL,
            failed_attempts BIGINT NOT NULL, failed_events BIGINT NOT NULL,
            PRIMARY KEY (tenant, subscription_id))"""


def migrate_counts(cursor: Cursor, tables: Tables, dialect: str) -> None:
    """A view from before the counts were of the unresolved failed events only: its counts
    table replaced by one counted from the failed events (in the caller's transaction)."""
    if exists(cursor, dialect, tables.counts):
        return
    cursor.execute(counts_ddl(tables, dialect))
    open_ = f"state <> {RECOVERED}"
    cursor.execute(
        f"INSERT INTO {tables.counts} (tenant, subscription_id, failed_attempts, failed_events) "
        f"SELECT tenant, subscription_id, SUM(CASE WHEN {open_} THEN failed_attempts ELSE 0 END), "
        f"SUM(CASE WHEN {open_} THEN 1 ELSE 0 END) FROM {tables.events} "
        "GROUP BY tenant, subscription_id"
    )
    legacy = tables.counts.replace("failure_open_counts", "failure_counts")
    cursor.execute(f"DROP TABLE IF EXISTS {legacy}")


def exists(cursor: Cursor, dialect: str, table: str) -> bool:
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return cursor.fetchone() is not None
    # The pool's connections have the view's schema as search_path.
    cursor.execute("SELECT to_regclass(%s)", (table,))
    return cursor.fetchone()[0] is not None


def drop(cursor: Cursor, tables: Tables, dialect: str) -> None:
    for table in tables.all(dialect):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def swap(cursor: Cursor, shadow: Tables, live: Tables, dialect: str) -> None:
    """Replace the live tables by the shadow ones, in the caller's transaction: readers see
    the old view or the new one, never a mix (DDL is transactional on both databases)."""
    drop(cursor, live, dialect)
    if dialect == "sqlite":
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (shadow.messages,),
        )
        for (trigger,) in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER {trigger}")
    for old, new in zip(shadow.all(dialect), live.all(dialect), strict=True):
        cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")
    if dialect == "sqlite":
        for statement in search_triggers(live, secrets.token_hex(4)):
            cursor.execute(statement)


def add_search(cursor: Cursor, tables: Tables) -> None:
    """SQLite: the message search for a view created before it existed, filled from the
    events table (in the caller's transaction)."""
    for statement in search_ddl(tables, secrets.token_hex(4)):
        cursor.execute(statement)
    cursor.execute(fill_messages(tables))
