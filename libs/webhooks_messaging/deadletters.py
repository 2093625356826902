"""Malformed messages: terminated, counted, and a sample kept for operators.

A message that cannot be processed will never become processable by retrying, so it is
terminated (never redelivered) and its payload published on ``<prefix>.<reason>`` (core
NATS: whoever investigates subscribes; nothing piles up when nobody does), e.g.
``router.deadletter.undecodable`` or ``sender.deadletter.undecodable``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from webhooks.v1 import messages_pb2

log = logging.getLogger(__name__)
SAMPLE_BYTES = 64 * 1024


class DeadLetters:
    def __init__(self, nc: NATS, prefix: str, what: str = "message") -> None:
        self._nc = nc
        self.prefix = prefix
        self._what = what
        self.counts: Counter[str] = Counter()

    async def terminate(self, msg: Msg, reason: str, detail: str) -> None:
        await msg.term()
        self.counts[reason] += 1
        log.warning(
            "terminated a malformed %s on %s: %s: %s (%d so far)",
            self._what,
            msg.subject,
            reason,
            detail,
            self.counts[reason],
        )
        letter = messages_pb2.DeadLetter(
            subject=msg.subject,
            data=(msg.data or b"")[:SAMPLE_BYTES],
            headers={k: v for k, v in (msg.headers or {}).items() if isinstance(v, str)},
            reason=f"{reason}: {detail}",
        )
        letter.terminated_at.FromDatetime(datetime.now(UTC))
        try:
            await self._nc.publish(f"{self.prefix}.{reason}", letter.SerializeToString())
        except Exception as error:  # the sample is best effort; the term is what matters
            log.warning("could not publish a dead-letter sample: %s", error)
