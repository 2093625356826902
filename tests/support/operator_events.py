"""The platform's own events about webhooks (catalogue entity ``Webhook``, issue 15) as an
endpoint receives them, for end-to-end tests of endpoint health.

An operator event is delivered like any other event: the catalogue's envelope
(``{"Event": {"Subscription": "Webhook", "Name": <trigger>, ...}}``) around its data, signed
with the receiving webhook's secret. ``received_operator_events`` reads what a receiver got
at a path, verifying every signature; ``settled`` waits until a count stops changing, so a
test can assert that nothing more arrives (a loop would keep the count climbing) without a
fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import standardwebhooks

from tests.support.platform_stack import rest
from tests.support.receivers import HttpsReceiver, Received
from webhooks.v1 import common_pb2, subscriptions_pb2

WEBHOOK = "Webhook"
ON_FAILING = "OnFailing"
ON_CIRCUIT_OPENED = "OnCircuitOpened"
ON_DISABLED = "OnDisabled"
ON_RECOVERED = "OnRecovered"
ON_RETRIES_EXHAUSTED = "OnRetriesExhausted"
ON_CERTIFICATE_EXPIRING = "OnCertificateExpiring"
HEALTH_TRIGGERS = (ON_FAILING, ON_CIRCUIT_OPENED, ON_DISABLED, ON_RECOVERED, ON_RETRIES_EXHAUSTED)
# Every key of an operator event's data (contract: all present, "" or 0 when not applicable).
DATA_KEYS = frozenset(
    {
        "SubscriptionId",
        "SubscriptionName",
        "Entity",
        "Url",
        "State",
        "Reason",
        "ConsecutiveFailures",
        "FailingSince",
        "LastError",
        "DeliveryId",
        "EventId",
        "CertificateId",
        "CertificateName",
        "CertificateNotAfter",
    }
)


@dataclass(frozen=True)
class OperatorEvent:
    """One delivered Webhook event: its envelope and its data (complete data asked for)."""

    envelope: dict[str, Any]
    received: Received

    @property
    def trigger(self) -> str:
        name: str = self.envelope["Name"]
        return name

    @property
    def event_id(self) -> str:
        event_id: str = self.envelope["EventId"]
        return event_id

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.envelope[WEBHOOK]
        return data

    @property
    def about(self) -> str:
        """The id of the webhook the event is about."""
        about: str = self.data["SubscriptionId"]
        return about


def operator_spec(
    name: str,
    url: str,
    triggers: Sequence[str] = HEALTH_TRIGGERS,
    *,
    retries: int = 0,
    certificate_id: str = "",
) -> subscriptions_pb2.SubscriptionSpec:
    """A REST subscription to Webhook events with the complete data (every key)."""
    return rest(
        name,
        url,
        entity=WEBHOOK,
        triggers=[common_pb2.TriggerSpec(trigger=t) for t in triggers],
        retries=retries,
        include_complete_data=True,
        certificate_id=certificate_id,
    )


def received_operator_events(
    receiver: HttpsReceiver, path: str, signing_secret: str
) -> list[OperatorEvent]:
    """Every request to ``path`` as an operator event, each signature verified (a request
    not signed with ``signing_secret`` fails the test)."""
    verifier = standardwebhooks.Webhook(signing_secret)
    found = []
    for request in receiver.at(path):
        verifier.verify(request.body, dict(request.headers))
        envelope = json.loads(request.body)["Event"]
        assert envelope["Subscription"] == WEBHOOK, envelope
        assert request.headers["webhook-id"] == envelope["DeliveryId"], request.headers
        found.append(OperatorEvent(envelope, request))
    return found


def of(events: Iterable[OperatorEvent], trigger: str, about: str) -> list[OperatorEvent]:
    return [e for e in events if e.trigger == trigger and e.about == about]


async def settled(
    count: Callable[[], int],
    *,
    quiet: float = 4.0,
    within: float = 60.0,
    what: str = "deliveries",
) -> int:
    """``count()`` once it has not changed for ``quiet`` seconds; fails when it is still
    changing after ``within`` seconds (a loop of events never settles)."""
    deadline = time.monotonic() + within
    last, since = count(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still changing after {within} s: {last}")
        await asyncio.sleep(0.2)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last
