"""The sender's metrics (issue 14; the catalogue is webhooks_telemetry.metrics): attempts by
outcome, failure class and protocol, end-to-end latency, HTTP request duration, retries
scheduled and due, OAuth token requests; endpoint health (issue 15): circuit breaker
transitions, jobs deferred by reason, webhooks the platform disabled.

On the hot path, per attempt: one integer addition (the attempts counter bound to its
outcome, class and protocol: ``metrics.BoundCounter``) and two histogram records (latency
without attributes; the HTTP duration with an attribute dict made once per status code and
class and kept), never a dict made per call.

The latency is occurred → delivered of first deliveries and their retries; replays and
manual redeliveries are left out (their events may be days old: they would swamp the
distribution an SRE watches). ``retries.due`` counts retry attempts made (a job
with attempt > 1 or series > 1), so ``scheduled - due`` is the retries still waiting.

``configure(settings)`` (at the sender's start) turns the ``webhooks.tenant`` attribute on
(``WEBHOOKS_METRICS_TENANT_LABEL``): one series per tenant, so off by default.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue.failure_classes import failure_name
from webhooks_config import Settings
from webhooks_telemetry import metrics

LATENCY = metrics.histogram(metrics.DELIVERY_LATENCY)
HTTP_DURATION = metrics.histogram(metrics.HTTP_CLIENT_DURATION)
# Per attempt or per retry, counted by integer additions (metrics.BoundCounter).
RETRIES_SCHEDULED = metrics.bound_counter(metrics.RETRIES_SCHEDULED, {})
RETRIES_DUE = metrics.bound_counter(metrics.RETRIES_DUE, {})
TOKEN_REQUESTS = metrics.counter(metrics.OAUTH_TOKEN_REQUESTS)
# Endpoint health: one bound counter per label value (the values are a closed set).
BREAKER_STATES = ("open", "half_open", "closed")
DEFERRAL_REASONS = ("circuit_open", "throttled", "rate_limited", "disabled")
_BREAKER = {
    to: metrics.bound_counter(metrics.BREAKER_TRANSITIONS, {"to": to}) for to in BREAKER_STATES
}
_DEFERRED = {
    reason: metrics.bound_counter(metrics.DEFERRED_JOBS, {"reason": reason})
    for reason in DEFERRAL_REASONS
}
PLATFORM_DISABLES = metrics.bound_counter(metrics.PLATFORM_DISABLES, {})

FC = messages_pb2.FailureClass
NO_FAILURE = FC.FAILURE_CLASS_UNSPECIFIED
SOAP = common_pb2.WEBHOOK_TYPE_SOAP
# Failures of a request that was sent (or tried on the wire) without a response: they
# have a duration. The others (gone, configuration, token, refused) sent nothing.
_REQUEST_FAILURES = frozenset(
    {FC.FAILURE_CLASS_TIMEOUT, FC.FAILURE_CLASS_DNS, FC.FAILURE_CLASS_CONNECT, FC.FAILURE_CLASS_TLS}
)
_TOKEN = {True: {"outcome": "ok"}, False: {"outcome": "failed"}}
_MOST_KEPT = 10_000  # attribute dicts kept at most (tenants x classes with the tenant label)

_tenant_label = False
_attempts: dict[tuple[int, bool, str], metrics.BoundCounter] = {}
_latency_attributes: dict[str, dict[str, Any]] = {}
_http_attributes: dict[tuple[int, int], dict[str, Any]] = {}


class Attempt(Protocol):
    """What is counted of an attempt (delivery.AttemptResult; not imported: credentials,
    which delivery imports, counts its token requests here)."""

    @property
    def failure_class(self) -> int: ...
    @property
    def status_code(self) -> int: ...
    @property
    def duration_ms(self) -> int: ...


def configure(settings: Settings) -> None:
    global _tenant_label
    _tenant_label = settings.metrics_tenant_label


def attempted(
    job: messages_pb2.DeliveryJob,
    state: messages_pb2.SubscriptionState | None,
    result: Attempt,
) -> None:
    """Counts one attempt of ``job`` (to ``state``'s webhook: None when the subscription
    is gone) that ended as ``result``."""
    failure = result.failure_class
    tenant = job.tenant if _tenant_label else ""
    soap = state is not None and state.webhook.type == SOAP
    key = (failure, soap, tenant)
    attempts = _attempts.get(key)
    if attempts is None:
        attempts = _attempts[key] = metrics.bound_counter(
            metrics.DELIVERY_ATTEMPTS, _attempt_attrs(failure, soap, tenant)
        )
    attempts.add()
    if failure == NO_FAILURE and not (job.replay or job.manual) and job.HasField("occurred_at"):
        _delivered(job.occurred_at, tenant)
    if result.status_code or failure in _REQUEST_FAILURES:
        http_key = (result.status_code, failure)
        http = _http_attributes.get(http_key)
        if http is None:
            http = _kept(_http_attributes, http_key, _http_attrs(result.status_code, failure))
        HTTP_DURATION.record(result.duration_ms / 1000, http)
    if job.attempt > 1 or job.series > 1:
        RETRIES_DUE.add()


def _delivered(occurred: Timestamp, tenant: str) -> None:
    latency = max(time.time() - occurred.seconds - occurred.nanos / 1e9, 0.0)
    if not tenant:
        LATENCY.record(latency)  # None, not {}: the SDK skips cleaning absent attributes
        return
    attributes = _latency_attributes.get(tenant)
    if attributes is None:
        attributes = _kept(_latency_attributes, tenant, {metrics.TENANT_ATTRIBUTE: tenant})
    LATENCY.record(latency, attributes)


def retry_scheduled() -> None:
    RETRIES_SCHEDULED.add()


def breaker_moved(to: str) -> None:
    """A webhook's circuit went ``to`` one of ``BREAKER_STATES``."""
    _BREAKER[to].add()


def deferred(reason: str) -> None:
    """A job was put back without an attempt, for one of ``DEFERRAL_REASONS``."""
    _DEFERRED[reason].add()


def platform_disabled() -> None:
    PLATFORM_DISABLES.add()


def token_requested(ok: bool) -> None:
    TOKEN_REQUESTS.add(1, _TOKEN[ok])


def _attempt_attrs(failure: int, soap: bool, tenant: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "outcome": "succeeded" if failure == NO_FAILURE else "failed",
        "failure_class": failure_name(failure),
        "protocol": "soap" if soap else "rest",
    }
    if tenant:
        attributes[metrics.TENANT_ATTRIBUTE] = tenant
    return attributes


def _http_attrs(status: int, failure: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {"http.request.method": "POST"}
    if status:
        attributes["http.response.status_code"] = status
    if failure != NO_FAILURE:
        attributes["error.type"] = failure_name(failure)
    return attributes


def _kept(cache: dict[Any, dict[str, Any]], key: Any, value: dict[str, Any]) -> dict[str, Any]:
    if len(cache) < _MOST_KEPT:
        cache[key] = value
    return value
