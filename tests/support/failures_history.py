"""Generated ATTEMPTS histories for the failures view's tests and benchmark.

Each delivery follows a plan (first attempt succeeds; fails then recovers; retries
exhausted; 410 Gone; still retrying; manually redelivered, then nothing yet, a success or
failures again) and its records are interleaved with other deliveries' as a sender fleet
would publish them, time moving forward by a millisecond or so per record. What each
failed event must look like in the view is written down while generating, from the plan
(not by folding records), so the tests check the view against an independent answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_catalogue.failure_classes import failure_name

RETRYING = failures_pb2.FAILED_EVENT_STATE_RETRYING
FAILED = failures_pb2.FAILED_EVENT_STATE_FAILED
RECOVERED = failures_pb2.FAILED_EVENT_STATE_RECOVERED
REDELIVERED = failures_pb2.FAILED_EVENT_STATE_REDELIVERED

ENTITIES = ("Object", "Contact", "Invoice")
TRIGGERS = ("OnNew", "OnUpdate", "OnDelete")
SUBCHANNELS = ("", "web", "mobile")
# (status code, failure class, message): error_code is the status, or the class's name.
ERRORS = (
    (500, messages_pb2.FAILURE_CLASS_HTTP_STATUS, "HTTP 500 Internal Server Error"),
    (502, messages_pb2.FAILURE_CLASS_HTTP_STATUS, "HTTP 502 Bad Gateway from proxy_1"),
    (503, messages_pb2.FAILURE_CLASS_HTTP_STATUS, "HTTP 503: Service Unavailable"),
    (429, messages_pb2.FAILURE_CLASS_HTTP_STATUS, "HTTP 429 Too Many Requests (100% quota)"),
    (0, messages_pb2.FAILURE_CLASS_TIMEOUT, "no response within 10 s (Read Timeout)"),
    (0, messages_pb2.FAILURE_CLASS_CONNECT, "connection refused by 203.0.113.7:443"),
    (0, messages_pb2.FAILURE_CLASS_TLS, "TLS: certificate has expired"),
    (0, messages_pb2.FAILURE_CLASS_DNS, "DNS: hooks.example.invalid does not resolve"),
)
GONE = (410, messages_pb2.FAILURE_CLASS_HTTP_STATUS, "HTTP 410 Gone: endpoint removed")
PLANS = (
    ("ok", 40),
    ("recovered", 15),
    ("exhausted", 12),
    ("gone", 6),
    ("retrying", 10),
    ("redelivered", 4),
    ("redelivered_ok", 7),
    ("redelivered_fail", 6),
)
EPOCH_US = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)


@dataclass
class Expected:
    """What the view must show for one failed event."""

    tenant: str
    delivery_id: str
    subscription_id: str
    entity: str
    trigger: str
    channel: int | None
    subchannel: str
    state: int = RETRYING
    error_code: str = ""
    error_message: str = ""
    attempts: int = 0
    failed_attempts: int = 0
    last_attempt_us: int = 0
    series: int = 1
    history: list[tuple[int, int]] = field(default_factory=list)  # (series, attempt)


@dataclass
class History:
    records: list[messages_pb2.AttemptRecord]
    expected: dict[tuple[str, str], Expected]  # failed events only


class Generator:
    def __init__(
        self,
        seed: int = 1,
        tenants: tuple[str, ...] = ("acme", "globex"),
        subscriptions: int = 4,
        prefix: str = "d",
        start_us: int = EPOCH_US,
    ) -> None:
        self.random = random.Random(seed)
        self.tenants = tenants
        self.subscriptions = [f"sub-{i}" for i in range(subscriptions)]
        self.prefix = prefix
        self.clock_us = start_us
        self.count = 0
        self.expected: dict[tuple[str, str], Expected] = {}

    def history(self, attempts: int, active: int = 50) -> History:
        """About ``attempts`` records (exactly, unless a plan would overshoot at the very
        end: then the last deliveries succeed first time), ``active`` deliveries in flight."""
        records: list[messages_pb2.AttemptRecord] = []
        running: list[Iterator[messages_pb2.AttemptRecord]] = []
        budget = attempts
        while budget > 0 or running:
            while budget > 0 and len(running) < active:
                plan = self._plan(budget)
                budget -= plan[1]
                running.append(self._delivery(plan[0]))
            index = self.random.randrange(len(running))
            try:
                records.append(next(running[index]))
            except StopIteration:
                running.pop(index)
        return History(records, dict(self.expected))

    def _plan(self, budget: int) -> tuple[list[str], int]:
        names, weights = zip(*PLANS, strict=True)
        kind = self.random.choices(names, weights)[0]
        steps = self._steps(kind)
        if len(steps) > budget:
            steps = ["ok"]
        return steps, len(steps)

    def _steps(self, kind: str) -> list[str]:
        """Per record: 'ok', 'fail' (will retry), 'last' (fails, no retry), 'gone',
        'redeliver' (marker of a new series)."""
        r = self.random
        if kind == "ok":
            return ["ok"]
        if kind == "recovered":
            return ["fail"] * r.randint(1, 3) + ["ok"]
        exhausted = ["fail"] * r.randint(1, 3) + ["last"]
        if kind == "exhausted":
            return exhausted
        if kind == "gone":
            return ["fail"] * r.randint(0, 2) + ["gone"]
        if kind == "retrying":
            return ["fail"] * r.randint(1, 3)
        if kind == "redelivered":
            return [*exhausted, "redeliver"]
        if kind == "redelivered_ok":
            return [*exhausted, "redeliver", *(["fail"] * r.randint(0, 1)), "ok"]
        return [*exhausted, "redeliver", "fail", "last"]

    def _delivery(self, steps: list[str]) -> Iterator[messages_pb2.AttemptRecord]:
        r = self.random
        self.count += 1
        tenant = r.choice(self.tenants)
        delivery_id = f"{self.prefix}{self.count:07d}"
        channel = r.choice((None, 1, 2, 3))
        base = messages_pb2.AttemptRecord(
            delivery_id=delivery_id,
            tenant=tenant,
            subscription_id=r.choice(self.subscriptions),
            event_id=f"evt-{delivery_id}",
            entity=r.choice(ENTITIES),
            trigger=r.choice(TRIGGERS),
            subchannel=r.choice(SUBCHANNELS),
            max_attempts=4,
            request_content_type="application/json",
            subscription_version=r.randint(1, 5),
        )
        base.subscription_name = f"Hook {base.subscription_id}"
        if channel is not None:
            base.channel = channel
        base.occurred_at.FromMicroseconds(self.clock_us)
        expected = Expected(
            tenant, delivery_id, base.subscription_id, base.entity, base.trigger, channel,
            base.subchannel,
        )  # fmt: skip
        series, attempt = 1, 0
        for step in steps:
            record = messages_pb2.AttemptRecord()
            record.CopyFrom(base)
            self.clock_us += r.randint(200, 2000)
            record.started_at.FromMicroseconds(self.clock_us)
            if step == "redeliver":
                series, attempt = series + 1, 0
                record.series, record.attempt = series, 0
                record.outcome = messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED
                record.manual = True
                record.requested_by = "ops"
                expected.state = REDELIVERED
                expected.series = series
                expected.history.append((series, 0))
                yield record
                continue
            attempt += 1
            record.series, record.attempt = series, attempt
            record.manual = series > 1
            record.duration_ms = r.randint(1, 900)
            record.request_body = f'{{"delivery":"{delivery_id}","try":{attempt}}}'.encode()
            expected.attempts += 1
            expected.last_attempt_us = self.clock_us
            expected.history.append((series, attempt))
            if step == "ok":
                record.outcome = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
                record.status_code = 200
                if expected.failed_attempts:
                    expected.state = RECOVERED
            else:
                status, failure_class, message = GONE if step == "gone" else r.choice(ERRORS)
                record.outcome = messages_pb2.ATTEMPT_OUTCOME_FAILED
                record.status_code = status
                record.failure_class = failure_class
                record.error_message = message
                record.response_snippet = b"<html>nope</html>" if status else b""
                record.will_retry = step == "fail"
                if record.will_retry:
                    record.next_attempt_at.FromMicroseconds(self.clock_us + 60_000_000)
                expected.failed_attempts += 1
                expected.error_code = str(status) if status else failure_name(failure_class)
                expected.error_message = message
                expected.state = RETRYING if record.will_retry else FAILED
                self.expected[(tenant, delivery_id)] = expected
            yield record
