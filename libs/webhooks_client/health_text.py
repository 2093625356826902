"""How an endpoint's health reads, in a terminal and in the console: the state's name, a
one-line summary ("Circuit open: 7 of 10 attempts failed in 5 minutes — retrying at
12:03 UTC"), and its details as key/value fields.

A subscription whose ``health`` is unset (a service that does not fill it yet) or
``HEALTH_STATE_UNSPECIFIED`` reads as healthy: the platform knows nothing against it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1.common_pb2 import Health, HealthState
from webhooks_client.protos import timestamp_text

HEALTHY = HealthState.HEALTH_STATE_HEALTHY
FAILING = HealthState.HEALTH_STATE_FAILING
CIRCUIT_OPEN = HealthState.HEALTH_STATE_CIRCUIT_OPEN
THROTTLED = HealthState.HEALTH_STATE_THROTTLED
DISABLED = HealthState.HEALTH_STATE_DISABLED

# The state's name for a person (the CLI's HEALTH column, the console's badge).
HEALTH_NAMES: dict[int, str] = {
    HEALTHY: "healthy",
    FAILING: "failing",
    CIRCUIT_OPEN: "circuit open",
    THROTTLED: "throttled",
    DISABLED: "disabled",
}
# The summary's first words per state (health_summary: "<label>: <detail>").
SUMMARY_LABELS: dict[int, str] = {
    DISABLED: "Disabled by the platform",
    CIRCUIT_OPEN: "Circuit open",
    THROTTLED: "Throttled",
    FAILING: "Failing",
}
# The history entry of the platform's disabling (changes: {"reason": ...}).
DISABLED_BY_PLATFORM = "DisabledByPlatform"
# The states a person should look at, worst first (the console's banners, in this order).
TROUBLED = (DISABLED, CIRCUIT_OPEN, FAILING)


def health_state(health: Health) -> int:
    """The state, UNSPECIFIED read as HEALTHY."""
    return health.state if health.state in HEALTH_NAMES else HEALTHY


def health_name(health: Health) -> str:
    return HEALTH_NAMES[health_state(health)]


def disabled_text(reason: str) -> str:
    """The platform's disabling, as the history says it (and the summary)."""
    return f"{SUMMARY_LABELS[DISABLED]}: {reason or 'no reason given'}"


def clock_text(ts: Timestamp, now: datetime | None = None) -> str:
    """``12:03 UTC`` today, ``2024-05-02 12:03 UTC`` another day; "" when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return ""
    at = ts.ToDatetime(tzinfo=UTC)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return at.strftime("%H:%M UTC" if at.date() == today else "%Y-%m-%d %H:%M UTC")


def failing_text(health: Health) -> str:
    """Why a failing endpoint is failing: its reason, else its streak in words."""
    if health.reason:
        return health.reason
    count = health.consecutive_failures
    return f"{count} attempt{'' if count == 1 else 's'} in a row failed"


def health_detail(health: Health, now: datetime | None = None) -> str:
    """Why, and when it may change: the summary without the state (for a list already
    headed by the state, as the console's banners are)."""
    state = health_state(health)
    until = clock_text(health.until, now)
    if state == DISABLED:
        return health.reason or "no reason given"
    if state == CIRCUIT_OPEN:
        why = health.reason or "too many attempts failed"
        return why + (f" — retrying at {until}" if until else "")
    if state == THROTTLED:
        why = health.reason or "the endpoint asked to slow down"
        return why + (f" — resuming at {until}" if until else "")
    if state == FAILING:
        since = clock_text(health.failing_since, now)
        return failing_text(health) + (f" since {since}" if since else "")
    return ""


def health_summary(health: Health, now: datetime | None = None) -> str:
    """One line: the state, why, and when it may change."""
    label = SUMMARY_LABELS.get(health_state(health))
    return f"{label}: {health_detail(health, now)}" if label else "Healthy"


def health_fields(health: Health) -> list[tuple[str, str]]:
    """The health block of ``subscriptions get``: the state and what is known of it."""
    fields = [("health", health_name(health))]
    if health_state(health) == HEALTHY and not health.consecutive_failures:
        return fields
    optional = (
        ("reason", health.reason),
        ("consecutive failures", str(health.consecutive_failures or "")),
        ("failing since", timestamp_text(health.failing_since)),
        ("until", timestamp_text(health.until)),
        ("last error", health.last_error),
        ("last failure", timestamp_text(health.last_failure_at)),
        ("last success", timestamp_text(health.last_success_at)),
    )
    fields.extend((key, value) for key, value in optional if value)
    return fields
