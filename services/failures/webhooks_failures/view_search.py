"""SQLite's message search, the choice of plan: whether a query for a text in the error
message reads the rows of the tenant's messages containing it through the index by
message (a rare text), or scans in listing order with the LIKE (view_query has both).

PostgreSQL never needs it: its planner uses the pg_trgm index on its own.
"""

from __future__ import annotations

from webhooks_failures import view_query
from webhooks_failures.model import Filter
from webhooks_failures.view_schema import Tables
from webhooks_storage import Cursor

# A text in more of the tenant's distinct messages than this is looked for by the scan; a
# listing with other equality filters reads the text's rows through the index by message
# when they are at most MESSAGE_ROWS_MAX (each read, checked, sorted), else the scan of
# the filters' index, which stops after a page (it reads about page / share-of-rows-with-
# the-text rows).
MESSAGE_KEYS_MAX = 1000
MESSAGE_ROWS_MAX = 4000
# Equality filters besides the text: with none, the text's messages give the listing order.
_EQUALITY_FIELDS = (
    "subscription_ids", "error_codes", "states", "entity", "trigger", "subchannel",
)  # fmt: skip


def messages(
    cursor: Cursor, dialect: str, tables: Tables, tenant: str, filter: Filter, *, listing: bool
) -> view_query.Messages | None:
    """SQLite: the tenant's messages containing the filter's text when a query should
    read their rows through the index by message, else None (the LIKE: no text, one
    shorter than a trigram, one in too many messages, or, for a listing with other
    equality filters, in too many rows). PostgreSQL: None."""
    if dialect != "sqlite" or not filter.message_contains:
        return None
    phrase = view_query.search_phrase(filter.message_contains)
    if phrase is None:
        return None
    t = tables
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
    found = view_query.Messages(keys, cursor.fetchone()[0])
    equality = filter.channel is not None or any(getattr(filter, n) for n in _EQUALITY_FIELDS)
    if not keys or not listing or (not equality and len(keys) <= view_query.MAX_SPLIT_VALUES):
        return found
    w = view_query.where(tenant, Filter(message_contains=filter.message_contains), messages=found)
    cursor.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {view_query.source(t.events, found)} "
        f"WHERE {w.sql()} LIMIT ?)",
        [*w.params, MESSAGE_ROWS_MAX + 1],
    )
    return found if int(cursor.fetchone()[0]) <= MESSAGE_ROWS_MAX else None
