"""Malformed platform events: terminated, counted, and a sample published on
``router.deadletter.<reason>`` (see webhooks_messaging.deadletters)."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from webhooks_messaging.deadletters import DeadLetters as _DeadLetters

SUBJECT_PREFIX = "router.deadletter"


class DeadLetters(_DeadLetters):
    def __init__(self, nc: NATS) -> None:
        super().__init__(nc, SUBJECT_PREFIX, "event")
