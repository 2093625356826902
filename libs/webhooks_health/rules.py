"""The health rules, pure: whether a job may be sent now, and what an attempt changes.

No I/O and no clock: the caller passes ``now`` and the record it holds (the store's cache
for admission, a fresh read for a change), and stores what ``after_attempt`` decides
(``attempts.py``) with a compare-and-set (``store.py``).

Admission of a job to its webhook:
- no record, healthy or failing: send;
- throttled until a time still ahead: wait until then (plus up to 1 s, so the waiting jobs
  do not all come back in the same instant);
- circuit open: wait until the cool-down ends, spread over one more cool-down; past it,
  one job is the probe (the first to claim it in the store) and the others wait;
- disabled: wait (the subscriptions service deactivates the webhook, and its jobs then end
  as "subscription gone").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import Settings
from webhooks_health.record import moment, timestamp

HS = common_pb2.HealthState

# A probe out longer than this is taken as lost (its sender died): another job may probe.
PROBE_STALE_SECONDS = 60


@dataclass(frozen=True)
class HealthRules:
    """The settings the rules read (``webhooks_config.Settings`` documents each)."""

    failure_percent: int
    min_requests: int
    window_seconds: int
    cooldown_seconds: int
    cooldown_max_seconds: int
    failing_after: int
    disable_after_seconds: int
    disable_min_attempts: int
    throttle_min_seconds: int
    throttle_max_seconds: int
    exhausted_notice_seconds: int
    retry_after_max_seconds: int
    certificate_warning_days: int
    certificate_check_seconds: int

    @classmethod
    def of(cls, settings: Settings) -> HealthRules:
        return cls(
            failure_percent=settings.health_breaker_failure_percent,
            min_requests=settings.health_breaker_min_requests,
            window_seconds=settings.health_breaker_window_seconds,
            cooldown_seconds=settings.health_breaker_cooldown_seconds,
            cooldown_max_seconds=settings.health_breaker_cooldown_max_seconds,
            failing_after=settings.health_failing_after,
            disable_after_seconds=settings.health_disable_after_seconds,
            disable_min_attempts=settings.health_disable_min_attempts,
            throttle_min_seconds=settings.health_throttle_min_seconds,
            throttle_max_seconds=settings.health_throttle_max_seconds,
            exhausted_notice_seconds=settings.health_exhausted_notice_seconds,
            retry_after_max_seconds=settings.retry_after_max_seconds,
            certificate_warning_days=settings.health_certificate_warning_days,
            certificate_check_seconds=settings.health_certificate_check_seconds,
        )


@dataclass(frozen=True)
class AttemptFacts:
    """What one attempt to deliver told about the endpoint."""

    succeeded: bool
    status_code: int  # 0 when no HTTP response
    failure_class: int  # messages_pb2.FailureClass; UNSPECIFIED when it succeeded
    message: str  # the failure in words (never a secret)
    retry_after: float | None  # seconds the endpoint asked to wait, if it did
    exhausted: bool  # failed and no attempt follows
    probe: bool  # this attempt was the circuit's probe
    announces: bool  # an ordinary event's attempt (job.entity != "Webhook"): may announce
    subscription_version: int
    delivery_id: str
    event_id: str


@dataclass(frozen=True)
class Admission:
    """Whether a job goes now; if not, until when it waits and why (a metric label)."""

    send: bool
    probe: bool = False  # the circuit's probe: claim it first (claim_probe / decide_probe)
    until: datetime | None = None
    reason: str = ""  # deferred: "circuit_open" | "throttled" | "disabled"


SEND = Admission(send=True)


@dataclass(frozen=True)
class Notice:
    """One operator event to raise, with what its data needs beyond the subscription."""

    trigger: str
    event_id: str
    health: common_pb2.Health
    delivery_id: str = ""  # OnRetriesExhausted: the delivery whose retries ran out
    delivered_event_id: str = ""  # and the event it carried


@dataclass(frozen=True)
class Change:
    """What to store after an attempt, and what to tell."""

    write: bool  # False: nothing to store (the success hot path)
    record: messages_pb2.EndpointHealth | None  # None with write=True: delete the key
    announcements: tuple[str, ...]  # trigger names to raise (loop rules already applied)
    transitions: tuple[str, ...]  # "opened","reopened","closed","throttled","disabled"
    notices: tuple[Notice, ...] = ()  # the announcements, each with its event id and data


NO_CHANGE = Change(write=False, record=None, announcements=(), transitions=())


def admit(
    record: messages_pb2.EndpointHealth | None,
    now: datetime,
    rules: HealthRules,
    *,
    jitter: Callable[[], float] = random.random,
) -> Admission:
    """Whether a job to this webhook is sent now (``jitter``: uniform in [0, 1))."""
    if record is None:
        return SEND
    state = record.health.state
    until = moment(record.health.until)
    if state == HS.HEALTH_STATE_THROTTLED:
        if until is not None and until > now:
            return Admission(False, until=until + timedelta(seconds=jitter()), reason="throttled")
        return SEND
    cooldown = record.cooldown_seconds or rules.cooldown_seconds
    if state == HS.HEALTH_STATE_CIRCUIT_OPEN:
        if until is not None and until > now:
            spread = timedelta(seconds=cooldown * jitter())
            return Admission(False, until=until + spread, reason="circuit_open")
        if probe_out(record, now):
            # The probe decides soon: look again within one cool-down.
            later = now + timedelta(seconds=max(1.0, cooldown * jitter()))
            return Admission(False, until=later, reason="circuit_open")
        return Admission(True, probe=True)
    if state == HS.HEALTH_STATE_DISABLED:
        later = now + timedelta(seconds=cooldown * (1 + jitter()))
        return Admission(False, until=later, reason="disabled")
    return SEND


def probe_out(record: messages_pb2.EndpointHealth, now: datetime) -> bool:
    """Whether a probe is out and recent enough to still come back."""
    started = moment(record.probe_started_at)
    return started is not None and now - started < timedelta(seconds=PROBE_STALE_SECONDS)


def claim_probe(record: messages_pb2.EndpointHealth, now: datetime) -> messages_pb2.EndpointHealth:
    """A copy of the record with its probe out from ``now``."""
    claimed = messages_pb2.EndpointHealth()
    claimed.CopyFrom(record)
    claimed.probe_started_at.CopyFrom(timestamp(now))
    return claimed


def decide_probe(
    record: messages_pb2.EndpointHealth | None, now: datetime, rules: HealthRules
) -> Change:
    """For ``HealthStore.change``: claim the probe if, on a fresh read, it is still free.

    ``write`` in the applied change says this sender won the probe; otherwise the job waits.
    """
    if record is None or not admit(record, now, rules).probe:
        return NO_CHANGE
    return Change(write=True, record=claim_probe(record, now), announcements=(), transitions=())
