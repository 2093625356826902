"""Durable pull consumers whose configuration follows the code.

nats-py's ``pull_subscribe(durable=...)`` creates a missing durable consumer but binds to an
existing one as it is: a changed ``ack_wait`` (or any other setting) would never reach a
consumer made by an older release. ``durable_pull`` creates the consumer or updates it to
``config`` (the server updates the settings that may change, such as ack_wait and
max_ack_pending, and refuses the others), then binds to it.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig


async def durable_pull(
    js: JetStreamContext, stream: str, durable: str, config: ConsumerConfig
) -> JetStreamContext.PullSubscription:
    """Creates or updates the durable pull consumer ``durable`` of ``stream`` to ``config``
    (its durable name is set here) and returns a subscription bound to it."""
    await js.add_consumer(stream, config.evolve(durable_name=durable))
    return await js.pull_subscribe_bind(durable=durable, stream=stream)
