"""A webhook's rate limit (``Webhook.rate_limit_per_second``): its deliveries spaced
1/N s apart across every sender replica, held back rather than failed.

Each job reserves a slot (``HealthStore.reserve_rate_slot``: a compare-and-set on the
webhook's counter in WEBHOOK_RATE_SLOTS), then:
- due within ``SEND_NOW_SECONDS``: sent at once;
- due within ``WAIT_IN_PLACE_SECONDS``: the job waits for it in place (it holds its
  consumer slot that long at most);
- later: the job is parked until then, carrying its slot (``RATE_SLOT_HEADER``, epoch ms),
  so when it comes back it is sent at that slot without reserving another. Schedules fire
  in whole seconds, rounded up (never early): it is parked until ``SCHEDULE_LEAD_SECONDS``
  before its slot and waits the rest in place.

A job that cannot have a slot (other replicas kept taking it first) is parked for a few
seconds and reserves again. A job parked for another reason (slots busy, the circuit open)
leaves its slot behind (``without_slot``) and reserves a new one when it comes back: a slot
is a moment, and an old one would let it jump the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from webhooks.v1 import messages_pb2
from webhooks_health import HealthStore, RateSlotContention
from webhooks_sender.retries import parked_until

RATE_SLOT_HEADER = "Webhooks-Rate-Slot"
SEND_NOW_SECONDS = 0.05
WAIT_IN_PLACE_SECONDS = 1.0
SCHEDULE_LEAD_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Pace:
    """What a job does about its slot: wait ``wait`` seconds in place (0: none), or, when
    ``park_until`` is set, be parked until then (epoch seconds)."""

    wait: float = 0.0
    park_until: float | None = None


def pace(slot: float, now: float) -> Pace:
    """How a job whose slot is at ``slot`` goes at ``now`` (epoch seconds). Pure."""
    ahead = slot - now
    if ahead <= SEND_NOW_SECONDS:
        return Pace()
    if ahead <= WAIT_IN_PLACE_SECONDS:
        return Pace(wait=ahead)
    return Pace(park_until=slot - SCHEDULE_LEAD_SECONDS)


def carried_slot(headers: Mapping[str, str] | None) -> float | None:
    """The slot a parked job came back with (epoch seconds), or None (none, or unreadable:
    then it reserves another)."""
    if not headers:
        return None
    value = headers.get(RATE_SLOT_HEADER)
    if value is None:
        return None
    try:
        return int(value) / 1000
    except ValueError:
        return None


def with_slot(headers: Mapping[str, str] | None, slot: float) -> dict[str, str]:
    """The job message's headers, carrying ``slot``."""
    return {**(headers or {}), RATE_SLOT_HEADER: str(round(slot * 1000))}


def without_slot(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The job message's headers without a slot: None when it carried none (the message's
    own are used as they are)."""
    if not headers or RATE_SLOT_HEADER not in headers:
        return None
    return {k: v for k, v in headers.items() if k != RATE_SLOT_HEADER}


class RateLimiter:
    def __init__(self, store: HealthStore) -> None:
        self._store = store

    async def hold(
        self,
        job: messages_pb2.DeliveryJob,
        headers: Mapping[str, str] | None,
        per_second: int,
    ) -> tuple[datetime, dict[str, str]] | None:
        """Waits for the job's slot when it is near and returns None (send now); or returns
        when to park the job until and the headers it goes back with."""
        slot = carried_slot(headers)
        if slot is None:
            try:
                slot = await self._store.reserve_rate_slot(
                    job.tenant, job.subscription_id, per_second, time.time()
                )
            except RateSlotContention:
                # Other replicas kept taking the slot: the job tries again in a moment.
                kept = without_slot(headers) or dict(headers or {})
                return parked_until(datetime.now(UTC)), kept
        step = pace(slot, time.time())
        if step.park_until is not None:
            return datetime.fromtimestamp(step.park_until, UTC), with_slot(headers, slot)
        if step.wait > 0:
            await asyncio.sleep(step.wait)
        return None
