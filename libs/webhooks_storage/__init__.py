"""Read models in SQL: one transaction helper over SQLite (embedded default) and PostgreSQL.

Read models (the subscriptions listing, the failures view) keep the stream or notification
position they have applied in the same transaction as the rows it changed, so a crash never
applies anything twice. ``SqlStore`` gives a subclass transactions, placeholder translation
and that compare-and-set of the position; the subclass holds its schema and its queries.
"""

from webhooks_storage.private import keep_private, tighten, use_private_umask, write_private
from webhooks_storage.store import (
    Cursor,
    PositionMoved,
    PostgresConnector,
    SQLiteConnector,
    SqlStore,
)

__all__ = [
    "Cursor",
    "PositionMoved",
    "PostgresConnector",
    "SQLiteConnector",
    "SqlStore",
    "keep_private",
    "tighten",
    "use_private_umask",
    "write_private",
]
