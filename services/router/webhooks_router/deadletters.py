"""The router's setting aside (see webhooks_messaging.deadletters): malformed platform
events are terminated and kept on DEADLETTERS as ``deadletters.router.<reason>.…``; what
the routing-table feed cannot use as ``deadletters.router-table.<reason>.…``.

Skipping is safe for both. An event that does not decode or validate can never be routed
(retrying it changes nothing) and concerns one event of one tenant only. A subscription
message skipped by the routing table is superseded by the next change of that
subscription, which carries its whole state; until then the table keeps the state it had.
"""

from __future__ import annotations

from nats.aio.client import Client as NATS

from webhooks_messaging.deadletters import ROUTER, ROUTER_TABLE
from webhooks_messaging.deadletters import DeadLetters as _DeadLetters


class DeadLetters(_DeadLetters):
    """Malformed events (the routing consumer)."""

    def __init__(self, nc: NATS | None) -> None:
        super().__init__(ROUTER, nc)


def table_dead_letters(nc: NATS | None) -> _DeadLetters:
    """What the routing table's feed of SUBSCRIPTIONS sets aside."""
    return _DeadLetters(ROUTER_TABLE, nc)
