"""``webhooks demo``: the whole product in one command, for a newcomer to watch.

It uses the platform that answers at the configured addresses (with the data dir's
development token), or starts ``webhooks up`` itself as a child process and stops it at the
end (``--keep`` leaves it running). Then, step by step: a local HTTPS receiver under a
throwaway demo CA (``demo_receiver``); a REST and a SOAP subscription pointing at it; sample
events of several entities published to the router, each delivery shown as it arrives with
its signature checked; one endpoint made to fail until the event shows up as failed in the
failures service (shown as ``webhooks failures show`` shows it); the endpoint fixed, the
event redelivered and shown recovered. Names carry a run suffix (subscription names are
unique for ever), and the demo's subscriptions are deleted at the end: their receiver is
gone with the demo.

The sender refuses loopback destinations and trusts only known CAs, so the platform must
run with ``WEBHOOKS_OUTBOUND_ALLOW=127.0.0.0/8`` and ``WEBHOOKS_CA_BUNDLE=<demo CA>``. A
platform the demo starts gets both (``demo_platform``); one already running is probed with a
test event first, and when it refuses the receiver the demo says how to restart it instead of
failing later.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import TypeVar

from webhooks.v1.common_pb2 import (
    RetryPolicy,
    SoapSettings,
    TriggerSpec,
    Webhook,
    WebhookType,
)
from webhooks.v1.failures_pb2 import (
    FailedEventDetails,
    FailedEventFilter,
    FailedEventState,
    GetFailedEventRequest,
    ListFailedEventsRequest,
    RedeliverFailedEventsRequest,
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
from webhooks_cli import failures
from webhooks_cli.client import Client, connect, requested_tenant
from webhooks_cli.demo_platform import LOOPBACK, POLL_SECONDS, Platform, platform_for
from webhooks_cli.demo_receiver import Delivery, DemoPki, DemoReceiver, ensure_pki
from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.output import print_table
from webhooks_client.failure_text import HISTORY_HEADERS, class_text, history_row, state_text
from webhooks_config import Settings

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


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SIGTERM stops the demo as Ctrl-C does, so the clean-up (and the stop of an `up` it
    # started) runs instead of leaving the platform behind.
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.json:
        raise UsageError("demo: --json is not supported (the demo is meant to be watched)")
    if args.address:
        addresses = {**settings.addresses, "subscriptions": args.address}
        settings = replace(settings, addresses=addresses)
    console = Console()
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        pki = ensure_pki(settings.data_dir / "demo")
        console.step("The platform")
        with platform_for(args, settings, pki, console.say) as platform:
            tenant = requested_tenant(args.tenant, settings)
            address = platform.settings.address("subscriptions")
            with connect(
                platform.settings, address=address, token=platform.token, tenant=tenant
            ) as client:
                receiver = DemoReceiver(pki, console.delivery)
                receiver.start()
                run = Run(suffix=secrets.token_hex(3), interval=platform.min_interval)
                try:
                    demo_steps(client, receiver, run, pki, console)
                finally:
                    receiver.stop()
                    delete_subscriptions(client, run, console)
                summary(console, platform, receiver, run, time.monotonic() - started)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- the steps ----------------------------------------------------------------------------


def demo_steps(
    client: Client, receiver: DemoReceiver, run: Run, pki: DemoPki, console: Console
) -> None:
    show_receiver(receiver, pki, console)
    create_subscriptions(client, receiver, run, console)
    deliver_samples(client, receiver, run, console)
    delivery_id = fail_an_endpoint(client, receiver, run, console)
    fix_and_redeliver(client, receiver, run, delivery_id, console)


def show_receiver(receiver: DemoReceiver, pki: DemoPki, console: Console) -> None:
    console.step("A local HTTPS receiver")
    console.say(f"listening on https://127.0.0.1:{receiver.port} (loopback)")
    console.say(f"certificate from the throwaway demo CA {pki.ca_file}")


def create_subscriptions(
    client: Client, receiver: DemoReceiver, run: Run, console: Console
) -> None:
    console.step("Subscriptions")
    # The first one is probed with a test event before the others are made: a platform
    # that cannot reach the receiver is told at once, with nothing more to undo.
    first, *others = PLANS
    create_subscription(client, receiver, run, first, console)
    probe(client, run, console)
    for plan in others:
        create_subscription(client, receiver, run, plan, console)


def deliver_samples(client: Client, receiver: DemoReceiver, run: Run, console: Console) -> None:
    console.step("Sample events of several entities")
    published = publish(client, run, SAMPLES)
    console.say(f"published {len(published)} events: " + ", ".join(f"{e} {t}" for e, t in SAMPLES))
    console.say("deliveries as they arrive:")
    receiver.wait_for(
        lambda d: d.event_id in published and d.status == 204,
        len(published),
        DELIVERY_TIMEOUT_SECONDS,
        "sample events",
    )
    console.say(f"all {len(published)} delivered")


def fail_an_endpoint(client: Client, receiver: DemoReceiver, run: Run, console: Console) -> str:
    """The failing subscription's endpoint answers 503 until its event is listed as failed;
    the failed event's delivery id."""
    console.step("An endpoint fails")
    failing_id, failing_name = run.subscriptions[FAILING]
    receiver.set_failing(run.path(FAILING), True)
    console.say(f"the receiver now answers 503 at {run.path(FAILING)} ({failing_name})")
    (event_id,) = publish(client, run, [("Object", "OnNew")])
    console.say(
        f"published Object OnNew ({event_id}); the sender tries {RETRIES + 1} times, "
        f"{run.interval} s apart:"
    )
    receiver.wait_for(
        lambda d: d.event_id == event_id and d.status == 503,
        RETRIES + 1,
        run.interval * RETRIES + DELIVERY_TIMEOUT_SECONDS,
        "the failing event",
    )
    with client.other("failures") as view:
        delivery_id = wait_for_failed(view, failing_id, event_id)
    console.say(
        f"\nthe failures service lists it as failed (`webhooks failures show {delivery_id}`):"
    )
    console.say()
    with console.lock:
        failures.show(argparse.Namespace(id=delivery_id, json=False), client)
    return delivery_id


def fix_and_redeliver(
    client: Client, receiver: DemoReceiver, run: Run, delivery_id: str, console: Console
) -> None:
    console.step("Fix the endpoint and redeliver")
    receiver.set_failing(run.path(FAILING), False)
    console.say(f"the receiver answers 204 at {run.path(FAILING)} again")
    with client.other("failures") as view:
        response = view.call(
            "RedeliverFailedEvents", RedeliverFailedEventsRequest(delivery_id=delivery_id)
        )
        console.say(
            f"RedeliverFailedEvents (`webhooks failures retry {delivery_id}`): "
            f"sent again {response.redelivered} of {response.matched}"
        )
        receiver.wait_for(
            lambda d: d.webhook_id == delivery_id and d.status == 204,
            1,
            DELIVERY_TIMEOUT_SECONDS,
            "the redelivery",
        )
        details = wait_until(
            lambda: view.call("GetFailedEvent", GetFailedEventRequest(delivery_id=delivery_id)),
            lambda d: d.overview.state == FailedEventState.FAILED_EVENT_STATE_RECOVERED,
            "the failed event to show as recovered",
        )
    show_recovered(details, console)


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


def show_recovered(details: FailedEventDetails, console: Console) -> None:
    overview = details.overview
    console.say(f"\n{overview.delivery_id} is now {state_text(overview.state)}; its Trial History:")
    with console.lock:
        print_table(
            HISTORY_HEADERS,
            [history_row(r) for r in details.trial_history],
        )


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


def summary(
    console: Console, platform: Platform, receiver: DemoReceiver, run: Run, seconds: float
) -> None:
    got = receiver.deliveries
    kinds = {kind: sum(1 for d in got if d.kind == kind) for kind in ("JSON", "SOAP XML")}
    signed = sum(1 for d in got if d.signature == "ok")
    failed = sum(1 for d in got if d.status != 204)
    where = (
        "started by the demo"
        if platform.process is not None
        else f"already running at {platform.settings.address('subscriptions')}"
    )
    console.step("Summary", numbered=False)
    console.say(
        "\n".join(
            [
                f"  platform        {where}",
                f"  subscriptions   {len(run.subscriptions)} (REST and SOAP), demo-{run.suffix}",
                f"  events          {len(run.published)} published",
                f"  deliveries      {len(got)} received ({kinds['JSON']} JSON,"
                f" {kinds['SOAP XML']} SOAP XML), {signed} with a valid signature,"
                f" {failed} answered 503",
                "  failed event    listed, shown with its trial history, redelivered: recovered",
                f"  took            {seconds:.0f} s",
                "Next: `webhooks catalogue`, `webhooks subscriptions create --help`, "
                "`webhooks failures list`.",
            ]
        )
    )
