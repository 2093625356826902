"""webhooks_messaging.backlog.collect on a real nats-server: stream sizes, each durable's
pending and unacknowledged counts, and the stored time of its oldest unacknowledged
message, also when the message after its ack floor is on another consumer's subject.

Each test has a stream of its own (the session's server is shared)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from webhooks_messaging.backlog import BacklogWatch, ConsumerBacklog, collect


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def new_stream(js: JetStreamContext) -> tuple[str, str]:
    token = uuid.uuid4().hex[:10]
    name = f"BACKLOG_{token}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"bl{token}.>"]))
    return name, f"bl{token}"


async def durable(js: JetStreamContext, stream: str, name: str, *subjects: str) -> None:
    config = ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT)
    if len(subjects) == 1:
        config.filter_subject = subjects[0]
    else:
        config.filter_subjects = list(subjects)
    await js.add_consumer(stream, config)


def one(consumers: tuple[ConsumerBacklog, ...], name: str) -> ConsumerBacklog:
    return next(c for c in consumers if c.consumer == name)


async def test_a_filtered_durables_oldest_is_the_first_unacknowledged_of_its_subjects(
    js: JetStreamContext,
) -> None:
    stream, prefix = await new_stream(js)
    await durable(js, stream, "lane-a", f"{prefix}.a.>")
    await durable(js, stream, "lane-b", f"{prefix}.b.>")
    await durable(js, stream, "both", f"{prefix}.a.>", f"{prefix}.b.>")
    # a1, then b1 a few ms later, then a2: lane-a acknowledges a1, so the message after
    # its ack floor (a1) is b1, another lane's; its oldest is a2.
    await js.publish(f"{prefix}.a.1", b"a1")
    await asyncio.sleep(0.05)
    await js.publish(f"{prefix}.b.1", b"b1")
    await asyncio.sleep(0.05)
    a2 = await js.publish(f"{prefix}.a.2", b"a2")
    pulled = await js.pull_subscribe_bind(durable="lane-a", stream=stream)
    (first,) = await pulled.fetch(1, timeout=5)
    await first.ack_sync()
    (second,) = await pulled.fetch(1, timeout=5)  # a2 delivered, not acknowledged

    snapshot = await collect(js, [stream])

    assert snapshot.problems == ()
    (size,) = snapshot.streams
    assert (size.stream, size.messages) == (stream, 3) and size.bytes > 0
    a2_stored = (await js.get_msg(stream, a2.seq)).time
    assert a2_stored is not None
    lane_a = one(snapshot.consumers, "lane-a")
    assert (lane_a.pending, lane_a.ack_pending) == (0, 1)
    assert lane_a.oldest_at == pytest.approx(a2_stored.timestamp(), abs=1e-3)
    lane_b = one(snapshot.consumers, "lane-b")
    assert (lane_b.pending, lane_b.ack_pending) == (1, 0)
    both = one(snapshot.consumers, "both")
    assert both.pending == 3
    assert both.oldest_at is not None and both.oldest_at < lane_b.oldest_at < lane_a.oldest_at  # type: ignore[operator]
    assert 0 < lane_a.oldest_age(time.time()) < 30

    await second.ack_sync()
    after = one((await collect(js, [stream])).consumers, "lane-a")
    assert (after.pending, after.ack_pending, after.oldest_at) == (0, 0, None)
    assert after.oldest_age(time.time()) == 0.0


async def test_ephemeral_consumers_are_left_out_and_a_missing_stream_is_named(
    js: JetStreamContext,
) -> None:
    stream, prefix = await new_stream(js)
    await durable(js, stream, "kept", f"{prefix}.>")
    await js.pull_subscribe(f"{prefix}.>", stream=stream)  # ephemeral
    snapshot = await collect(js, [stream, "NO_SUCH_STREAM_" + uuid.uuid4().hex[:6]])
    assert [c.consumer for c in snapshot.consumers] == ["kept"]
    assert len(snapshot.problems) == 1 and "no such stream" in snapshot.problems[0]


async def test_the_watch_keeps_the_latest_snapshot(js: JetStreamContext) -> None:
    watch = BacklogWatch(js, interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(watch.run(stop))
    try:
        deadline = time.monotonic() + 10
        while not watch.snapshot.is_fresh(time.time()):
            assert time.monotonic() < deadline, "no snapshot in 10 s"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
