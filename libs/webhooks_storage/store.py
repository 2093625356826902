"""Transactions over SQLite or PostgreSQL, and the position a read model has applied."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from webhooks_storage.private import FILE_MODE, make_private


class Cursor(Protocol):
    """What both drivers' cursors offer that the read models use."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class PositionMoved(Exception):
    """Another projector applied this position first: the batch is discarded."""


class Connector(Protocol):
    placeholder: str
    dialect: str  # "sqlite" or "postgres"

    def transaction(self, write: bool = True) -> AbstractContextManager[Cursor]: ...

    def close(self) -> None: ...


class SQLiteConnector:
    """One connection per thread (sqlite3 connections are not shared across threads), WAL
    so that readers are not blocked by the writer."""

    placeholder = "?"
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        create_private(path)
        self._connection().execute("PRAGMA journal_mode=WAL")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            # NORMAL in WAL mode: a power loss may lose the last transactions, never
            # corrupt; the position goes back with them, so they are applied again.
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Cursor]:
        connection = self._connection()
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def close(self) -> None:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def create_private(path: Path) -> None:
    """The database file made (empty is a valid SQLite database) or kept owner-only before
    SQLite opens it: SQLite gives its -wal and -shm files the database file's mode."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        make_private(companion)


class PostgresConnector:
    """A small pool; every connection's search_path is the configured schema."""

    placeholder = "%s"
    dialect = "postgres"

    def __init__(self, conninfo: str, schema: str, max_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"options": f"-c search_path={schema}"},
            open=True,
        )

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Cursor]:
        with self._pool.connection() as connection, connection.transaction():
            yield connection.cursor()

    def close(self) -> None:
        self._pool.close()


class SqlStore:
    """Base of a read model: ``transaction``, ``sql`` (``?`` placeholders written once, for
    both drivers) and ``advance`` (the compare-and-set of the applied position)."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    @property
    def dialect(self) -> str:
        return self.connector.dialect

    def transaction(self, write: bool = True) -> AbstractContextManager[Cursor]:
        return self.connector.transaction(write)

    def sql(self, statement: str) -> str:
        placeholder = self.connector.placeholder
        return statement if placeholder == "?" else statement.replace("?", placeholder)

    def advance(
        self, cursor: Cursor, table: str, previous: int, position: int, key: str = "singleton"
    ) -> None:
        """Move ``table``'s position from ``previous`` to ``position`` in the caller's
        transaction, or raise PositionMoved when another writer already moved it: two
        replicas of a projector on one database never both apply a batch."""
        cursor.execute(
            self.sql(f"UPDATE {table} SET position = ? WHERE {key} = 1 AND position = ?"),
            (position, previous),
        )
        if cursor.rowcount != 1:
            raise PositionMoved()

    def close(self) -> None:
        self.connector.close()
