"""Keeping the messages a consumer genuinely holds from being redelivered, cheaply.

A durable consumer's ``ack_wait`` is how long a message taken by a process that died stays
unavailable: the shorter, the sooner a crash heals. But a message redelivered while its
first taker is still working on it is handled twice (for the sender, a webhook sent twice),
so ``ack_wait`` must never be shorter than the time a message may genuinely be held:
waiting for an endpoint slot, a request up to the sender timeout, the broker's confirmation
of what handling it published. Both hold at once here: the consumers' ``ack_wait`` is short
(``ACK_WAIT_SECONDS``) and every message held longer than a moment is kept alive with an
in-progress acknowledgement (``Msg.in_progress``: the broker restarts its ack_wait timer)
until it is settled. A process that dies stops sending them, and its messages come back
within ``ACK_WAIT_SECONDS``.

Cheap: one sweeper task, not a timer per message. Every ``ACK_WAIT_SECONDS / 3`` it sends an
in-progress acknowledgement for each message held for at least half of that; a message
settled within a second or so (nearly all of them) costs a dict entry and no heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg

log = logging.getLogger(__name__)

# The consumers' (router's, sender's) ack_wait: how long the work of a process that died
# waits before another takes it. Heartbeats, not this, cover a long request; it must only
# outlast a heartbeat that is late (a sweep, an event loop busy for a few seconds).
ACK_WAIT_SECONDS = 10.0
# Three sweeps per ack_wait: the first heartbeat of a message reaches the broker at most
# 1.5 sweeps after it was taken, each next one a sweep after the last.
SWEEP_SECONDS = ACK_WAIT_SECONDS / 3


class Heartbeats:
    """The messages one consumer holds, and the task that keeps them alive (``run``)."""

    def __init__(self, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._sweep = sweep_seconds
        # By id: a Msg is not hashable. The time each was taken (the loop's clock).
        self._held: dict[int, tuple[Msg, float]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, msg: Msg) -> None:
        """``msg`` is taken: kept alive from the next sweep that finds it held long enough."""
        self._held[id(msg)] = (msg, asyncio.get_running_loop().time())

    def settled(self, msg: Msg) -> None:
        """``msg`` is acknowledged, nakked, terminated (or given up): no more heartbeats."""
        self._held.pop(id(msg), None)

    async def run(self) -> None:
        """Sweeps until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._sweep)
            await self.beat(loop.time())

    async def beat(self, now: float) -> int:
        """Sends an in-progress acknowledgement for each message held since at least half
        a sweep before ``now``; returns how many."""
        since = now - self._sweep / 2
        due = [msg for msg, taken in list(self._held.values()) if taken <= since]
        for msg in due:
            # Settled meanwhile, or the connection is down: then the broker redelivers it
            # after ack_wait, as it would anyway, and its settlement fails the same way.
            with contextlib.suppress(Exception):
                await msg.in_progress()
        return len(due)
