"""The failed-events view's PostgreSQL specifics: connections in autocommit (a read of one
statement in one round trip), the schema created under an advisory lock, and pg_trgm for
the message search when the extension can be created."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from webhooks_storage import Cursor, PostgresConnector

log = logging.getLogger(__name__)


class StatementConnector(PostgresConnector):
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


@contextmanager
def schema_lock(conninfo: str, schema: str) -> Iterator[str | None]:
    """Held while the view's tables are created: replicas starting together would race on
    CREATE ... IF NOT EXISTS. Creates the schema if missing; yields the schema holding
    pg_trgm (None: the message search goes without an index)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(hashtext('webhooks.failures.schema'))")
        try:
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            yield _trigram_schema(connection)
        finally:
            connection.execute("SELECT pg_advisory_unlock(hashtext('webhooks.failures.schema'))")


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
