"""The event ids of operator events: one per fact, so a repeated announcement deduplicates.

The EVENTS stream drops a second message with the same ``Nats-Msg-Id`` inside its duplicate
window, and the router's delivery ids derive from the event id: two senders that see the same
streak turn failing announce it once. Each id names the moment that makes the fact unique
(the streak's first failure, the circuit's opening, the delivery whose retries ran out).
"""

from __future__ import annotations

from datetime import datetime

from webhooks_catalogue import (
    ON_CERTIFICATE_EXPIRING,
    ON_CIRCUIT_OPENED,
    ON_DISABLED,
    ON_FAILING,
    ON_RECOVERED,
    ON_RETRIES_EXHAUSTED,
)
from webhooks_catalogue.limits import EVENT_ID_LENGTH

_MOMENT_WORDS = {
    ON_FAILING: "failing",
    ON_CIRCUIT_OPENED: "circuit-opened",
    ON_DISABLED: "disabled",
    ON_RECOVERED: "recovered",
}


def _epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def announcement_event_id(
    trigger: str,
    subscription_id: str,
    *,
    at: datetime | None = None,
    delivery_id: str = "",
    certificate_id: str = "",
    not_after: datetime | None = None,
) -> str:
    """The event id of an operator event about one webhook.

    ``at``: OnFailing and OnRecovered the streak's failing_since, OnCircuitOpened the
    opening, OnDisabled the disabling; ``delivery_id`` for OnRetriesExhausted;
    ``certificate_id`` and ``not_after`` for OnCertificateExpiring.
    """
    if trigger in _MOMENT_WORDS:
        if at is None:
            raise ValueError(f"{trigger}: the event id needs the moment it is about")
        event_id = f"webhook:{subscription_id}:{_MOMENT_WORDS[trigger]}:{_epoch_ms(at)}"
    elif trigger == ON_RETRIES_EXHAUSTED:
        if not delivery_id:
            raise ValueError(f"{trigger}: the event id needs the delivery id")
        event_id = f"webhook:{subscription_id}:exhausted:{delivery_id}"
    elif trigger == ON_CERTIFICATE_EXPIRING:
        if not certificate_id or not_after is None:
            raise ValueError(f"{trigger}: the event id needs the certificate and its expiry")
        expiry = int(not_after.timestamp())
        event_id = f"webhook:{subscription_id}:certificate-expiring:{certificate_id}:{expiry}"
    else:
        raise ValueError(f"trigger: not an operator event of the Webhook entity: {trigger!r}")
    if len(event_id) > EVENT_ID_LENGTH:
        raise ValueError(f"event id: longer than {EVENT_ID_LENGTH} characters: {event_id!r}")
    return event_id
