"""The failed-event state machine: which attempt records make or change a failed event, and
how. Pure (no SQL, no I/O): ``view_fold`` reads what the view already holds, asks ``fold``
what a batch changes, and writes that.

A failed event is a delivery with at least one failed attempt; its state follows the
attempts of its newest series, in stream order:

- a FAILED attempt with ``will_retry`` → RETRYING; without → FAILED;
- a SUCCEEDED attempt of a delivery in the view → RECOVERED (a success of a delivery not
  in the view adds nothing: it never failed);
- a REDELIVERY_REQUESTED record (attempt 0 of a new series) → REDELIVERED, until an
  attempt of that series arrives and the state follows it again.

A record of a series older than one already seen (a late attempt of a series a manual
redelivery replaced) is history and counts, but the state, the error and the head attempt
follow the newest series. A record counts once: its history key (tenant, delivery,
series, attempt) is either new or the record is skipped.

The per-subscription counts (the ⚠ of the Webhooks list) are of the unresolved failed
events (every state but RECOVERED) and their failed attempts: a batch adds what its events
bring while open, and takes back an event's whole count when it recovers (and gives it
back if a later series fails again).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhooks.v1 import messages_pb2
from webhooks_failures.model import FAILED, RECOVERED, REDELIVERED, RETRYING

ATTEMPT_FAILED = messages_pb2.ATTEMPT_OUTCOME_FAILED
REDELIVERY_REQUESTED = messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED
OUTCOMES = frozenset({messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED, ATTEMPT_FAILED, REDELIVERY_REQUESTED})

EventKey = tuple[str, str]  # (tenant, delivery id)
Before = tuple[int, int]  # a failed event in the view: (state, failed attempts)
HistoryKey = tuple[str, str, int, int]  # (tenant, delivery id, series, attempt)


def micros(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000 + int(stamp.nanos) // 1000


class Change:
    """What one batch does to one failed event (a new one, or one already in the view)."""

    __slots__ = (
        "d_attempts", "d_failed", "delivery_id", "failure", "last_us", "latest",
        "max_series", "new", "old_failed", "old_state", "state", "subscription_id", "tenant",
    )  # fmt: skip

    def __init__(
        self,
        record: messages_pb2.AttemptRecord,
        max_series: int,
        new: bool,
        before: Before = (FAILED, 0),
    ) -> None:
        self.tenant = record.tenant
        self.delivery_id = record.delivery_id
        self.subscription_id = record.subscription_id
        self.max_series = max_series
        self.new = new
        self.old_state, self.old_failed = before  # what the view holds (unused when new)
        self.d_attempts = 0
        self.d_failed = 0
        self.last_us = 0
        self.state: int | None = None  # None: unchanged
        self.latest: messages_pb2.AttemptRecord | None = None  # newest attempt: the head
        self.failure: messages_pb2.AttemptRecord | None = None  # newest failed attempt

    def fold(self, record: messages_pb2.AttemptRecord) -> None:
        """Apply one record not applied before."""
        current = record.series >= self.max_series
        self.max_series = max(self.max_series, record.series)
        if record.outcome == REDELIVERY_REQUESTED:
            if current:
                self.state = REDELIVERED
            return
        self.d_attempts += 1
        failed = record.outcome == ATTEMPT_FAILED
        self.d_failed += failed
        # The newest attempt time, whatever order different senders' records arrive in.
        self.last_us = max(self.last_us, micros(record.started_at))
        if not current:
            return
        self.latest = record
        if failed:
            self.failure = record
            self.state = RETRYING if record.will_retry else FAILED
        else:
            self.state = RECOVERED

    def open_delta(self) -> tuple[int, int]:
        """What the batch adds to the subscription's unresolved counts: (failed attempts,
        failed events); negative when the event recovers."""
        was_open = not self.new and self.old_state != RECOVERED
        state = self.state if self.state is not None else self.old_state
        is_open = state != RECOVERED
        old_failed = 0 if self.new else self.old_failed
        was = old_failed if was_open else 0
        now = old_failed + self.d_failed if is_open else 0
        return now - was, int(is_open) - int(was_open)


@dataclass
class Fold:
    """What a batch changes: per failed event, the history to add, the counts to add."""

    changes: dict[EventKey, Change] = field(default_factory=dict)
    history: list[tuple[HistoryKey, messages_pb2.AttemptRecord]] = field(default_factory=list)
    # (tenant, subscription id) -> [failed attempts, failed events] of the unresolved to
    # add (negative: taken back); a new failed event's subscription always has an entry
    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def fold(
    records: Sequence[messages_pb2.AttemptRecord],
    known: Mapping[EventKey, int],
    seen: Collection[HistoryKey],
    before: Mapping[EventKey, Before] | None = None,
) -> Fold:
    """The batch ``records`` folded onto the view's failed events ``known`` (key -> highest
    series; ``before``: key -> their state and failed attempts) whose history already
    holds ``seen``."""
    before = before or {}
    result = Fold()
    applied = set(seen)
    for record in records:
        if record.outcome not in OUTCOMES or not record.delivery_id:
            continue
        key = (record.tenant, record.delivery_id)
        history_key = (record.tenant, record.delivery_id, record.series, record.attempt)
        if history_key in applied:
            continue  # applied before: in this batch or an earlier one
        change = result.changes.get(key)
        if change is None:
            if key in known:
                change = Change(record, known[key], new=False, before=before.get(key, (FAILED, 0)))
            elif record.outcome == ATTEMPT_FAILED:
                change = Change(record, record.series, new=True)
            else:
                continue  # a delivery that never failed is not a failed event
            result.changes[key] = change
        applied.add(history_key)
        change.fold(record)
        result.history.append((history_key, record))
    for change in result.changes.values():
        d_failed, d_events = change.open_delta()
        # A new event's subscription gets its row even at zero: retention reads the tenants
        # of the view from the counts, and the row goes when its events do.
        if d_failed or d_events or change.new:
            count = result.counts.setdefault((change.tenant, change.subscription_id), [0, 0])
            count[0] += d_failed
            count[1] += d_events
    return result
