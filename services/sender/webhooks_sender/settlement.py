"""How a job ends: ``Settlement.settle(msg, verdict)`` is the one place that acknowledges,
naks, terminates or parks a job message, and counts it.

The verdicts (``Verdict``):
- ``DELIVERED`` / ``FAILED``: ack, the attempt recorded (and its retry scheduled);
- ``parked(job)``: the job put back for a few seconds as a schedule (``nats_schedules``),
  then ack; ``parked(job, at=...)``: deferred until then (endpoint health, rate limit);
- ``malformed(reason, detail)``: term, set aside on DEADLETTERS;
- ``HANDED_BACK``: nak now, at shutdown (another sender takes it);
- ``handling_failed(error, job)``: nak with a delay, or term and set aside once it keeps
  failing (``webhooks_messaging.handling``).

The verdicts of the common endings are constants: settling a job makes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2
from webhooks_messaging import is_bulk_job
from webhooks_messaging.deadletters import DeadLetters
from webhooks_messaging.handling import Retrying
from webhooks_sender.nats_schedules import park

__all__ = [
    "DELIVERED",
    "FAILED",
    "HANDED_BACK",
    "SenderStats",
    "Settlement",
    "Verdict",
    "handling_failed",
    "malformed",
    "parked",
]

ACK, PARK, TERM, NAK, RETRY = "ack", "park", "term", "nak", "retry"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one job ends (``ending``), with what that ending needs."""

    ending: str
    reason: str = ""  # term: the dead letter's reason
    detail: str = ""  # term: what is wrong with the job
    error: BaseException | None = None  # retry: what handling the job raised
    what: str = ""  # retry: the job, as the log line names it
    job: messages_pb2.DeliveryJob | None = None  # park: the job put back
    at: datetime | None = None  # park: until when (None: a few seconds)
    headers: Mapping[str, str] | None = None  # park: these instead of the message's


DELIVERED = Verdict(ACK)
FAILED = Verdict(ACK)  # the attempt failed; recorded, and its retry if any scheduled
HANDED_BACK = Verdict(NAK)


def parked(
    job: messages_pb2.DeliveryJob,
    *,
    at: datetime | None = None,
    headers: Mapping[str, str] | None = None,
) -> Verdict:
    """Its endpoint has every slot busy and a full queue, or it waited too long; or
    (``at``) it is deferred: the circuit is open, the endpoint throttled or disabled, its
    rate limit's slot is later. ``headers``: what it comes back with, when not the
    message's own."""
    return Verdict(PARK, job=job, at=at, headers=headers)


def malformed(reason: str, detail: str) -> Verdict:
    """The job cannot be trusted: never delivered."""
    return Verdict(TERM, reason=reason, detail=detail)


def handling_failed(error: BaseException, job: messages_pb2.DeliveryJob) -> Verdict:
    return Verdict(RETRY, error=error, what=f"job {job.job_id}")


@dataclass
class SenderStats:
    delivered: int = 0
    failed: int = 0
    parked: int = 0


class Settlement:
    def __init__(self, js: JetStreamContext, dead: DeadLetters, retrying: Retrying) -> None:
        self._js = js
        self._dead = dead
        self._retrying = retrying
        self.stats = SenderStats()

    async def settle(self, msg: Msg, verdict: Verdict) -> None:
        ending = verdict.ending
        if ending is ACK:
            await msg.ack()
            if verdict is DELIVERED:
                self.stats.delivered += 1
            else:
                self.stats.failed += 1
        elif ending is PARK:
            assert verdict.job is not None
            bulk = is_bulk_job(msg.subject)  # it comes back on its own lane
            headers = dict(msg.headers or {}) if verdict.headers is None else dict(verdict.headers)
            await park(self._js, verdict.job, headers, bulk=bulk, at=verdict.at)
            await msg.ack()
            self.stats.parked += 1
        elif ending is TERM:
            await self._dead.terminate(msg, verdict.reason, verdict.detail)
        elif ending is NAK:
            with contextlib.suppress(Exception):  # already settled, or the broker is away
                await msg.nak()
        else:
            assert verdict.error is not None
            await self._retrying.failed_with(msg, verdict.error, what=verdict.what)
