"""Retention of the failed-events view: failed events whose last attempt is older than the
configured age are deleted with their history, and the per-subscription counts lowered by
the unresolved among them; a subscription's counts row goes with its last failed event.

Chunked transactions: a projector sharing the database is never held up for long. On
PostgreSQL a chunk's rows are locked as they are read (FOR UPDATE): the counts are lowered
by the failed attempts read, which a batch folded in meanwhile would otherwise change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from webhooks_failures.model import RECOVERED
from webhooks_failures.view_fold import Folder
from webhooks_failures.view_query import id_chunks, in_list, micros
from webhooks_failures.view_schema import Tables
from webhooks_storage import Cursor, SqlStore


def expire(store: SqlStore, tables: Tables, folder: Folder, before: datetime, chunk: int) -> int:
    """Delete the failed events (and their history) of ``tables`` whose last attempt is
    before ``before``, ``chunk`` at a time; returns how many."""
    cutoff = micros(before)
    t = tables
    with store.transaction(write=False) as cursor:
        cursor.execute(f"SELECT DISTINCT tenant FROM {t.counts}")
        tenants = [row[0] for row in cursor.fetchall()]
    lock = " FOR UPDATE" if store.dialect == "postgres" else ""
    deleted = 0
    for tenant in tenants:
        while True:
            with store.transaction() as cursor:
                cursor.execute(
                    store.sql(
                        "SELECT delivery_id, subscription_id, failed_attempts, message_key, state "
                        f"FROM {t.events}"
                        f" WHERE tenant = ? AND last_attempt_us < ? LIMIT ?{lock}"
                    ),
                    (tenant, cutoff, chunk),
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                _delete(store, tables, folder, cursor, tenant, rows)
                deleted += len(rows)
    return deleted


def _delete(
    store: SqlStore,
    t: Tables,
    folder: Folder,
    cursor: Cursor,
    tenant: str,
    rows: Sequence[Sequence[Any]],
) -> None:
    ids = [row[0] for row in rows]
    for ids_chunk in id_chunks(store.dialect, ids):
        condition, params = in_list(store.dialect, "delivery_id", ids_chunk)
        for table in (t.history, t.events):
            cursor.execute(
                store.sql(f"DELETE FROM {table} WHERE tenant = ? AND {condition}"),
                (tenant, *params),
            )
    removed: dict[str, list[int]] = {}
    for _, subscription_id, failed_attempts, _key, state in rows:
        count = removed.setdefault(subscription_id, [0, 0])
        if state != RECOVERED:  # the counts are of the unresolved only
            count[0] += failed_attempts
            count[1] += 1
    cursor.executemany(
        store.sql(
            f"UPDATE {t.counts} SET failed_attempts = failed_attempts - ?, "
            "failed_events = failed_events - ? WHERE tenant = ? AND subscription_id = ?"
        ),
        [(a, e, tenant, s) for s, (a, e) in removed.items()],
    )
    # The row of a subscription none of whose failed events remain (its tenant's rows
    # are how expire finds the tenants of the view).
    cursor.executemany(
        store.sql(
            f"DELETE FROM {t.counts} WHERE tenant = ? AND subscription_id = ? "
            f"AND failed_events <= 0 AND NOT EXISTS (SELECT 1 FROM {t.events} "
            "WHERE tenant = ? AND subscription_id = ?)"
        ),
        [(tenant, s, tenant, s) for s in removed],
    )
    if store.dialect == "sqlite":
        folder.drop_unused_messages(cursor, {(tenant, row[3]) for row in rows})
