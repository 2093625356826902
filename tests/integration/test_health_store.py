"""webhooks_health.HealthStore on a real nats-server: compare-and-set changes under
concurrent writers, the watch cache of another store, notices raised once, and rate slots
spaced across stores.

The buckets are the platform's (the session's server is shared): each test uses a tenant of
its own, so its keys are its own."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from tests.support.nats_server import NatsServer
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import load_settings
from webhooks_health import (
    HEALTH_BUCKET,
    NO_CHANGE,
    Change,
    HealthStore,
    announce,
    announcement_event_id,
    health_key,
    operator_event,
)
from webhooks_messaging.streams import EVENTS, declare_stream, stream_configs
from webhooks_messaging.subjects import events_subject

HS = common_pb2.HealthState


@pytest.fixture
async def two_js(nats_url: str) -> AsyncIterator[tuple[JetStreamContext, JetStreamContext]]:
    """Two connections: two sender replicas."""
    first = await nats.connect(nats_url)
    second = await nats.connect(nats_url)
    try:
        yield first.jetstream(), second.jetstream()
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def stores(
    two_js: tuple[JetStreamContext, JetStreamContext],
) -> AsyncIterator[tuple[HealthStore, HealthStore]]:
    """Two stores over the same buckets, each watching."""
    first = await HealthStore.open(two_js[0], replicas=1)
    second = await HealthStore.open(two_js[1], replicas=1)
    stop = asyncio.Event()
    watches = [asyncio.create_task(store.run(stop)) for store in (first, second)]
    try:
        await asyncio.wait_for(first.ready.wait(), 30)
        await asyncio.wait_for(second.ready.wait(), 30)
        yield first, second
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*watches), 30)


def tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def failing(tenant: str, subscription_id: str, failures: int) -> messages_pb2.EndpointHealth:
    return messages_pb2.EndpointHealth(
        tenant=tenant,
        subscription_id=subscription_id,
        health=common_pb2.Health(state=HS.HEALTH_STATE_FAILING, consecutive_failures=failures),
    )


def increment(
    tenant: str, subscription_id: str
) -> Callable[[messages_pb2.EndpointHealth | None], Change]:
    def decide(record: messages_pb2.EndpointHealth | None) -> Change:
        count = record.health.consecutive_failures if record is not None else 0
        return Change(True, failing(tenant, subscription_id, count + 1), (), ())

    return decide


async def test_concurrent_changes_from_two_stores_keep_every_increment(
    stores: tuple[HealthStore, HealthStore],
) -> None:
    owner, sub = tenant(), str(uuid.uuid4())
    per_task = 20
    applied: list[int] = []

    async def writer(store: HealthStore) -> None:
        done = 0
        while done < per_task:
            change = await store.change(owner, sub, increment(owner, sub))
            if change.write:  # a change that lost every compare-and-set is made again
                assert change.record is not None
                applied.append(change.record.health.consecutive_failures)
                done += 1

    await asyncio.gather(*(writer(store) for store in (*stores, *stores)))

    # Every applied change saw the one before it: the counts are 1..N, each once.
    assert sorted(applied) == list(range(1, 4 * per_task + 1))
    final = await stores[0].change(owner, sub, lambda record: NO_CHANGE)
    assert final.write is False
    for store in stores:
        record = await _cached_eventually(store, sub, 4 * per_task)
        assert record is not None and record.tenant == owner


async def test_many_changes_at_once_in_one_process_are_each_applied_once(
    stores: tuple[HealthStore, HealthStore],
) -> None:
    """Ten attempts to one webhook failing together each count, each on its first call: the
    store takes one process's changes of a record one at a time, so none loses its
    compare-and-set to a sibling and is dropped (the one that opens the circuit among them)."""
    owner, sub = tenant(), str(uuid.uuid4())
    changes = await asyncio.gather(
        *(stores[0].change(owner, sub, increment(owner, sub)) for _ in range(30))
    )
    assert all(change.write for change in changes)
    counts = sorted(c.record.health.consecutive_failures for c in changes if c.record is not None)
    assert counts == list(range(1, 31))


async def _cached_eventually(
    store: HealthStore, subscription_id: str, failures: int, within: float = 30.0
) -> messages_pb2.EndpointHealth | None:
    return await eventually(
        lambda: _cached(store, subscription_id),
        lambda record: record is not None and record.health.consecutive_failures == failures,
        what=f"{failures} failures in the cache",
        timeout=within,
    )


async def _cached(store: HealthStore, subscription_id: str) -> messages_pb2.EndpointHealth | None:
    return store.cached(subscription_id)


async def test_the_watch_cache_of_another_store_sees_puts_and_deletes(
    stores: tuple[HealthStore, HealthStore],
    two_js: tuple[JetStreamContext, JetStreamContext],
) -> None:
    writer, reader = stores
    owner, sub, other = tenant(), str(uuid.uuid4()), str(uuid.uuid4())
    assert reader.cached(sub) is None

    await writer.change(owner, sub, lambda record: Change(True, failing(owner, sub, 3), (), ()))
    seen = await eventually(
        lambda: _cached(reader, sub), lambda record: record is not None, what="the put"
    )
    assert seen is not None and seen.health.consecutive_failures == 3
    assert any(record.subscription_id == sub for record in reader.all_cached())

    # A change that deletes (a success closing the streak).
    deleted = await writer.change(owner, sub, lambda record: Change(True, None, (), ()))
    assert deleted.write
    await eventually(lambda: _cached(reader, sub), lambda record: record is None, what="delete")

    # delete() (the subscriptions service re-enabling a webhook).
    await writer.change(owner, sub, lambda record: Change(True, failing(owner, sub, 9), (), ()))
    await eventually(lambda: _cached(reader, sub), lambda r: r is not None, what="put again")
    await writer.delete(owner, sub)
    await eventually(lambda: _cached(reader, sub), lambda r: r is None, what="delete()")

    # A value that is no EndpointHealth is counted and ignored; the watch goes on.
    kv = await two_js[0].key_value(HEALTH_BUCKET)
    before = reader.undecodable
    await kv.put(health_key(owner, other), b"\xff\xff not a record")
    await writer.change(owner, sub, lambda record: Change(True, failing(owner, sub, 1), (), ()))
    await eventually(lambda: _cached(reader, sub), lambda r: r is not None, what="after junk")
    assert reader.undecodable == before + 1
    assert reader.cached(other) is None
    # And a change over the junk writes a good record.
    await writer.change(owner, other, lambda record: Change(True, failing(owner, other, 1), (), ()))
    await eventually(lambda: _cached(reader, other), lambda r: r is not None, what="repaired")


async def test_a_new_store_is_ready_with_the_records_already_there(
    stores: tuple[HealthStore, HealthStore],
    two_js: tuple[JetStreamContext, JetStreamContext],
) -> None:
    owner, sub = tenant(), str(uuid.uuid4())
    await stores[0].change(owner, sub, lambda record: Change(True, failing(owner, sub, 2), (), ()))
    late = await HealthStore.open(two_js[1], replicas=1)
    stop = asyncio.Event()
    watch = asyncio.create_task(late.run(stop))
    try:
        await asyncio.wait_for(late.ready.wait(), 30)
        record = late.cached(sub)
        assert record is not None and record.health.consecutive_failures == 2
    finally:
        stop.set()
        await asyncio.wait_for(watch, 30)


async def test_notice_once_is_true_once_across_two_stores(
    stores: tuple[HealthStore, HealthStore],
) -> None:
    key = f"{tenant()}.{uuid.uuid4()}.{uuid.uuid4()}.1767225600"
    answers = await asyncio.gather(*(stores[i % 2].notice_once(key) for i in range(10)))
    assert answers.count(True) == 1
    assert await stores[0].notice_once(key) is False
    assert await stores[1].notice_once(key + "1") is True


async def test_rate_slots_from_two_stores_are_spaced_one_over_the_rate_apart(
    stores: tuple[HealthStore, HealthStore],
) -> None:
    owner, sub = tenant(), str(uuid.uuid4())
    rate = 5
    now = time.time()
    slots = await asyncio.gather(
        *(stores[i % 2].reserve_rate_slot(owner, sub, rate, now) for i in range(50))
    )
    ordered = sorted(slots)
    assert len(set(slots)) == 50
    assert ordered[0] == pytest.approx(now, abs=1e-5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    assert gaps == pytest.approx([1 / rate] * 49, abs=1e-5)
    # The next reservation after the burst waits behind it; no limit never waits.
    after = await stores[1].reserve_rate_slot(owner, sub, rate, now)
    assert after == pytest.approx(ordered[-1] + 1 / rate, abs=1e-5)
    assert await stores[0].reserve_rate_slot(owner, sub, 0, now) == now


async def test_the_watch_survives_a_broker_restart(
    nats_server: NatsServer, stores: tuple[HealthStore, HealthStore]
) -> None:
    writer, reader = stores
    owner, sub = tenant(), str(uuid.uuid4())
    nats_server.stop()
    nats_server.start()

    async def write() -> bool:
        try:
            change = await writer.change(
                owner, sub, lambda record: Change(True, failing(owner, sub, 4), (), ())
            )
        except (TimeoutError, nats.errors.Error):
            return False  # still reconnecting
        return change.write

    await eventually(write, bool, what="a change after the restart", timeout=60)
    await _cached_eventually(reader, sub, 4, within=60)


async def test_an_operator_event_is_announced_once_on_events(
    two_js: tuple[JetStreamContext, JetStreamContext],
) -> None:
    js = two_js[0]
    try:
        await js.stream_info(EVENTS)  # declared by an earlier test: left as it is
    except nats.js.errors.NotFoundError:
        await declare_stream(js, _events_config())
    owner, sub = tenant(), str(uuid.uuid4())
    state = messages_pb2.SubscriptionState(
        id=sub,
        tenant=owner,
        name="crm",
        entity="Object",
        webhook=common_pb2.Webhook(url="https://x"),
    )
    at = datetime.now(UTC)
    event = operator_event(
        "OnFailing",
        tenant=owner,
        subscription=state,
        health=common_pb2.Health(state=HS.HEALTH_STATE_FAILING, consecutive_failures=5),
        event_id=announcement_event_id("OnFailing", sub, at=at),
        occurred_at=at,
    )
    await announce(js, event)
    await announce(two_js[1], event)  # another replica saw the same streak: dropped

    subject = events_subject(owner, "Webhook", "OnFailing")
    reader = await js.subscribe(subject, stream=EVENTS, ordered_consumer=True)
    try:
        first = await reader.next_msg(timeout=10)
        with pytest.raises(nats.errors.TimeoutError):
            await reader.next_msg(timeout=1)
    finally:
        await reader.unsubscribe()
    assert first.headers is not None and first.headers["Nats-Msg-Id"] == event.event_id
    assert messages_pb2.PlatformEvent.FromString(first.data) == event


def _events_config() -> StreamConfig:
    (config,) = (c for c in stream_configs(load_settings({})) if c.name == EVENTS)
    return config
