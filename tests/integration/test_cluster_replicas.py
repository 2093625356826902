"""The streams on a 3-node NATS cluster (``tests.support.nats_cluster``) with
WEBHOOKS_STREAM_REPLICAS: declared with 3 replicas, or scaled up from 1 by the next
``declare_streams`` (a service start with the new setting), and still written and read
with one node killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from tests.support.nats_cluster import NatsCluster
from webhooks_config import load_settings
from webhooks_messaging import EVENTS, STREAMS, declare_streams, events_subject


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "cluster")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def replicated(js: JetStreamContext, stream: str, timeout: float = 20) -> StreamInfo:  # noqa: ASYNC109
    """The stream's info once it has a leader and two current followers."""
    deadline = time.monotonic() + timeout
    while True:
        info = await js.stream_info(stream)
        peers = (info.cluster.replicas or []) if info.cluster else []
        leader = info.cluster.leader if info.cluster else None
        if leader and len(peers) == 2 and all(peer.current for peer in peers):
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"{stream} not on 3 current nodes: {info.cluster}")
        await asyncio.sleep(0.1)


async def publish_retrying(js: JetStreamContext, subject: str, data: bytes, within: float) -> None:
    """Publish, retrying while the stream elects a new leader (no responders meanwhile)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await js.publish(subject, data, timeout=2, headers={"Nats-Msg-Id": data.decode()})
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, nats.js.errors.Error):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_streams_scale_from_one_to_three_replicas_and_survive_a_killed_node(
    cluster: NatsCluster,
) -> None:
    nc = await nats.connect(cluster.urls)
    try:
        js = nc.jetstream()
        one = load_settings({"WEBHOOKS_NATS_URL": cluster.url})
        three = load_settings({"WEBHOOKS_NATS_URL": cluster.url, "WEBHOOKS_STREAM_REPLICAS": "3"})
        await declare_streams(js, one)
        for stream in STREAMS:
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 1
            assert info.cluster is not None and not info.cluster.replicas
        subject = events_subject("replicas", "Object", "OnNew")
        await js.publish(subject, b"before", headers={"Nats-Msg-Id": "before"})

        # The next start with 3 replicas updates every stream in place, data kept.
        await declare_streams(js, three)
        await declare_streams(js, three)  # and again: idempotent
        for stream in STREAMS:
            info = await replicated(js, stream)
            assert info.config.num_replicas == 3
        assert (await js.stream_info(EVENTS)).state.messages == 1

        # The leader of EVENTS dies: another takes over, nothing written is lost.
        leader = (await js.stream_info(EVENTS)).cluster
        assert leader is not None and leader.leader is not None
        cluster.kill(leader.leader)
        await publish_retrying(js, subject, b"after", within=30)
        info = await js.stream_info(EVENTS)
        assert info.state.messages == 2
        assert info.cluster is not None and info.cluster.leader != leader.leader
        cluster.restart(leader.leader)
        await replicated(js, EVENTS, timeout=30)
    finally:
        await nc.close()
