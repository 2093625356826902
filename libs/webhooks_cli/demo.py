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
import time
from dataclasses import replace
from types import FrameType

from webhooks.v1.failures_pb2 import (
    FailedEventDetails,
    FailedEventState,
    GetFailedEventRequest,
    RedeliverFailedEventsRequest,
)
from webhooks_cli import failures
from webhooks_cli.client import Client, connect, requested_tenant
from webhooks_cli.demo_calls import (
    DELIVERY_TIMEOUT_SECONDS,
    FAILING,
    PLANS,
    RETRIES,
    SAMPLES,
    Console,
    Run,
    create_subscription,
    delete_subscriptions,
    probe,
    publish,
    wait_for_failed,
    wait_until,
)
from webhooks_cli.demo_platform import Platform, platform_for
from webhooks_cli.demo_receiver import DemoPki, DemoReceiver, ensure_pki
from webhooks_cli.errors import UsageError
from webhooks_cli.output import print_table
from webhooks_client.failure_text import HISTORY_HEADERS, state_text
from webhooks_config import Settings


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


def show_recovered(details: FailedEventDetails, console: Console) -> None:
    overview = details.overview
    console.say(f"\n{overview.delivery_id} is now {state_text(overview.state)}; its Trial History:")
    with console.lock:
        print_table(HISTORY_HEADERS, [failures.attempt_row(r) for r in details.trial_history])


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
