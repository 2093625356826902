"""webhooks_messaging.following: the stream-follower base on a real nats-server.

A toy projection (the subscription ids of SUBSCRIPTIONS, in stream order) implements only
what a projection must: its position, check, apply and advance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from tests.support import NatsServer
from webhooks.v1 import messages_pb2
from webhooks_config import load_settings
from webhooks_messaging import SUBSCRIPTIONS, connect, declare_streams, subscription_subject
from webhooks_messaging.deadletters import DeadLetters, Original
from webhooks_messaging.following import StreamFollower, stream_end, stream_sequence

WAIT_SECONDS = 10.0


class Letters(DeadLetters):
    """Counted as usual, and kept here to look at."""

    def __init__(self) -> None:
        super().__init__("test-follower")
        self.kept: list[tuple[str, str, Original]] = []

    def set_aside(self, reason: str, detail: str, original: Original) -> None:
        self.kept.append((reason, detail, original))
        super().set_aside(reason, detail, original)


class Ids(StreamFollower[messages_pb2.SubscriptionDomainEvent]):
    def __init__(self, start_after: int = 0) -> None:
        super().__init__(
            SUBSCRIPTIONS, "subscriptions.>", messages_pb2.SubscriptionDomainEvent, Letters()
        )
        self.applied_seq = start_after
        self.ids: list[str] = []

    @property
    def position(self) -> int:
        return self.applied_seq

    def check(self, subject: str, message: messages_pb2.SubscriptionDomainEvent) -> str | None:
        return None if message.HasField("subscription") else "no subscription"

    def apply(self, message: messages_pb2.SubscriptionDomainEvent, seq: int) -> None:
        if message.subscription.id == "refused":
            raise ValueError("refused by the projection")
        self.ids.append(message.subscription.id)
        self.applied_seq = seq

    def advance(self, seq: int) -> None:
        self.applied_seq = max(self.applied_seq, seq)


@pytest.fixture
async def js(tmp_path: Path) -> AsyncIterator[JetStreamContext]:
    server = NatsServer(tmp_path / "store")
    await asyncio.to_thread(server.start)
    settings = load_settings({"WEBHOOKS_NATS_URL": server.url})
    nc = await connect(settings, "test-following")
    try:
        await declare_streams(nc.jetstream(), settings)
        yield nc.jetstream()
    finally:
        await nc.close()
        await asyncio.to_thread(server.stop)


async def publish(js: JetStreamContext, subscription_id: str) -> int:
    message = messages_pb2.SubscriptionDomainEvent(
        subscription=messages_pb2.SubscriptionState(id=subscription_id, tenant="acme")
    )
    ack = await js.publish(
        subscription_subject("acme", subscription_id), message.SerializeToString()
    )
    seq: int = ack.seq
    return seq


@contextlib.asynccontextmanager
async def following(js: JetStreamContext, follower: Ids) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(js, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_SECONDS)


def test_the_stream_sequence_is_read_from_v1_and_v2_reply_subjects() -> None:
    assert stream_sequence("$JS.ACK.SUBSCRIPTIONS.c.1.42.7.1700000000.0") == 42
    assert stream_sequence("$JS.ACK.hub.acc.SUBSCRIPTIONS.c.1.43.7.1700000000.0.tok") == 43
    with pytest.raises((ValueError, IndexError)):
        stream_sequence("_INBOX.not-jetstream")


async def test_the_stream_end_is_the_last_sequence(js: JetStreamContext) -> None:
    assert await stream_end(js, SUBSCRIPTIONS) == 0
    await publish(js, "a")
    seq = await publish(js, "b")
    assert await stream_end(js, SUBSCRIPTIONS) == seq
    assert (await js.stream_info(SUBSCRIPTIONS)).state.last_seq == seq


async def test_following_starts_after_the_projection_s_position(js: JetStreamContext) -> None:
    for name in ("a", "b", "c"):
        await publish(js, name)
    follower = Ids(start_after=2)
    async with following(js, follower):
        assert await follower.caught_up(js, WAIT_SECONDS)
        assert follower.ids == ["c"]
        seq = await publish(js, "d")
        await asyncio.wait_for(follower.reached(seq), WAIT_SECONDS)
        assert follower.ids == ["c", "d"]
        assert follower.position == seq


async def test_what_fails_is_set_aside_and_the_follower_moves_on(js: JetStreamContext) -> None:
    undecodable = (await js.publish("subscriptions.acme.subscription.x", b"\xff\xfe")).seq
    invalid = (await js.publish("subscriptions.acme.subscription.y", b"")).seq
    refused = await publish(js, "refused")
    last = await publish(js, "after")
    follower = Ids()
    async with following(js, follower):
        assert await follower.caught_up(js, WAIT_SECONDS)
    assert follower.ids == ["after"]
    assert follower.position == last
    assert follower.skipped == {"undecodable": 1, "invalid": 1, "not-applied": 1}
    letters = follower.dead
    assert isinstance(letters, Letters)
    found = [(reason, original.stream, original.sequence) for reason, _, original in letters.kept]
    assert found == [
        ("undecodable", SUBSCRIPTIONS, undecodable),
        ("invalid", SUBSCRIPTIONS, invalid),
        ("not-applied", SUBSCRIPTIONS, refused),
    ]
    details = [detail for _, detail, _ in letters.kept]
    assert details[0].startswith("not a SubscriptionDomainEvent: ")
    assert details[1:] == ["no subscription", "ValueError: refused by the projection"]
    assert letters.kept[0][2].data == b"\xff\xfe"


async def test_caught_up_times_out_and_takes_a_target(js: JetStreamContext) -> None:
    seq = await publish(js, "a")
    follower = Ids()  # never run
    assert not await follower.caught_up(js, 0.2)
    assert not await follower.caught_up(js, 0.1, target=seq)
    assert await follower.caught_up(js, 0.1, target=0)  # nothing to wait for
    async with following(js, follower):
        assert await follower.caught_up(js, WAIT_SECONDS, target=seq)
        assert follower.ids == ["a"]
