"""The listing read model: subscriptions and certificates as callers list them.

Kept in step with the event store by the projector, which stores the notification id it
has applied in the same transaction as the rows it changed. An abstract recorder holds the
SQL; the SQLite and PostgreSQL recorders differ only in how they connect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhooks_grpc import page_tokens
from webhooks_storage import Cursor, PostgresConnector, SQLiteConnector, SqlStore
from webhooks_subscriptions.domain.errors import InvalidField

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS subscription_listing (
        tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL,
        entity TEXT NOT NULL, active INTEGER NOT NULL, created_us BIGINT NOT NULL,
        updated_us BIGINT NOT NULL, version BIGINT NOT NULL, certificate_id TEXT NOT NULL,
        doc TEXT NOT NULL, PRIMARY KEY (tenant, id))""",
    "CREATE INDEX IF NOT EXISTS listing_created ON subscription_listing (tenant, created_us, id)",
    "CREATE INDEX IF NOT EXISTS listing_name ON subscription_listing (tenant, name_key, id)",
    "CREATE INDEX IF NOT EXISTS listing_updated ON subscription_listing (tenant, updated_us, id)",
    """CREATE INDEX IF NOT EXISTS listing_entity
        ON subscription_listing (tenant, entity, created_us, id)""",
    """CREATE INDEX IF NOT EXISTS listing_certificate
        ON subscription_listing (tenant, certificate_id)""",
    """CREATE TABLE IF NOT EXISTS certificate_listing (
        tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, created_us BIGINT NOT NULL,
        version BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id))""",
    """CREATE TABLE IF NOT EXISTS listing_tracking (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1), position BIGINT NOT NULL)""",
    """INSERT INTO listing_tracking (singleton, position) VALUES (1, 0)
        ON CONFLICT (singleton) DO NOTHING""",
]

# order name -> (sort column, descending)
ORDERS = {
    "created_desc": ("created_us", True),
    "created_asc": ("created_us", False),
    "name_asc": ("name_key", False),
    "updated_desc": ("updated_us", True),
}


@dataclass(frozen=True)
class SubscriptionRow:
    tenant: str
    id: str
    name: str
    name_key: str
    entity: str
    active: bool
    created_us: int
    updated_us: int
    version: int
    certificate_id: str
    doc: dict[str, Any]


@dataclass(frozen=True)
class CertificateRow:
    tenant: str
    id: str
    name: str
    created_us: int
    version: int
    doc: dict[str, Any]


@dataclass(frozen=True)
class Removal:
    kind: str  # "subscription" or "certificate"
    tenant: str
    id: str


Change = SubscriptionRow | CertificateRow | Removal


@dataclass(frozen=True)
class ListQuery:
    entity: str = ""
    active: bool | None = None
    name_contains: str = ""
    page_size: int = 50
    page_token: str = ""
    order: str = "created_desc"
    ids: tuple[str, ...] | None = None  # only these (None: every one)
    exclude_ids: tuple[str, ...] = ()
    include_total: bool = False


class ListingRecorder(SqlStore):
    def _transaction(self, write: bool = True) -> AbstractContextManager[Cursor]:
        return self.transaction(write)

    def _sql(self, sql: str) -> str:
        return self.sql(sql)

    def create_tables(self) -> None:
        # On PostgreSQL, bootstrap holds a lock around this: replicas starting together would
        # otherwise race on CREATE ... IF NOT EXISTS.
        with self._transaction() as cursor:
            for statement in SCHEMA:
                cursor.execute(statement)

    def position(self) -> int:
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT position FROM listing_tracking WHERE singleton = 1")
            return int(cursor.fetchone()[0])

    def apply(self, previous: int, position: int, changes: Sequence[Change]) -> None:
        with self._transaction() as cursor:
            self.advance(cursor, "listing_tracking", previous, position)
            for change in changes:
                self._apply_one(cursor, change)

    def _apply_one(self, cursor: Cursor, change: Change) -> None:
        if isinstance(change, SubscriptionRow):
            cursor.execute(
                self._sql(
                    """INSERT INTO subscription_listing (tenant, id, name, name_key, entity,
                    active, created_us, updated_us, version, certificate_id, doc)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name,
                    name_key = excluded.name_key, entity = excluded.entity,
                    active = excluded.active, updated_us = excluded.updated_us,
                    version = excluded.version, certificate_id = excluded.certificate_id,
                    doc = excluded.doc"""
                ),
                (
                    change.tenant,
                    change.id,
                    change.name,
                    change.name_key,
                    change.entity,
                    int(change.active),
                    change.created_us,
                    change.updated_us,
                    change.version,
                    change.certificate_id,
                    json.dumps(change.doc),
                ),
            )
        elif isinstance(change, CertificateRow):
            cursor.execute(
                self._sql(
                    """INSERT INTO certificate_listing (tenant, id, name, created_us, version, doc)
                    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE SET
                    name = excluded.name, version = excluded.version, doc = excluded.doc"""
                ),
                (
                    change.tenant,
                    change.id,
                    change.name,
                    change.created_us,
                    change.version,
                    json.dumps(change.doc),
                ),
            )
        else:
            table = f"{change.kind}_listing"
            cursor.execute(
                self._sql(f"DELETE FROM {table} WHERE tenant = ? AND id = ?"),
                (change.tenant, change.id),
            )

    def list_subscriptions(self, tenant: str, query: ListQuery) -> tuple[list[dict[str, Any]], str]:
        rows, next_token, _ = self.list_page(tenant, query)
        return rows, next_token

    def list_page(
        self, tenant: str, query: ListQuery
    ) -> tuple[list[dict[str, Any]], str, int | None]:
        """One page of the subscriptions the query matches, the next page's token and, with
        include_total, how many match over every page."""
        column, descending = ORDERS[query.order]
        where, params = _filters(tenant, query)
        total: int | None = None
        if query.include_total:
            with self._transaction(write=False) as cursor:
                cursor.execute(
                    self._sql(f"SELECT COUNT(*) FROM subscription_listing WHERE {where}"), params
                )
                total = int(cursor.fetchone()[0])
        if query.page_token:
            key, last_id = decode_page_token(query.page_token, query.order)
            op = "<" if descending else ">"
            where += f" AND ({column} {op} ? OR ({column} = ? AND id {op} ?))"
            params = [*params, key, key, last_id]
        direction = "DESC" if descending else "ASC"
        sql = (
            f"SELECT {column}, id, doc FROM subscription_listing WHERE {where} "
            f"ORDER BY {column} {direction}, id {direction} LIMIT ?"
        )
        with self._transaction(write=False) as cursor:
            cursor.execute(self._sql(sql), [*params, query.page_size + 1])
            rows = cursor.fetchall()
        next_token = ""
        if len(rows) > query.page_size:
            rows = rows[: query.page_size]
            next_token = encode_page_token(query.order, rows[-1][0], rows[-1][1])
        return [json.loads(row[2]) for row in rows], next_token, total

    def list_certificates(self, tenant: str) -> list[dict[str, Any]]:
        with self._transaction(write=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT doc FROM certificate_listing WHERE tenant = ? ORDER BY created_us, id"
                ),
                (tenant,),
            )
            return [json.loads(row[0]) for row in cursor.fetchall()]

    def certificates_in_use(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(tenant, subscription id, certificate view) of every active webhook that presents
        a client certificate, across organisations (the expiry check's round)."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                """SELECT s.tenant, s.id, c.doc FROM subscription_listing s
                JOIN certificate_listing c ON c.tenant = s.tenant AND c.id = s.certificate_id
                WHERE s.active = 1 AND s.certificate_id <> '' ORDER BY s.tenant, s.id"""
            )
            return [(row[0], row[1], json.loads(row[2])) for row in cursor.fetchall()]

    def certificate_users(self, tenant: str, certificate_id: str) -> list[str]:
        with self._transaction(write=False) as cursor:
            cursor.execute(
                self._sql(
                    "SELECT name FROM subscription_listing WHERE tenant = ? AND certificate_id = ?"
                ),
                (tenant, certificate_id),
            )
            return [row[0] for row in cursor.fetchall()]


def _filters(tenant: str, query: ListQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (without paging) of a listing query, and its parameters."""
    where = ["tenant = ?"]
    params: list[Any] = [tenant]
    if query.entity:
        where.append("entity = ?")
        params.append(query.entity)
    if query.active is not None:
        where.append("active = ?")
        params.append(int(query.active))
    if query.name_contains:
        escaped = (
            query.name_contains.casefold()
            .replace("\\", "\\\\")
            .replace("%", "\\%")
            .replace("_", "\\_")
        )
        where.append("name_key LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if query.ids is not None:
        # No ids: nothing matches (IN () is not SQL).
        where.append(f"id IN ({', '.join('?' * len(query.ids))})" if query.ids else "1 = 0")
        params += query.ids
    if query.exclude_ids:
        where.append(f"id NOT IN ({', '.join('?' * len(query.exclude_ids))})")
        params += query.exclude_ids
    return " AND ".join(where), params


def encode_page_token(order: str, key: Any, last_id: str) -> str:
    return page_tokens.encode([order, key, last_id])


def decode_page_token(token: str, order: str) -> tuple[Any, str]:
    try:
        token_order, key, last_id = page_tokens.decode(token)
    except (ValueError, TypeError):
        raise InvalidField("page_token", "not a token this service returned") from None
    if token_order != order:
        raise InvalidField("page_token", "was returned for another order_by")
    return key, str(last_id)


class SQLiteListingRecorder(ListingRecorder):
    def __init__(self, path: Path) -> None:
        super().__init__(SQLiteConnector(path))
        self.create_tables()


class PostgresListingRecorder(ListingRecorder):
    def __init__(self, conninfo: str, schema: str) -> None:
        super().__init__(PostgresConnector(conninfo, schema))
        self.create_tables()
