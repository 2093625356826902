"""The routing table fed from a real SUBSCRIPTIONS stream on a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from tests.support import NatsServer
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import load_settings
from webhooks_messaging import (
    certificate_subject,
    connect,
    declare_streams,
    subscription_subject,
)
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_router.routes import RoutingTable

WAIT_SECONDS = 10.0


class Broker:
    """An own nats-server (so the SUBSCRIPTIONS stream holds only this test's messages)."""

    def __init__(self, server: NatsServer, nc: Client) -> None:
        self.server = server
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self._notification = 0

    async def publish(self, message: messages_pb2.SubscriptionDomainEvent) -> int:
        self._notification += 1
        message.notification_id = self._notification
        which = message.WhichOneof("state")
        if which == "certificate":
            subject = certificate_subject(message.certificate.tenant, message.certificate.id)
        else:
            subject = subscription_subject(message.subscription.tenant, message.subscription.id)
        ack = await self.js.publish(subject, message.SerializeToString())
        seq: int = ack.seq
        return seq

    async def publish_state(self, **fields: Any) -> int:
        return await self.publish(
            messages_pb2.SubscriptionDomainEvent(
                event_type="Subscription.Changed", subscription=subscription(**fields)
            )
        )


def subscription(
    subscription_id: str,
    *,
    tenant: str = "acme",
    entity: str = "Object",
    trigger: str = "OnNew",
    version: int = 1,
    active: bool = True,
    deleted: bool = False,
) -> messages_pb2.SubscriptionState:
    return messages_pb2.SubscriptionState(
        id=subscription_id,
        tenant=tenant,
        name=f"name-{subscription_id}",
        entity=entity,
        triggers=[common_pb2.TriggerSpec(trigger=trigger)],
        version=version,
        active=active,
        deleted=deleted,
    )


def event(subscription_tenant: str = "acme") -> messages_pb2.PlatformEvent:
    return messages_pb2.PlatformEvent(
        event_id="e", tenant=subscription_tenant, entity="Object", trigger="OnNew"
    )


def snapshot(table: RoutingTable, ids: list[str]) -> dict[str, Any]:
    return {i: (table.status("acme", i), table.get("acme", i)) for i in ids}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    server = NatsServer(tmp_path / "store")
    await asyncio.to_thread(server.start)
    settings = load_settings({"WEBHOOKS_NATS_URL": server.url})
    nc = await connect(settings, "test-router-feed")
    try:
        await declare_streams(nc.jetstream(), settings)
        yield Broker(server, nc)
    finally:
        await nc.close()
        await asyncio.to_thread(server.stop)


RunFeed = Callable[[], Awaitable[SubscriptionFeed[RoutingTable]]]


@pytest.fixture
async def run_feed(broker: Broker) -> AsyncIterator[RunFeed]:
    """Factory: a feed on a fresh table, running until the end of the test."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start() -> SubscriptionFeed[RoutingTable]:
        feed = SubscriptionFeed(RoutingTable())
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(feed.run(broker.js, stop))))
        await asyncio.wait_for(feed.ready.wait(), WAIT_SECONDS)
        return feed

    yield start
    for stop, task in running:
        stop.set()
        await asyncio.wait_for(task, WAIT_SECONDS)


async def test_an_empty_stream_is_ready_at_once(run_feed: RunFeed) -> None:
    feed = await run_feed()
    assert len(feed.table) == 0
    assert feed.table.applied_seq == 0


async def test_the_feed_builds_the_table_from_the_stream(broker: Broker, run_feed: RunFeed) -> None:
    ids = [f"s{i}" for i in range(50)]
    for i, subscription_id in enumerate(ids):
        await broker.publish_state(subscription_id=subscription_id, active=i % 5 != 0)
    await broker.publish_state(subscription_id="s1", version=2, deleted=True)
    last = await broker.publish(
        messages_pb2.SubscriptionDomainEvent(
            event_type="Certificate.Uploaded",
            certificate=messages_pb2.CertificateState(id="c1", tenant="acme", version=1),
        )
    )

    feed = await run_feed()
    table = feed.table
    assert table.applied_seq == last  # the certificate is read, not routed
    assert len(table) == 50 - 10 - 1
    assert table.status("acme", "s0") == "inactive"
    assert table.status("acme", "s1") == "deleted"
    assert table.status("acme", "s2") == "active"
    assert len(table.route(event())) == 39
    assert table.route(event("globex")) == []

    # Then it follows the stream.
    seq = await broker.publish_state(subscription_id="late")
    assert await feed.caught_up(broker.js, WAIT_SECONDS)
    assert table.applied_seq >= seq
    assert table.status("acme", "late") == "active"


async def test_after_caught_up_a_deactivated_subscription_is_not_routed(
    broker: Broker, run_feed: RunFeed
) -> None:
    await broker.publish_state(subscription_id="s")
    feed = await run_feed()
    assert [e.subscription_id for e in feed.table.route(event())] == ["s"]

    await broker.publish_state(subscription_id="s", version=2, active=False)
    started = asyncio.get_running_loop().time()
    assert await feed.caught_up(broker.js, WAIT_SECONDS)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert feed.table.route(event()) == []


async def test_caught_up_times_out_when_the_feed_does_not_follow(broker: Broker) -> None:
    await broker.publish_state(subscription_id="s")
    feed = SubscriptionFeed(RoutingTable())  # never run
    assert not await feed.caught_up(broker.js, 0.2)


async def test_garbage_does_not_stop_the_feed(broker: Broker, run_feed: RunFeed) -> None:
    await broker.js.publish("subscriptions.x.subscription.y", b"\xff\xfenot a protobuf")
    await broker.js.publish("subscriptions.x.subscription.z", b"")  # decodes to no state
    feed = await run_feed()
    assert feed.table.applied_seq == 2

    await broker.js.publish("subscriptions.x.subscription.y", b"\x0a\x05garbage\xff")
    seq = await broker.publish_state(subscription_id="after-garbage")
    assert await feed.caught_up(broker.js, WAIT_SECONDS)
    assert feed.table.applied_seq == seq
    assert feed.table.status("acme", "after-garbage") == "active"
    assert feed.skipped == {"undecodable": 2, "invalid": 1}


async def test_a_restarted_feed_rebuilds_the_same_table(broker: Broker, run_feed: RunFeed) -> None:
    ids = [f"s{i}" for i in range(20)]
    for i, subscription_id in enumerate(ids):
        await broker.publish_state(subscription_id=subscription_id, trigger="OnNewChild")
        if i % 3 == 0:
            await broker.publish_state(subscription_id=subscription_id, version=2, active=False)
    first = await run_feed()
    second = await run_feed()
    assert snapshot(first.table, ids) == snapshot(second.table, ids)
    assert first.table.applied_seq == second.table.applied_seq
    assert len(second.table) == 13


async def test_the_feed_survives_a_broker_restart(broker: Broker, run_feed: RunFeed) -> None:
    await broker.publish_state(subscription_id="before")
    feed = await run_feed()

    await asyncio.to_thread(broker.server.stop)
    await asyncio.to_thread(broker.server.start)
    for _ in range(int(WAIT_SECONDS / 0.1)):
        if broker.nc.is_connected:
            break
        await asyncio.sleep(0.1)
    seq = await broker.publish_state(subscription_id="after")
    # The broker lost the in-memory ordered consumer; nats-py recreates it after two
    # missed idle heartbeats, from the sequence after the last one it saw.
    assert await feed.caught_up(broker.js, WAIT_SECONDS)
    assert feed.table.applied_seq == seq
    assert feed.table.status("acme", "after") == "active"
    assert feed.table.status("acme", "before") == "active"


async def test_run_again_on_the_same_table_resumes_after_applied_seq(broker: Broker) -> None:
    await broker.publish_state(subscription_id="first")
    feed = SubscriptionFeed(RoutingTable())
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(broker.js, stop))
    await asyncio.wait_for(feed.ready.wait(), WAIT_SECONDS)
    stop.set()
    await task

    seq = await broker.publish_state(subscription_id="second")
    again = asyncio.Event()
    task = asyncio.create_task(feed.run(broker.js, again))
    try:
        assert await feed.caught_up(broker.js, WAIT_SECONDS)
    finally:
        again.set()
        await task
    assert feed.table.applied_seq == seq
    assert len(feed.table) == 2
