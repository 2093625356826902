"""Fixtures shared by every test: a real NATS server, PostgreSQL when it is reachable.

Subfolders add their own conftest.py for their own fixtures; helpers live in
``tests.support``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.support import NatsServer
from tests.support.postgres import create_schema, drop_schemas

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One nats-server with JetStream for the session; tests may stop()/start() it.

    The streams are shared: use unique tenants/ids, and delete consumers you create on
    the DELIVERIES work queue (overlapping consumers are refused there).
    """
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    if not nats_server.running:  # a previous test stopped it and failed before restarting
        nats_server.start()
    return nats_server.url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A reachable PostgreSQL URL, or skip (fail when WEBHOOKS_REQUIRE_POSTGRES=1)."""
    url = os.environ.get("WEBHOOKS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as err:
        message = f"PostgreSQL not reachable at {url}: {type(err).__name__}: {err}"
        if os.environ.get("WEBHOOKS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} (WEBHOOKS_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: ``postgres_schema("prefix")`` creates a fresh schema, dropped afterwards."""
    created: list[str] = []

    def create(prefix: str = "test") -> str:
        created.append(create_schema(postgres_url, prefix))
        return created[-1]

    yield create
    drop_schemas(postgres_url, created)
