"""The demo's pieces (``webhooks demo``, demo.py): its subscriptions' plans, the console it
prints on, what a run created, and the calls each step makes (create, probe, publish, wait
for the failures view, delete)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from webhooks.v1.common_pb2 import (
    RetryPolicy,
    SoapSettings,
    TriggerSpec,
    Webhook,
    WebhookType,
)
from webhooks.v1.failures_pb2 import (
    FailedEventFilter,
    FailedEventState,
    ListFailedEventsRequest,
)
from webhooks.v1.messages_pb2 import AttemptOutcome, FailureClass, PlatformEvent
from webhooks.v1.router_pb2 import PUBLISH_STATUS_REJECTED, PublishEventsRequest
from webhooks.v1.sender_pb2 import SendTestEventRequest
from webhooks.v1.subscriptions_pb2 import (
    CreateSubscriptionRequest,
    DeleteSubscriptionRequest,
    SubscriptionSpec,
)
from webhooks_catalogue.samples import sample_event
from webhooks_cli.client import Client
from webhooks_cli.demo_platform import LOOPBACK, POLL_SECONDS
from webhooks_cli.demo_receiver import Delivery, DemoReceiver
from webhooks_cli.errors import CliError
from webhooks_client.failure_text import class_text

RETRIES = 1
DELIVERY_TIMEOUT_SECONDS = 30.0
VIEW_TIMEOUT_SECONDS = 30.0  # the failures view follows ATTEMPTS within moments
SOAP_NAMESPACE = "urn:example:webhooks-demo"
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """One demo subscription: what it listens to and where the receiver takes it."""

    key: str
    label: str
    entity: str
    triggers: tuple[str, ...]
    soap: bool = False


PLANS = (
    Plan("crm", "CRM (REST)", "User", ("OnNew", "OnUpdate")),
    Plan("tickets", "Tickets (REST)", "Object", ("OnNew",)),
    Plan("erp", "ERP audit (SOAP)", "Tag", ("OnAdd",), soap=True),
)
# The sample events published, one per (entity, trigger); each reaches one subscription.
SAMPLES = (("User", "OnNew"), ("User", "OnUpdate"), ("Object", "OnNew"), ("Tag", "OnAdd"))
FAILING = "tickets"  # the subscription whose endpoint is made to fail


class Console:
    """Step headings, lines and deliveries; one lock, because deliveries are printed from
    the receiver's thread while the steps print from this one."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.steps = 0

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, flush=True)

    def step(self, title: str, numbered: bool = True) -> None:
        if numbered:
            self.steps += 1
            title = f"{self.steps}. {title}"
        self.say(f"\n== {title} ==")

    def delivery(self, d: Delivery) -> None:
        when = d.at.astimezone().strftime("%H:%M:%S")
        answered = "answered 204" if d.status == 204 else f"answered {d.status} (failing)"
        self.say(
            f"  <- {when}  {d.subscription}  {d.entity} {d.trigger}  signature {d.signature}"
            f"  {answered}\n"
            f"       webhook-id {d.webhook_id}\n"
            f"       {d.kind}  {d.excerpt}"
        )


@dataclass
class Run:
    """What one run created and saw, for the steps and the summary."""

    suffix: str
    interval: int
    subscriptions: dict[str, tuple[str, str]] = field(default_factory=dict)  # key: (id, name)
    published: list[str] = field(default_factory=list)

    def path(self, key: str) -> str:
        return f"/demo-{self.suffix}/{key}"

    def name(self, plan: Plan) -> str:
        return f"demo-{self.suffix} {plan.label}"


def create_subscription(
    client: Client, receiver: DemoReceiver, run: Run, plan: Plan, console: Console
) -> None:
    path, name = run.path(plan.key), run.name(plan)
    receiver.add_endpoint(path, name)
    webhook = Webhook(
        type=WebhookType.WEBHOOK_TYPE_SOAP if plan.soap else WebhookType.WEBHOOK_TYPE_REST,
        url=receiver.url(path),
    )
    if plan.soap:  # the generic envelope: no WSDL, the event inside one body element
        webhook.soap.CopyFrom(SoapSettings(operation="NotifyTag", namespace=SOAP_NAMESPACE))
    spec = SubscriptionSpec(
        name=name,
        entity=plan.entity,
        triggers=[TriggerSpec(trigger=t) for t in plan.triggers],
        webhook=webhook,
        retry_policy=RetryPolicy(retries=RETRIES, interval_seconds=run.interval),
    )
    response = client.call("CreateSubscription", CreateSubscriptionRequest(subscription=spec))
    run.subscriptions[plan.key] = (response.subscription.id, name)
    # The signing secret comes only with the creation: the receiver verifies with it.
    receiver.set_secret(path, response.signing_secret)
    kind = "SOAP, generic envelope NotifyTag" if plan.soap else "REST, JSON"
    console.say(
        f"created {name!r}: {plan.entity} {', '.join(plan.triggers)} -> {receiver.url(path)}"
        f"\n  ({kind}; {RETRIES} retry after {run.interval} s)"
    )


def probe(client: Client, run: Run, console: Console) -> None:
    """A test event to the first subscription: the platform must reach the receiver.

    A platform running without the demo's allow-list refuses the loopback address
    (blocked_destination), one without the demo CA fails the handshake (tls): both are
    said as what to do, rather than as deliveries that never come."""
    subscription_id, name = run.subscriptions[PLANS[0].key]
    console.say(f"test event to {name!r} (`webhooks subscriptions test`):")
    with client.other("sender") as sender:
        attempt = sender.call(
            "SendTestEvent", SendTestEventRequest(subscription_id=subscription_id)
        ).attempt
    if attempt.outcome == AttemptOutcome.ATTEMPT_OUTCOME_SUCCEEDED:
        console.say(f"  delivered: {attempt.status_code} in {attempt.duration_ms} ms")
        return
    if attempt.failure_class in (
        FailureClass.FAILURE_CLASS_BLOCKED_DESTINATION,
        FailureClass.FAILURE_CLASS_TLS,
    ):
        reason = class_text(attempt.failure_class)
        ca_file = client.settings.data_dir / "demo" / "ca.pem"
        raise CliError(
            f"the running platform cannot deliver to the demo's receiver on loopback ({reason}):"
            f" restart it as `WEBHOOKS_OUTBOUND_ALLOW={LOOPBACK} WEBHOOKS_CA_BUNDLE={ca_file}"
            " webhooks up`, or stop it and let `webhooks demo` start its own"
        )
    raise CliError(
        f"the test event to the demo's receiver failed "
        f"({class_text(attempt.failure_class)}): {attempt.error_message}"
    )


def publish(client: Client, run: Run, samples: Sequence[tuple[str, str]]) -> list[str]:
    """The catalogue's sample events, with ids of this run; their ids."""
    events: list[PlatformEvent] = []
    for entity, trigger in samples:
        event_id = f"demo-{run.suffix}-{len(run.published) + 1}"
        event = sample_event(entity, trigger, event_id=event_id)
        event.ClearField("tenant")  # the router fills in the caller's organisation
        event.occurred_at.GetCurrentTime()
        events.append(event)
        run.published.append(event_id)
    with client.other("router") as router:
        response = router.call("PublishEvents", PublishEventsRequest(events=events))
    for result in response.results:
        if result.status == PUBLISH_STATUS_REJECTED:
            reason = f"{result.field}: {result.reason}"
            raise CliError(f"the router rejected {result.event_id}: {reason}")
    return [e.event_id for e in events]


def wait_until(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + VIEW_TIMEOUT_SECONDS
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise CliError(f"waited {VIEW_TIMEOUT_SECONDS:.0f} s for {what}")
        time.sleep(POLL_SECONDS)


def wait_for_failed(view: Client, subscription_id: str, event_id: str) -> str:
    """The delivery id of the event once the failures view has it as FAILED (its
    retries spent)."""
    request = ListFailedEventsRequest(
        filter=FailedEventFilter(
            subscription_ids=[subscription_id],
            states=[FailedEventState.FAILED_EVENT_STATE_FAILED],
        )
    )
    listed = wait_until(
        lambda: [e for e in view.call("ListFailedEvents", request).failed_events],
        lambda events: any(e.event_id == event_id for e in events),
        "the failed event in the failures service",
    )
    delivery_id: str = next(e.delivery_id for e in listed if e.event_id == event_id)
    return delivery_id


def delete_subscriptions(client: Client, run: Run, console: Console) -> None:
    """Best effort, also after an error or Ctrl-C: their receiver is gone with the demo."""
    deleted = 0
    for subscription_id, _ in run.subscriptions.values():
        try:
            client.call("DeleteSubscription", DeleteSubscriptionRequest(id=subscription_id))
            deleted += 1
        except CliError as err:
            console.say(f"could not delete demo subscription {subscription_id}: {err.message}")
    if deleted:
        plural = "s" if deleted != 1 else ""
        console.say(f"\ndeleted the demo's {deleted} subscription{plural} (its receiver is gone)")
