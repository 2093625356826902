"""Endpoint health: circuit breaker, throttling, auto-disable and operator events (issue 15).

Pure rules (``rules``, ``attempts``: what an attempt changes, whether a job may go now), the
record and what the API shows of it (``record``), the breaker's window (``window``), the
store over NATS KV (``store``) and the operator events of the Webhook entity
(``announcements``, ``event_ids``). docs/operations.md describes the rules for operators.
"""

from webhooks_health.announcements import (
    DATA_DEFAULTS,
    announce,
    announce_notices,
    notice_event,
    operator_event,
    rfc3339,
)
from webhooks_health.attempts import (
    THROTTLING_STATUSES,
    after_attempt,
    duration_words,
    unchanged_by_success,
)
from webhooks_health.event_ids import announcement_event_id
from webhooks_health.record import (
    HEALTH_BUCKET,
    NOTICES_BUCKET,
    RATE_BUCKET,
    STATE_NAMES,
    health_key,
    shown_health,
    subscription_of_key,
)
from webhooks_health.rules import (
    NO_CHANGE,
    PROBE_STALE_SECONDS,
    Admission,
    AttemptFacts,
    Change,
    HealthRules,
    Notice,
    admit,
    claim_probe,
    decide_probe,
    probe_out,
)
from webhooks_health.store import HealthStore, RateSlotContention
from webhooks_health.window import FailureWindow

__all__ = [
    "DATA_DEFAULTS",
    "HEALTH_BUCKET",
    "NOTICES_BUCKET",
    "NO_CHANGE",
    "PROBE_STALE_SECONDS",
    "RATE_BUCKET",
    "STATE_NAMES",
    "THROTTLING_STATUSES",
    "Admission",
    "AttemptFacts",
    "Change",
    "FailureWindow",
    "HealthRules",
    "HealthStore",
    "Notice",
    "RateSlotContention",
    "admit",
    "after_attempt",
    "announce",
    "announce_notices",
    "announcement_event_id",
    "claim_probe",
    "decide_probe",
    "duration_words",
    "health_key",
    "notice_event",
    "operator_event",
    "probe_out",
    "rfc3339",
    "shown_health",
    "subscription_of_key",
    "unchanged_by_success",
]
