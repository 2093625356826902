"""NATS and endpoint health (issue 15): the users that keep health may do what it takes.

Against a real nats-server running the platform's own configuration
(webhooks_messaging.auth): the sender and the subscriptions service, each with its own
credential and inbox, make every KV call of nats-py that endpoint health makes (then the
same through ``HealthStore`` itself) and raise an operator event onto EVENTS; the router may
not write a health record. That the publisher may not raise one is test_nats_auth's (its
forbidden subjects).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from tests.e2e.test_nats_auth import connected
from tests.support.nats_server import NatsServer
from tests.support.platform_stack import platform_event
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import load_settings
from webhooks_health import (
    NO_CHANGE,
    Change,
    HealthStore,
    announce,
    health_key,
    operator_event,
    shown_health,
)
from webhooks_messaging import EVENTS, declare_streams, events_subject
from webhooks_messaging import auth as nats_auth
from webhooks_messaging.permissions import (
    ADMIN_USER,
    HEALTH_BUCKETS,
    ROUTER_USER,
    SENDER_USER,
    SUBSCRIPTIONS_USER,
    inbox_prefix,
)

KEEPERS = (SENDER_USER, SUBSCRIPTIONS_USER)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, nats_auth.NatsAuth]]:
    """A nats-server with the platform's users and its streams, declared as the admin."""
    auth = nats_auth.prepare(tmp_path / "nats-auth")
    nats_server = NatsServer(tmp_path / "store", config_file=auth.server_config)
    await asyncio.to_thread(nats_server.start)
    try:
        async with connected(nats_server.url, auth.seed_file(ADMIN_USER)) as admin:
            assert admin.nc is not None
            await declare_streams(admin.nc.jetstream(), load_settings({}))
        yield nats_server, auth
    finally:
        await asyncio.to_thread(nats_server.stop)


async def test_the_health_keepers_use_the_health_buckets_and_raise_webhook_events(
    server: tuple[NatsServer, nats_auth.NatsAuth],
) -> None:
    """The sender and the subscriptions service, each on its own inbox, make every KV call
    of endpoint health (issue 15) and put an operator event onto EVENTS; the router, which
    keeps no health, may not write a health record."""
    nats_server, auth = server
    for user in (SENDER_USER, SUBSCRIPTIONS_USER):
        async with connected(nats_server.url, auth.seed_file(user), inbox_prefix(user)) as service:
            assert service.nc is not None
            js = service.nc.jetstream()
            for bucket in HEALTH_BUCKETS:
                # Direct gets or stream message gets: whichever the bucket is made with.
                kv = await js.create_key_value(bucket=bucket, direct=bucket != "WEBHOOK_NOTICES")
                await key_value_round_trip(kv, await js.key_value(bucket), f"acme.{user}")
            event = platform_event("acme", "Webhook", "OnDisabled")
            ack = await js.publish(
                events_subject("acme", "Webhook", "OnDisabled"),
                event.SerializeToString(),
                headers={"Nats-Msg-Id": event.event_id},
                timeout=10,
            )
            assert ack.stream == EVENTS and not ack.duplicate
            await service.nc.flush()
            assert service.errors == [], user
    async with connected(nats_server.url, auth.seed_file(ROUTER_USER)) as router:
        assert router.nc is not None
        for subject in ("$KV.WEBHOOK_HEALTH.acme.s1", "$JS.API.STREAM.DELETE.KV_WEBHOOK_HEALTH"):
            await router.nc.publish(subject, b"forged", reply=router.nc.new_inbox())
            await router.violation("publish", subject)


async def key_value_round_trip(kv: KeyValue, bound: KeyValue, key: str) -> None:
    """Create, compare-and-set, read, watch and delete one key, as HealthStore does."""
    first = await kv.create(key, b"one")
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create(key, b"again")  # notice_once: only the first creator wins
    second = await kv.update(key, b"two", last=first)
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.update(key, b"stale", last=first)  # a lost compare-and-set
    assert (await bound.get(key)).value == b"two"
    assert (await bound.get(key, revision=second)).value == b"two"
    watcher = await bound.watchall()
    seen = []
    while (entry := await watcher.updates(timeout=10)) is not None:  # type: ignore[no-untyped-call]
        seen.append((entry.key, entry.value))
    assert dict(seen)[key] == b"two"  # (another user's key may be there, deleted)
    await kv.delete(key)
    deleted = await watcher.updates(timeout=10)  # type: ignore[no-untyped-call]
    assert deleted is not None and deleted.key == key and deleted.operation == "DEL"
    await watcher.stop()  # type: ignore[no-untyped-call]
    with pytest.raises(KeyNotFoundError):
        await bound.get(key)


async def test_the_health_store_runs_with_each_health_keepers_credential(
    server: tuple[NatsServer, nats_auth.NatsAuth],
) -> None:
    nats_server, auth = server
    for replica, user in enumerate(KEEPERS):
        async with connected(nats_server.url, auth.seed_file(user), inbox_prefix(user)) as service:
            assert service.nc is not None
            js = service.nc.jetstream()
            store = await HealthStore.open(js, replicas=1)  # the second binds what the first made
            stop = asyncio.Event()
            watching = asyncio.create_task(store.run(stop))
            try:
                await asyncio.wait_for(store.ready.wait(), 10)
                await health_round_trip(store, subscription_id=f"sub-{user}")
                assert await store.notice_once(f"acme.sub.cert.{user}")
                assert not await store.notice_once(f"acme.sub.cert.{user}")
                first = await store.reserve_rate_slot("acme", "sub-rated", 10, now=1_000.0)
                second = await store.reserve_rate_slot("acme", "sub-rated", 10, now=1_000.0)
                assert second == pytest.approx(first + 0.1), (replica, first, second)
                state = messages_pb2.SubscriptionState(
                    id=f"sub-{user}", tenant="acme", name="hook", entity="Object"
                )
                event = operator_event(
                    "OnDisabled",
                    tenant="acme",
                    subscription=state,
                    health=None,
                    event_id=f"webhook:sub-{user}:disabled:1",
                    occurred_at=datetime.now(UTC),
                )
                await announce(js, event)
                await service.nc.flush()
                assert service.errors == [], user
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(watching, 10)


async def health_round_trip(store: HealthStore, *, subscription_id: str) -> None:
    """A record written by compare-and-set, seen by the watch, then deleted."""
    record = messages_pb2.EndpointHealth(
        tenant="acme",
        subscription_id=subscription_id,
        health=common_pb2.Health(state=common_pb2.HEALTH_STATE_FAILING, consecutive_failures=3),
        streak_attempts=3,
    )
    failing = Change(write=True, record=record, announcements=(), transitions=())
    applied = await store.change("acme", subscription_id, lambda current: failing)
    assert applied.write
    cached = store.cached(subscription_id)
    assert cached is not None and cached.streak_attempts == 3
    unchanged = await store.change("acme", subscription_id, lambda current: NO_CHANGE)
    assert not unchanged.write
    await store.delete("acme", subscription_id)
    assert store.cached(subscription_id) is None
    shown = shown_health(store.cached(subscription_id), datetime.now(UTC))
    assert shown.state == common_pb2.HEALTH_STATE_HEALTHY
    assert health_key("acme", subscription_id) == f"acme.{subscription_id}"
