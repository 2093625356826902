"""webhooks_messaging.heartbeats in memory: only the messages held for a while are kept
alive, each sweep, until settled."""

from __future__ import annotations

import asyncio
from typing import cast

from nats.aio.msg import Msg

from webhooks_messaging.heartbeats import ACK_WAIT_SECONDS, SWEEP_SECONDS, Heartbeats


class FakeMsg:
    def __init__(self) -> None:
        self.beats = 0

    async def in_progress(self) -> None:
        self.beats += 1


class GoneMsg:
    async def in_progress(self) -> None:
        raise ConnectionError("disconnected")


async def test_only_messages_held_half_a_sweep_get_a_heartbeat_until_settled() -> None:
    beats = Heartbeats(sweep_seconds=2.0)
    old, new = FakeMsg(), FakeMsg()
    beats.hold(cast(Msg, old))
    beats.hold(cast(Msg, new))
    now = asyncio.get_running_loop().time()
    assert await beats.beat(now + 0.5) == 0  # not yet (fast jobs never)
    assert await beats.beat(now + 1.0) == 2  # held half a sweep
    beats.settled(cast(Msg, old))
    assert await beats.beat(now + 3.0) == 1
    assert (old.beats, new.beats) == (1, 2)
    assert len(beats) == 1


async def test_a_failed_heartbeat_is_not_an_error() -> None:
    beats = Heartbeats(sweep_seconds=2.0)
    beats.hold(cast(Msg, GoneMsg()))
    assert await beats.beat(asyncio.get_running_loop().time() + 5) == 1


def test_a_message_is_kept_alive_well_within_ack_wait() -> None:
    # First heartbeat at most 1.5 sweeps after the message was taken, then one a sweep.
    assert 1.5 * SWEEP_SECONDS <= ACK_WAIT_SECONDS / 2
