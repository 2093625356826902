"""The router's publishers on a real nats-server: jobs confirmed per event, events stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats.js.errors
import pytest
from nats.aio.client import Client

from tests.support import NatsServer
from webhooks.v1 import messages_pb2
from webhooks_config import load_settings
from webhooks_messaging import DELIVERIES, EVENTS, connect, declare_streams
from webhooks_router.jobs import RoutedJob
from webhooks_router.publishing import JobPublisher, StreamStore


@pytest.fixture
async def nc(tmp_path: Path) -> AsyncIterator[Client]:
    server = NatsServer(tmp_path / "store")
    await asyncio.to_thread(server.start)
    settings = load_settings({"WEBHOOKS_NATS_URL": server.url})
    client = await connect(settings, "test-router-publishing")
    try:
        await declare_streams(client.jetstream(), settings)
        yield client
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)


def job(number: int, subject: str = "") -> RoutedJob:
    return RoutedJob(
        subject=subject or f"deliveries.jobs.acme.sub-{number % 3}",
        job_id=f"evt-{number}:sub-{number % 3}",
        delivery_id=f"d-{number}",
        subscription_id=f"sub-{number % 3}",
        head=messages_pb2.DeliveryJob(tenant="acme", attempt=1).SerializeToString(),
        payload=b"{}",
    )


async def test_every_event_is_confirmed_once_all_its_jobs_are_stored(nc: Client) -> None:
    publisher = JobPublisher(nc, max_in_flight=7)  # small: sending waits for room
    await publisher.start()
    batch = publisher.batch()
    confirmations = []
    for event in range(10):
        confirmation = batch.event()
        for number in range(event * 5, event * 5 + 5):
            await publisher.send(
                confirmation,
                job(number),
                {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
            )
        batch.seal(confirmation)
        confirmations.append(confirmation)
    empty = batch.event()  # an event without jobs
    batch.seal(empty)
    batch.seal()
    await batch.wait(10)
    assert [(c.error, c.jobs) for c in confirmations] == [(None, 5)] * 10
    assert (empty.error, empty.jobs) == (None, 0)
    info = await nc.jetstream().stream_info(DELIVERIES)
    assert info.state.messages == 50
    stored = await nc.jetstream().get_msg(DELIVERIES, seq=1)
    assert stored.headers is not None and stored.headers["Nats-Msg-Id"] == "evt-0:sub-0"
    parsed = messages_pb2.DeliveryJob.FromString(stored.data or b"")
    assert (parsed.job_id, parsed.tenant, parsed.trace_context["traceparent"][:5]) == (
        "evt-0:sub-0",
        "acme",
        "00-11",
    )
    await publisher.close()


async def test_a_job_no_stream_stores_fails_its_event_only(nc: Client) -> None:
    publisher = JobPublisher(nc)
    await publisher.start()
    batch = publisher.batch()
    good, bad = batch.event(), batch.event()
    await publisher.send(good, job(1), {})
    batch.seal(good)
    await publisher.send(bad, job(2), {})
    await publisher.send(bad, job(3, subject="nowhere.at.all"), {})
    batch.seal(bad)
    batch.seal()
    await batch.wait(10)
    assert good.error is None
    assert bad.error is not None and "no stream" in bad.error
    await publisher.close()


async def test_unanswered_jobs_fail_when_the_wait_times_out(nc: Client) -> None:
    publisher = JobPublisher(nc)
    await publisher.start()
    await nc.jetstream().delete_stream(DELIVERIES)
    # Captured by a plain subscription: published, never acknowledged.
    silent = await nc.subscribe("deliveries.jobs.>")
    batch = publisher.batch()
    confirmation = batch.event()
    await publisher.send(confirmation, job(1), {})
    batch.seal(confirmation)
    batch.seal()
    await batch.wait(0.3)
    assert confirmation.error is not None and "not confirmed" in confirmation.error
    await silent.unsubscribe()
    await publisher.close()


async def test_the_store_tells_new_events_from_duplicates_and_raises_like_js_publish(
    nc: Client,
) -> None:
    store = StreamStore(nc, EVENTS)
    await store.start()
    subject = "events.acme.Object.OnNew"
    first = await store.store(
        [(subject, b"a", {"Nats-Msg-Id": "e1"}), (subject, b"b", {"Nats-Msg-Id": "e2"})]
    )
    again = await store.store(
        [(subject, b"a", {"Nats-Msg-Id": "e1"}), (subject, b"c", {"Nats-Msg-Id": "e3"})]
    )
    assert (first, again) == ([False, False], [True, False])
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await store.store([("nowhere.at.all", b"x", {"Nats-Msg-Id": "e4"})])
    with pytest.raises(nats.js.errors.APIError):  # stored by DELIVERIES, not EVENTS
        await store.store([("deliveries.jobs.acme.s", b"x", {"Nats-Msg-Id": "e5"})])
    info = await nc.jetstream().stream_info(EVENTS)
    assert info.state.messages == 3
