"""Operator events end to end (issue 15): the platform's own events about webhooks, raised
by the sender (OnFailing, OnRetriesExhausted, OnRecovered) and by the subscriptions service
(OnCertificateExpiring), reach an organisation's webhook subscribed to the ``Webhook``
entity through the same router and sender as any event, signed like any delivery, rate
limited, and never in a loop.

The whole platform runs as processes (``tests.support.platform_stack``) with small health
settings: a webhook is failing after 3 failed attempts in a row; the breaker opens at 10
attempts of which 70 % failed, for a cool-down of 1 s (2 s after a failed probe);
certificates are looked at every second. Every test has its own tenant and receiver
paths; deliveries are counted until they stop changing (``settled``), so a loop (a count
that keeps climbing) fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.certs import issue_client_certificate, make_ca
from tests.support.operator_events import (
    DATA_KEYS,
    ON_CERTIFICATE_EXPIRING,
    ON_CIRCUIT_OPENED,
    ON_FAILING,
    ON_RECOVERED,
    ON_RETRIES_EXHAUSTED,
    WEBHOOK,
    OperatorEvent,
    of,
    operator_spec,
    received_operator_events,
    settled,
)
from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Platform,
    new_tenant,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2, router_pb2, subscriptions_pb2

FAILING_AFTER = 3
BREAKER_MIN_REQUESTS = 10
HEALTH_ENV = {
    "WEBHOOKS_HEALTH_FAILING_AFTER": str(FAILING_AFTER),
    # Ten attempts decide the breaker: more than any other test makes to one webhook.
    "WEBHOOKS_HEALTH_BREAKER_MIN_REQUESTS": str(BREAKER_MIN_REQUESTS),
    "WEBHOOKS_HEALTH_BREAKER_COOLDOWN_SECONDS": "1",
    "WEBHOOKS_HEALTH_CERTIFICATE_CHECK_SECONDS": "1",
}
HEALTHY = common_pb2.HEALTH_STATE_HEALTHY
FAILING = common_pb2.HEALTH_STATE_FAILING
CIRCUIT_OPEN = common_pb2.HEALTH_STATE_CIRCUIT_OPEN
REJECTED = router_pb2.PUBLISH_STATUS_REJECTED


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    tmp = tmp_path_factory.mktemp("operator-events")
    async with running_platform(tmp, failures=False, env=HEALTH_ENV) as running:
        yield running


@pytest.fixture
async def receiver(stack: Platform) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


async def publish_new_objects(stack: Platform, tenant: str, count: int) -> set[str]:
    """``count`` Object OnNew events of ``tenant``; their ids."""
    events = [platform_event(tenant, "Object", "OnNew") for _ in range(count)]
    await stack.publish(events)
    return {e.event_id for e in events}


async def health_of(stack: Platform, tenant: str, subscription_id: str) -> common_pb2.Health:
    got: subscriptions_pb2.Subscription = await stack.subs.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=subscription_id),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    return got.health


def epoch_ms(rfc3339: str) -> int:
    return round(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def assert_about(
    event: OperatorEvent, tenant: str, webhook: subscriptions_pb2.Subscription, url: str
) -> None:
    """The envelope and the data name the webhook as the contract says."""
    assert event.envelope["Brand"] == tenant
    assert set(event.data) >= DATA_KEYS, sorted(DATA_KEYS - set(event.data))
    assert event.data["SubscriptionId"] == webhook.id
    assert event.data["SubscriptionName"] == webhook.name
    assert event.data["Entity"] == webhook.entity
    assert event.data["Url"] == url  # shown: no query string
    assert isinstance(event.data["ConsecutiveFailures"], int)


async def test_a_failing_webhook_is_announced_signed_once_then_its_recovery(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("ops")
    ops_created = await stack.create_subscription(
        tenant, operator_spec("ops desk", receiver.url("/ops"))
    )
    secret = ops_created.signing_secret
    receiver.reply("/orders", Reply(500, b"order store down"))
    orders = (
        await stack.create_subscription(
            tenant, rest("orders", receiver.url("/orders") + "?key=s3cret-query")
        )
    ).subscription
    shown_url = receiver.url("/orders")

    def events() -> list[OperatorEvent]:
        return received_operator_events(receiver, "/ops", secret)

    async def events_now() -> list[OperatorEvent]:
        return events()

    # Five deliveries fail, each its last attempt (no retries): one OnRetriesExhausted
    # (the hour's notice), and OnFailing once the third in a row has failed.
    published = await publish_new_objects(stack, tenant, 5)
    await receiver.wait_for(5, "/orders", timeout=60)
    await eventually(
        events_now,
        lambda found: (
            bool(of(found, ON_FAILING, orders.id))
            and bool(of(found, ON_RETRIES_EXHAUSTED, orders.id))
        ),
        timeout=60,
        what="OnFailing and OnRetriesExhausted about the failing webhook",
    )
    await settled(lambda: len(receiver.at("/ops")), what="operator events")
    (failing,) = of(events(), ON_FAILING, orders.id)
    (exhausted,) = of(events(), ON_RETRIES_EXHAUSTED, orders.id)
    assert len(events()) == 2, [(e.trigger, e.about) for e in events()]

    for event in (failing, exhausted):
        assert_about(event, tenant, orders, shown_url)
        assert event.envelope["SubscriptionName"] == "ops desk"
        assert "s3cret-query" not in event.received.body.decode()
    assert failing.data["State"] == "failing"
    assert failing.data["ConsecutiveFailures"] >= FAILING_AFTER
    assert failing.data["LastError"]
    failing_prefix = f"webhook:{orders.id}:failing:"
    assert failing.event_id.startswith(failing_prefix), failing.event_id
    streak_ms = failing.event_id.removeprefix(failing_prefix)
    # The id names the streak by its first failure (epoch ms); the data shows that time.
    assert abs(int(streak_ms) - epoch_ms(failing.data["FailingSince"])) < 1000, failing.data
    attempted = {r.headers["webhook-id"] for r in receiver.at("/orders")}
    assert exhausted.data["DeliveryId"] in attempted
    assert exhausted.data["EventId"] in published
    assert exhausted.event_id == f"webhook:{orders.id}:exhausted:{exhausted.data['DeliveryId']}"

    # The endpoint is back: the next delivery succeeds and the recovery is announced,
    # named after the streak it ends.
    receiver.reply("/orders", Reply(204))
    await publish_new_objects(stack, tenant, 1)
    await eventually(
        events_now,
        lambda found: bool(of(found, ON_RECOVERED, orders.id)),
        timeout=60,
        what="OnRecovered about the webhook",
    )
    (recovered,) = of(events(), ON_RECOVERED, orders.id)
    assert_about(recovered, tenant, orders, shown_url)
    assert recovered.data["State"] == "healthy"
    assert recovered.event_id == f"webhook:{orders.id}:recovered:{streak_ms}"
    await eventually(
        lambda: health_of(stack, tenant, orders.id),
        lambda health: health.state == HEALTHY,
        what="the recovered webhook healthy in GetSubscription",
    )

    # It fails again within the hour: two more deliveries exhaust their retries, but the
    # hour's OnRetriesExhausted was raised (and two in a row are not failing yet).
    receiver.reply("/orders", Reply(500, b"down again"))
    await publish_new_objects(stack, tenant, 2)
    await receiver.wait_for(8, "/orders", timeout=60)
    await stack.wait_idle(within=60)
    await settled(lambda: len(receiver.at("/ops")), what="operator events")
    triggers = sorted(e.trigger for e in events())
    assert triggers == sorted([ON_FAILING, ON_RETRIES_EXHAUSTED, ON_RECOVERED]), triggers


async def test_an_opened_circuit_is_announced_once_and_its_probe_recovers_it(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("circuit")
    ops = await stack.create_subscription(tenant, operator_spec("ops", receiver.url("/ops")))
    receiver.reply("/stock", Reply(503 - 3, b"stock down"))  # 500: a failure, no throttle
    stock = (
        await stack.create_subscription(tenant, rest("stock", receiver.url("/stock")))
    ).subscription

    async def events_now() -> list[OperatorEvent]:
        return received_operator_events(receiver, "/ops", ops.signing_secret)

    # Ten failures in the window open the circuit.
    await publish_new_objects(stack, tenant, BREAKER_MIN_REQUESTS)
    await receiver.wait_for(BREAKER_MIN_REQUESTS, "/stock", timeout=60)
    opened = await eventually(
        lambda: health_of(stack, tenant, stock.id),
        lambda health: health.state == CIRCUIT_OPEN,
        what="the circuit open in GetSubscription",
    )
    assert (
        opened.reason
        == f"{BREAKER_MIN_REQUESTS} of {BREAKER_MIN_REQUESTS} attempts failed in 5 minutes"
    )

    # Two more deliveries wait; after the cool-down one is the probe: it fails and the
    # circuit opens again (not announced again); then the endpoint is back and the next
    # probe closes it. Each job that waited was sent once, as its first attempt (waiting
    # spends no retry).
    waiting = await publish_new_objects(stack, tenant, 2)
    await receiver.wait_for(BREAKER_MIN_REQUESTS + 1, "/stock", timeout=60)
    receiver.reply("/stock", Reply(204))
    await eventually(
        events_now,
        lambda found: bool(of(found, ON_RECOVERED, stock.id)),
        timeout=60,
        what="OnRecovered after the probe",
    )
    await receiver.wait_for(BREAKER_MIN_REQUESTS + 2, "/stock", timeout=60)
    await stack.wait_idle(within=60, scheduled=True)
    await settled(lambda: len(receiver.at("/ops")), what="operator events")
    found = await events_now()
    assert sorted(e.trigger for e in found) == sorted(
        [ON_FAILING, ON_RETRIES_EXHAUSTED, ON_CIRCUIT_OPENED, ON_RECOVERED]
    ), [(e.trigger, e.data["State"]) for e in found]
    (circuit,) = of(found, ON_CIRCUIT_OPENED, stock.id)
    assert (circuit.data["State"], circuit.data["Reason"]) == ("circuit_open", opened.reason)
    assert circuit.event_id.startswith(f"webhook:{stock.id}:circuit-opened:"), circuit.event_id
    probes = receiver.at("/stock")[BREAKER_MIN_REQUESTS:]
    assert len(probes) == 2, [r.headers["webhook-id"] for r in probes]
    assert {json.loads(r.body)["Event"]["EventId"] for r in probes} == waiting
    assert [r.headers["webhook-attempt"] for r in probes] == ["1", "1"]
    assert (await health_of(stack, tenant, stock.id)).state == HEALTHY


async def test_a_failing_operator_webhook_is_never_announced_and_nothing_loops(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("loop")
    watch_secret = (
        await stack.create_subscription(tenant, operator_spec("watch", receiver.url("/watch")))
    ).signing_secret
    receiver.reply("/broken-ops", Reply(500, b"ops inbox broken"))
    broken_created = await stack.create_subscription(
        tenant, operator_spec("broken ops", receiver.url("/broken-ops"))
    )
    broken, broken_secret = broken_created.subscription, broken_created.signing_secret
    failing = []
    for index in range(3):
        receiver.reply(f"/shop-{index}", Reply(500, b"shop down"))
        created = await stack.create_subscription(
            tenant, rest(f"shop {index}", receiver.url(f"/shop-{index}"))
        )
        failing.append(created.subscription.id)

    # Three failing webhooks, three failed deliveries each: two operator events about each
    # (OnFailing, OnRetriesExhausted), six in all, to both operator webhooks. The broken
    # one fails all six: its health counts them, but it is never announced (a Webhook
    # event's attempt announces nothing), so the chain stops there.
    await publish_new_objects(stack, tenant, FAILING_AFTER)
    await receiver.wait_for(2 * len(failing), "/watch", timeout=90)
    total = await settled(
        lambda: len(receiver.at("/watch")) + len(receiver.at("/broken-ops")),
        what="operator events",
    )
    watched = received_operator_events(receiver, "/watch", watch_secret)
    to_broken = received_operator_events(receiver, "/broken-ops", broken_secret)
    assert sorted((e.trigger, e.about) for e in watched) == sorted(
        (trigger, about) for about in failing for trigger in (ON_FAILING, ON_RETRIES_EXHAUSTED)
    )
    assert {e.event_id for e in to_broken} == {e.event_id for e in watched}
    assert total == len(watched) + len(to_broken) == 4 * len(failing)
    assert not [e for e in watched + to_broken if e.about == broken.id]

    # Its own failures still count for its health (only the announcing is left out).
    health = await eventually(
        lambda: health_of(stack, tenant, broken.id),
        lambda health: health.state == FAILING,
        what="the broken operator webhook failing in GetSubscription",
    )
    assert health.consecutive_failures >= FAILING_AFTER, health


async def test_an_expiring_certificate_is_announced_once_and_never_to_its_own_webhook(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("cert")
    issued = issue_client_certificate(
        make_ca("Ops client CA"),
        "ops-client",
        valid_until=datetime.now(UTC) + timedelta(days=10),
    )
    certificate = await stack.subs.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="ops client",
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    watch_secret = (
        await stack.create_subscription(
            tenant, operator_spec("watch", receiver.url("/watch"), [ON_CERTIFICATE_EXPIRING])
        )
    ).signing_secret
    # A webhook with the expiring certificate, itself subscribed to the event it causes:
    # the router never delivers an event about a webhook to that webhook.
    itself = (
        await stack.create_subscription(
            tenant,
            operator_spec(
                "self-aware",
                receiver.url("/itself"),
                [ON_CERTIFICATE_EXPIRING],
                certificate_id=certificate.id,
            ),
        )
    ).subscription

    await receiver.wait_for(1, "/watch", timeout=60)
    # Checked every second: several checks pass while the count stays at one.
    await settled(lambda: len(receiver.at("/watch")), quiet=5.0, what="certificate notices")
    (event,) = received_operator_events(receiver, "/watch", watch_secret)
    assert (event.trigger, event.about) == (ON_CERTIFICATE_EXPIRING, itself.id)
    assert event.data["CertificateId"] == certificate.id
    assert event.data["CertificateName"] == "ops client"
    not_after = certificate.not_after.ToDatetime(tzinfo=UTC)
    assert datetime.fromisoformat(event.data["CertificateNotAfter"].replace("Z", "+00:00")) == (
        not_after
    )
    assert event.event_id == (
        f"webhook:{itself.id}:certificate-expiring:{certificate.id}:{int(not_after.timestamp())}"
    )
    await stack.wait_idle(within=60)
    assert receiver.at("/itself") == []


async def test_a_webhook_event_is_refused_by_publish_events_naming_the_entity(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("forge")
    await stack.create_subscription(tenant, operator_spec("watch", receiver.url("/watch")))
    data: dict[str, object] = dict.fromkeys(DATA_KEYS, "")
    data |= {"SubscriptionId": "sub-forged", "State": "failing", "ConsecutiveFailures": 9}
    forged = messages_pb2.PlatformEvent(
        event_id=f"forged-{uuid.uuid4().hex}",
        tenant=tenant,
        entity=WEBHOOK,
        trigger=ON_FAILING,
        data_json=json.dumps(data).encode(),
    )
    forged.occurred_at.FromDatetime(datetime.now(UTC))
    (result,) = await stack.publish([forged], require_accepted=False)
    assert (result.event_id, result.status, result.field) == (forged.event_id, REJECTED, "entity")
    assert "platform" in result.reason, result.reason
    await stack.wait_idle(within=60)
    assert receiver.at("/watch") == []
