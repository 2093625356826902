"""The composition root: picks persistence from configuration and wires the parts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from webhooks_config import Settings
from webhooks_secrets import SecretBox
from webhooks_subscriptions.application import Policy, Subscriptions
from webhooks_subscriptions.health import HealthWatch
from webhooks_subscriptions.listing import (
    ListingRecorder,
    PostgresListingRecorder,
    SQLiteListingRecorder,
)
from webhooks_subscriptions.projector import ListingProjector
from webhooks_subscriptions.relay import OutboxRelay


@dataclass
class Components:
    app: Subscriptions
    listing: ListingRecorder
    projector: ListingProjector
    relay: OutboxRelay
    health: HealthWatch

    def close(self) -> None:
        self.listing.close()
        self.app.close()


def persistence_env(settings: Settings) -> dict[str, str]:
    """The event-sourcing library's own settings, as it expects them."""
    if settings.store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_path("subscriptions")),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(settings.postgres_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parts.get("dbname", "postgres")),
        "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(parts.get("port", "5432")),
        "POSTGRES_USER": str(parts.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(parts.get("password", "")),
        "POSTGRES_SCHEMA": settings.postgres_schema,
        "CREATE_TABLE": "y",
    }


@contextmanager
def _schema_lock(settings: Settings) -> Iterator[None]:
    """Held while the schema and tables are created: replicas starting together would
    otherwise race on CREATE ... IF NOT EXISTS, which PostgreSQL does not make atomic."""
    if settings.store != "postgres":
        yield
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres_url, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(hashtext('webhooks.subscriptions.schema'))")
        try:
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(settings.postgres_schema)
                )
            )
            yield
        finally:
            connection.execute(
                "SELECT pg_advisory_unlock(hashtext('webhooks.subscriptions.schema'))"
            )


def build(settings: Settings) -> Components:
    with _schema_lock(settings):
        app = Subscriptions(
            env=persistence_env(settings),
            secrets=SecretBox.from_settings(settings),
            policy=Policy(
                allow_http_loopback=settings.allow_http_loopback,
                signing_secret_overlap_seconds=settings.signing_secret_overlap_seconds,
                min_retry_interval_seconds=settings.min_retry_interval_seconds,
            ),
        )
        listing: ListingRecorder
        if settings.store == "sqlite":
            listing = SQLiteListingRecorder(settings.sqlite_path("subscriptions-listing"))
        else:
            listing = PostgresListingRecorder(settings.postgres_url, settings.postgres_schema)
    projector = ListingProjector(app, listing)
    relay = OutboxRelay(app, settings)
    app.certificate_users = lambda tenant, ident: projector.fresh().certificate_users(tenant, ident)
    app.saved_listeners += [lambda _last: projector.wake(), relay.wake]
    health = HealthWatch(app, settings)
    return Components(app=app, listing=listing, projector=projector, relay=relay, health=health)
