"""Throwaway PostgreSQL schemas for tests and benchmarks (each run gets its own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable


def create_schema(url: str, prefix: str) -> str:
    """A new schema ``<prefix>_<random>``; its name."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return name


def drop_schemas(url: str, names: Iterable[str]) -> None:
    """Drops each schema with everything in it (absent ones are fine)."""
    names = list(names)
    if not names:
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        for name in names:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
            )
