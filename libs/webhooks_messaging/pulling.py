"""Pulling a batch from a durable pull consumer: the next message as soon as there is one,
then whatever the server already holds.

A single ``fetch(n)`` lingers until n messages have arrived or its timeout passes, so at
low rates every message would wait out the timeout. Waiting for one, then asking for what
is already waiting (the server's no-wait probe answers at once), batches under load
without that delay. The router and the sender pull this way.
"""

from __future__ import annotations

import contextlib

from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

FIRST_WAIT_SECONDS = 1.0  # how long one pull waits for a first message before looping
BACKLOG_WAIT_SECONDS = 0.001  # how long the second fetch of a batch may wait


async def first(subscription: JetStreamContext.PullSubscription) -> list[Msg]:
    """The next message, waiting up to FIRST_WAIT_SECONDS (then nats' TimeoutError)."""
    messages: list[Msg] = await subscription.fetch(1, timeout=FIRST_WAIT_SECONDS)
    return messages


async def waiting(subscription: JetStreamContext.PullSubscription, up_to: int) -> list[Msg]:
    """Up to ``up_to`` messages the server already holds; none when nothing is waiting."""
    if up_to < 1:
        return []
    with contextlib.suppress(TimeoutError):
        messages: list[Msg] = await subscription.fetch(up_to, timeout=BACKLOG_WAIT_SECONDS)
        return messages
    return []


async def next_batch(subscription: JetStreamContext.PullSubscription, size: int) -> list[Msg]:
    """The next message as soon as there is one, with up to ``size - 1`` already waiting."""
    messages = await first(subscription)
    return messages + await waiting(subscription, size - 1)
