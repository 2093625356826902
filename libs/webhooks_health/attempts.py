"""What one attempt changes in a webhook's health (pure; the rules of docs/operations.md).

- A success resets everything (but a throttle the endpoint asked for, which runs to its
  end): the record is deleted (or kept healthy, holding only when
  OnRetriesExhausted was last raised, while that notice's window lasts). It closes an open
  circuit, and announces OnRecovered when the streak had announced OnFailing or
  OnCircuitOpened. A success with no record stores nothing: the hot path.
- A failure (every failure class but SUBSCRIPTION_GONE, which says nothing about the
  endpoint) extends the streak, then the state is, in precedence order:
  DISABLED on 410 Gone, or when every attempt failed for ``disable_after_seconds`` with at
  least ``disable_min_attempts`` attempts; CIRCUIT_OPEN when the window holds at least
  ``min_requests`` attempts of which ``failure_percent`` failed (a failed probe re-opens it
  with the cool-down doubled, to at most the maximum); THROTTLED on 429/502/503/504 (for the
  Retry-After, capped, else a back-off doubling from min to max); FAILING from
  ``failing_after`` consecutive failures; else HEALTHY.
- Announcements (loop rules 2 and 3): only an ordinary event's attempt announces; OnFailing
  and OnCircuitOpened once per streak, OnDisabled once (a disabled record changes no more),
  OnRetriesExhausted at most once per ``exhausted_notice_seconds``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue import (
    ON_CIRCUIT_OPENED,
    ON_DISABLED,
    ON_FAILING,
    ON_RECOVERED,
    ON_RETRIES_EXHAUSTED,
)
from webhooks_health.event_ids import announcement_event_id
from webhooks_health.record import moment, timestamp
from webhooks_health.rules import NO_CHANGE, AttemptFacts, Change, HealthRules, Notice

HS = common_pb2.HealthState
FC = messages_pb2.FailureClass

# The status codes that ask a client to slow down (Standard Webhooks: 429, 502, 504; 503 is
# the same request in other words).
THROTTLING_STATUSES = frozenset({429, 502, 503, 504})
GONE_STATUS = 410
# last_error keeps this much of the failure's message.
MAX_ERROR_LENGTH = 500


def after_attempt(
    record: messages_pb2.EndpointHealth | None,
    facts: AttemptFacts,
    now: datetime,
    rules: HealthRules,
    *,
    tenant: str,
    subscription_id: str,
    window: tuple[int, int],
) -> Change:
    """The change one attempt makes; ``window``: (failed, total) of the breaker's window,
    this attempt included."""
    if not facts.succeeded and facts.failure_class == FC.FAILURE_CLASS_SUBSCRIPTION_GONE:
        return NO_CHANGE
    if record is not None and record.health.state == HS.HEALTH_STATE_DISABLED:
        # Only re-enabling the webhook (which deletes the record) ends a disabling.
        return NO_CHANGE
    if facts.succeeded:
        return _after_success(record, facts, now, rules)
    updated = _failed(record, facts, now, tenant, subscription_id)
    transitions = _next_state(updated, facts, now, rules, window)
    notices = _notices(updated, facts, now, rules) if facts.announces else ()
    return Change(
        write=True,
        record=updated,
        announcements=tuple(notice.trigger for notice in notices),
        transitions=transitions,
        notices=notices,
    )


def unchanged_by_success(record: messages_pb2.EndpointHealth) -> bool:
    """A record a success leaves as it is: healthy with no failure counted (kept only for
    its OnRetriesExhausted notice). The sender skips the update of such a success."""
    return record.health.consecutive_failures == 0 and record.health.state in (
        HS.HEALTH_STATE_HEALTHY,
        HS.HEALTH_STATE_UNSPECIFIED,
    )


def _after_success(
    record: messages_pb2.EndpointHealth | None,
    facts: AttemptFacts,
    now: datetime,
    rules: HealthRules,
) -> Change:
    if record is None or unchanged_by_success(record):
        return NO_CHANGE
    was = record.health
    until = moment(was.until)
    if was.state == HS.HEALTH_STATE_THROTTLED and until is not None and until > now:
        # An attempt sent before the endpoint asked to slow down: the pause it asked for
        # stands; the first success after it resets the streak.
        return NO_CHANGE
    transitions = ("closed",) if was.state == HS.HEALTH_STATE_CIRCUIT_OPEN else ()
    notices: tuple[Notice, ...] = ()
    failing_since = moment(was.failing_since)
    announced = record.failing_announced or record.circuit_announced
    if facts.announces and announced and failing_since is not None:
        # Healthy again; failing_since still says since when it had been failing.
        health = common_pb2.Health()
        health.CopyFrom(was)
        health.state = HS.HEALTH_STATE_HEALTHY
        health.reason = ""
        health.consecutive_failures = 0
        health.last_error = ""
        health.ClearField("until")
        health.last_success_at.CopyFrom(timestamp(now))
        event_id = announcement_event_id(ON_RECOVERED, record.subscription_id, at=failing_since)
        notices = (Notice(ON_RECOVERED, event_id, health),)
    return Change(
        write=True,
        record=_healthy(record, facts, now, rules),
        announcements=tuple(notice.trigger for notice in notices),
        transitions=transitions,
        notices=notices,
    )


def _healthy(
    record: messages_pb2.EndpointHealth, facts: AttemptFacts, now: datetime, rules: HealthRules
) -> messages_pb2.EndpointHealth | None:
    """What stays after a success: nothing, or when OnRetriesExhausted was raised within its
    window, a healthy record that remembers it (so the next exhaustion is not announced)."""
    last = moment(record.exhausted_announced_at)
    if last is None or now - last >= timedelta(seconds=rules.exhausted_notice_seconds):
        return None
    kept = messages_pb2.EndpointHealth(
        tenant=record.tenant,
        subscription_id=record.subscription_id,
        health=common_pb2.Health(state=HS.HEALTH_STATE_HEALTHY, last_success_at=timestamp(now)),
        subscription_version=max(record.subscription_version, facts.subscription_version),
    )
    kept.exhausted_announced_at.CopyFrom(record.exhausted_announced_at)
    return kept


def _failed(
    record: messages_pb2.EndpointHealth | None,
    facts: AttemptFacts,
    now: datetime,
    tenant: str,
    subscription_id: str,
) -> messages_pb2.EndpointHealth:
    """The record with this failure added to its streak (a new streak after a success)."""
    updated = messages_pb2.EndpointHealth()
    if record is not None:
        updated.CopyFrom(record)
    updated.tenant = tenant
    updated.subscription_id = subscription_id
    updated.subscription_version = max(updated.subscription_version, facts.subscription_version)
    health = updated.health
    at = timestamp(now)
    if health.consecutive_failures == 0:
        health.failing_since.CopyFrom(at)
        updated.streak_attempts = 0
        updated.failing_announced = False
        updated.circuit_announced = False
        updated.throttle_seconds = 0
    health.consecutive_failures += 1
    updated.streak_attempts += 1
    health.last_failure_at.CopyFrom(at)
    health.last_error = facts.message[:MAX_ERROR_LENGTH]
    return updated


def _next_state(
    updated: messages_pb2.EndpointHealth,
    facts: AttemptFacts,
    now: datetime,
    rules: HealthRules,
    window: tuple[int, int],
) -> tuple[str, ...]:
    """Set the record's state after a failure; the breaker transitions it made."""
    health = updated.health
    if _is_http(facts, GONE_STATUS):
        return _disable(updated, now, "the endpoint answered 410 Gone")
    failing_since = moment(health.failing_since) or now
    if (
        now - failing_since >= timedelta(seconds=rules.disable_after_seconds)
        and updated.streak_attempts >= rules.disable_min_attempts
    ):
        period = duration_words(rules.disable_after_seconds)
        reason = f"every attempt failed for {period} ({updated.streak_attempts} attempts)"
        return _disable(updated, now, reason)
    if health.state == HS.HEALTH_STATE_CIRCUIT_OPEN:
        if not facts.probe:
            return ()  # sent before the circuit opened: the probe decides, not this
        doubled = min(max(updated.cooldown_seconds, 1) * 2, rules.cooldown_max_seconds)
        return _open(updated, now, doubled, health.reason, "reopened")
    failed, total = window
    if total >= rules.min_requests and failed * 100 >= rules.failure_percent * total:
        period = duration_words(rules.window_seconds)
        reason = f"{failed} of {total} attempts failed in {period}"
        return _open(updated, now, rules.cooldown_seconds, reason, "opened")
    if facts.status_code in THROTTLING_STATUSES and _is_http(facts, facts.status_code):
        return _throttle(updated, facts, now, rules)
    until = moment(health.until)
    if health.state == HS.HEALTH_STATE_THROTTLED and until is not None and until > now:
        return ()  # still waiting as the endpoint asked
    health.ClearField("until")
    if health.consecutive_failures >= rules.failing_after:
        health.state = HS.HEALTH_STATE_FAILING
        health.reason = f"{health.consecutive_failures} attempts in a row failed"
    else:
        health.state = HS.HEALTH_STATE_HEALTHY
        health.reason = ""
    return ()


def _is_http(facts: AttemptFacts, status: int) -> bool:
    return facts.failure_class == FC.FAILURE_CLASS_HTTP_STATUS and facts.status_code == status


def _disable(updated: messages_pb2.EndpointHealth, now: datetime, reason: str) -> tuple[str, ...]:
    updated.health.state = HS.HEALTH_STATE_DISABLED
    updated.health.reason = reason
    updated.health.ClearField("until")
    updated.ClearField("probe_started_at")
    updated.disabled_at.CopyFrom(timestamp(now))
    return ("disabled",)


def _open(
    updated: messages_pb2.EndpointHealth,
    now: datetime,
    cooldown: int,
    reason: str,
    transition: str,
) -> tuple[str, ...]:
    updated.health.state = HS.HEALTH_STATE_CIRCUIT_OPEN
    updated.health.reason = reason
    updated.health.until.CopyFrom(timestamp(now + timedelta(seconds=cooldown)))
    updated.cooldown_seconds = cooldown
    updated.circuit_opened_at.CopyFrom(timestamp(now))
    updated.ClearField("probe_started_at")
    return (transition,)


def _throttle(
    updated: messages_pb2.EndpointHealth, facts: AttemptFacts, now: datetime, rules: HealthRules
) -> tuple[str, ...]:
    status = facts.status_code
    if facts.retry_after is not None:
        seconds = min(max(facts.retry_after, 0.0), float(rules.retry_after_max_seconds))
        reason = f"the endpoint answered {status} and asked to wait {seconds:g} s"
    else:
        previous = updated.throttle_seconds
        backoff = rules.throttle_min_seconds if previous <= 0 else previous * 2
        updated.throttle_seconds = min(backoff, rules.throttle_max_seconds)
        seconds = float(updated.throttle_seconds)
        reason = f"the endpoint answered {status}; waiting {seconds:g} s"
    updated.health.state = HS.HEALTH_STATE_THROTTLED
    updated.health.reason = reason
    updated.health.until.CopyFrom(timestamp(now + timedelta(seconds=seconds)))
    return ("throttled",)


def _notices(
    updated: messages_pb2.EndpointHealth, facts: AttemptFacts, now: datetime, rules: HealthRules
) -> tuple[Notice, ...]:
    """The operator events this failure raises, marking each in the record (rule 3)."""
    health = updated.health
    sub = updated.subscription_id
    raised: list[tuple[str, str]] = []
    if health.consecutive_failures >= rules.failing_after and not updated.failing_announced:
        updated.failing_announced = True
        at = moment(health.failing_since)
        raised.append((ON_FAILING, announcement_event_id(ON_FAILING, sub, at=at)))
    if health.state == HS.HEALTH_STATE_CIRCUIT_OPEN and not updated.circuit_announced:
        updated.circuit_announced = True
        at = moment(updated.circuit_opened_at)
        raised.append((ON_CIRCUIT_OPENED, announcement_event_id(ON_CIRCUIT_OPENED, sub, at=at)))
    if health.state == HS.HEALTH_STATE_DISABLED:
        at = moment(updated.disabled_at)
        raised.append((ON_DISABLED, announcement_event_id(ON_DISABLED, sub, at=at)))
    notices = [Notice(trigger, event_id, _copy(health)) for trigger, event_id in raised]
    last = moment(updated.exhausted_announced_at)
    quiet = timedelta(seconds=rules.exhausted_notice_seconds)
    if facts.exhausted and (last is None or now - last >= quiet):
        updated.exhausted_announced_at.CopyFrom(timestamp(now))
        event_id = announcement_event_id(ON_RETRIES_EXHAUSTED, sub, delivery_id=facts.delivery_id)
        notices.append(
            Notice(
                ON_RETRIES_EXHAUSTED,
                event_id,
                _copy(health),
                delivery_id=facts.delivery_id,
                delivered_event_id=facts.event_id,
            )
        )
    return tuple(notices)


def _copy(health: common_pb2.Health) -> common_pb2.Health:
    copied = common_pb2.Health()
    copied.CopyFrom(health)
    return copied


def duration_words(seconds: int) -> str:
    """A period in the largest whole unit: "5 days", "5 minutes", "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
