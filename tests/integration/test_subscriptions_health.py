"""Endpoint health in the subscriptions service, against a real nats-server: a DISABLED
record written as a sender writes it disables the webhook (history, reason, Get/List), the
owner re-enables it and the record goes; other states show in Get/List; a client certificate
near its expiry raises OnCertificateExpiring once, across a restart of the service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc.aio
import nats
import pytest
from google.protobuf.json_format import MessageToDict
from nats.aio.client import Client as NATS
from nats.js.errors import KeyNotFoundError

from tests.integration.conftest import (
    START_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    ServiceFactory,
    SubscriptionsService,
    rest_spec,
)
from tests.support.certs import issue_client_certificate, make_ca
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2, subscriptions_pb2_grpc
from webhooks_catalogue import ON_CERTIFICATE_EXPIRING, WEBHOOK_ENTITY
from webhooks_health import HEALTH_BUCKET, Change, HealthStore, health_key
from webhooks_messaging import events_subject
from webhooks_subscriptions import service as subscriptions_service

HS = common_pb2.HealthState
GONE = "the endpoint answered 410 Gone"


@pytest.fixture
async def health_client(
    subscriptions_service: SubscriptionsService,
) -> AsyncIterator[tuple[SubscriptionsService, NATS, HealthStore]]:
    """The service, and a client of its broker holding the health store as a sender does."""
    client = await nats.connect(subscriptions_service.nats.url)
    store = await HealthStore.open(client.jetstream(), replicas=1)
    try:
        yield subscriptions_service, client, store
    finally:
        await client.close()


def record_of(
    tenant: str,
    subscription_id: str,
    state: common_pb2.HealthState,
    reason: str = "",
    failures: int = 0,
) -> messages_pb2.EndpointHealth:
    now = datetime.now(UTC)
    record = messages_pb2.EndpointHealth(
        tenant=tenant,
        subscription_id=subscription_id,
        health=common_pb2.Health(state=state, consecutive_failures=failures, reason=reason),
        streak_attempts=failures,
    )
    record.health.failing_since.FromDatetime(now - timedelta(minutes=5))
    record.health.last_failure_at.FromDatetime(now)
    if state == HS.HEALTH_STATE_DISABLED:
        record.disabled_at.FromDatetime(now)
    return record


async def write(store: HealthStore, record: messages_pb2.EndpointHealth) -> None:
    """Stores ``record`` with the compare-and-set a sender uses."""
    change = Change(write=True, record=record, announcements=(), transitions=())
    applied = await store.change(record.tenant, record.subscription_id, lambda _current: change)
    assert applied.write, "the health record was not written"


async def set_active(
    service: SubscriptionsService, ident: str, active: bool
) -> subscriptions_pb2.Subscription:
    reply: subscriptions_pb2.Subscription = await service.stub.SetSubscriptionActive(
        subscriptions_pb2.SetSubscriptionActiveRequest(id=ident, active=active),
        metadata=service.acme,
    )
    return reply


async def listed(service: SubscriptionsService, ident: str) -> subscriptions_pb2.Subscription:
    (found,) = [s for s in await service.list_all() if s.id == ident]
    return found


async def test_a_disabled_record_disables_the_webhook_until_it_is_enabled_again(
    health_client: tuple[SubscriptionsService, NATS, HealthStore],
) -> None:
    service, client, store = health_client
    ident = (await service.create(rest_spec("Orders"))).subscription.id
    other = (await service.create(rest_spec("Invoices"))).subscription.id

    await write(store, record_of("acme", ident, HS.HEALTH_STATE_DISABLED, GONE, failures=1))
    got = await eventually(
        lambda: service.get(ident), lambda s: not s.active, what="the webhook disabled"
    )
    assert (got.health.state, got.health.reason) == (HS.HEALTH_STATE_DISABLED, GONE)
    entry = (await service.history(ident)).entries[-1]
    assert (entry.event_type, entry.actor) == ("DisabledByPlatform", "platform")
    assert MessageToDict(entry.changes) == {"reason": GONE}
    row = await eventually(
        lambda: listed(service, ident), lambda s: not s.active, what="the listing"
    )
    assert (row.health.state, row.health.reason) == (HS.HEALTH_STATE_DISABLED, GONE)
    assert (await service.get(other)).health.state == HS.HEALTH_STATE_HEALTHY

    enabled = await set_active(service, ident, True)
    assert enabled.active and enabled.health.state == HS.HEALTH_STATE_HEALTHY
    assert (await service.history(ident)).entries[-1].event_type == "Activated"
    kv = await client.jetstream().key_value(HEALTH_BUCKET)
    with pytest.raises(KeyNotFoundError):
        await kv.get(health_key("acme", ident))
    row = await eventually(lambda: listed(service, ident), lambda s: s.active, what="listed")
    assert row.health.state == HS.HEALTH_STATE_HEALTHY and row.health.reason == ""

    # A new verdict, after the re-activation, disables it again.
    await write(store, record_of("acme", ident, HS.HEALTH_STATE_DISABLED, GONE, failures=1))
    await eventually(lambda: service.get(ident), lambda s: not s.active, what="disabled again")


async def test_a_verdict_older_than_the_last_activation_is_dropped(
    health_client: tuple[SubscriptionsService, NATS, HealthStore],
) -> None:
    """A stale DISABLED record (its delete was lost) neither disables the re-enabled
    webhook nor stays: the service deletes it."""
    service, client, store = health_client
    ident = (await service.create(rest_spec("Orders"))).subscription.id
    stale = record_of("acme", ident, HS.HEALTH_STATE_DISABLED, GONE, failures=1)
    stale.disabled_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    await write(store, stale)
    kv = await client.jetstream().key_value(HEALTH_BUCKET)

    async def present() -> bool:
        try:
            await kv.get(health_key("acme", ident))
        except KeyNotFoundError:
            return False
        return True

    await eventually(present, lambda there: not there, what="the stale record deleted")
    got = await service.get(ident)
    assert got.active and got.health.state == HS.HEALTH_STATE_HEALTHY
    assert [e.event_type for e in (await service.history(ident)).entries] == ["Created"]


async def test_other_states_show_in_get_and_list(
    health_client: tuple[SubscriptionsService, NATS, HealthStore],
) -> None:
    service, _client, store = health_client
    ident = (await service.create(rest_spec("Orders"))).subscription.id
    failing = record_of("acme", ident, HS.HEALTH_STATE_FAILING, "HTTP 500", failures=6)
    failing.failing_announced = True
    await write(store, failing)
    got = await eventually(
        lambda: service.get(ident),
        lambda s: s.health.state == HS.HEALTH_STATE_FAILING,
        what="failing shown",
    )
    assert got.active and got.health.consecutive_failures == 6
    assert got.health.failing_since.ToDatetime(tzinfo=UTC) < datetime.now(UTC)
    row = await listed(service, ident)
    assert (row.health.state, row.health.consecutive_failures) == (HS.HEALTH_STATE_FAILING, 6)

    # A new endpoint is a new start: the record goes.
    update = subscriptions_pb2.UpdateSubscriptionRequest(
        id=ident, subscription=rest_spec("Orders", "https://elsewhere.example.com/in")
    )
    update.update_mask.paths.append("webhook")
    changed = await service.stub.UpdateSubscription(update, metadata=service.acme)
    assert changed.health.state == HS.HEALTH_STATE_HEALTHY


async def restart(service: SubscriptionsService) -> None:
    """Stops the service and runs it again on the same store and broker."""
    service.stop.set()
    assert service.task is not None
    await asyncio.wait_for(service.task, STOP_TIMEOUT_SECONDS)
    await service.channel.close(None)
    loop = asyncio.get_running_loop()
    bound: asyncio.Future[int] = loop.create_future()
    service.stop = asyncio.Event()
    service.task = asyncio.create_task(
        subscriptions_service.run(service.settings, ready=bound.set_result, stop=service.stop)
    )
    port = await asyncio.wait_for(bound, START_TIMEOUT_SECONDS)
    service.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    service.stub = subscriptions_pb2_grpc.SubscriptionServiceStub(service.channel)


async def upload_expiring(service: SubscriptionsService, name: str, days: int) -> Any:
    issued = issue_client_certificate(
        make_ca(), name, valid_until=datetime.now(UTC) + timedelta(days=days)
    )
    return await service.stub.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name=name,
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=service.acme,
    )


async def test_a_certificate_expiring_in_10_days_is_announced_once(
    start_subscriptions: ServiceFactory,
) -> None:
    service = await start_subscriptions(WEBHOOKS_HEALTH_CERTIFICATE_CHECK_SECONDS="1")
    client = await nats.connect(service.nats.url)
    seen: list[messages_pb2.PlatformEvent] = []

    async def collect(msg: Any) -> None:
        seen.append(messages_pb2.PlatformEvent.FromString(msg.data))

    subject = events_subject("acme", WEBHOOK_ENTITY, ON_CERTIFICATE_EXPIRING)
    try:
        # A plain subscription sees every publish, duplicates the stream would drop included.
        await client.subscribe(subject, cb=collect)
        soon = await upload_expiring(service, "orders-client", days=10)
        far = await upload_expiring(service, "far-client", days=90)
        await service.create(rest_spec("Far", certificate_id=far.id))
        spec = rest_spec("Orders", certificate_id=soon.id)
        ident = (await service.create(spec)).subscription.id

        def about(certificate_id: str) -> list[dict[str, Any]]:
            data = [json.loads(event.data_json) for event in seen]
            return [d for d in data if d["CertificateId"] == certificate_id]

        async def first() -> list[dict[str, Any]]:
            return about(soon.id)

        (data,) = await eventually(first, lambda found: len(found) >= 1, what="announced")
        event = seen[0]
        assert (event.tenant, event.entity, event.trigger) == (
            "acme",
            WEBHOOK_ENTITY,
            ON_CERTIFICATE_EXPIRING,
        )
        stamp = int(soon.not_after.ToDatetime(tzinfo=UTC).timestamp())
        assert event.event_id == f"webhook:{ident}:certificate-expiring:{soon.id}:{stamp}"
        assert (data["SubscriptionId"], data["SubscriptionName"]) == (ident, "Orders")
        assert (data["CertificateName"], data["Entity"]) == ("orders-client", "Object")
        not_after = datetime.fromisoformat(data["CertificateNotAfter"].replace("Z", "+00:00"))
        assert int(not_after.timestamp()) == stamp

        await restart(service)
        # A round of the restarted service has run once a webhook created after it is told.
        later = await upload_expiring(service, "invoices-client", days=3)
        await service.create(rest_spec("Invoices", certificate_id=later.id))

        async def second() -> list[dict[str, Any]]:
            return about(later.id)

        await eventually(second, lambda found: len(found) >= 1, what="the later one told")
        assert len(about(soon.id)) == 1, "announced again after the restart"
        assert {d["CertificateName"] for d in map(json.loads, (e.data_json for e in seen))} == {
            "orders-client",
            "invoices-client",
        }
    finally:
        await client.close()


async def test_the_watch_outlives_a_broker_restart(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    ident = (await service.create(rest_spec("Orders"))).subscription.id
    await asyncio.to_thread(service.nats.stop)
    await asyncio.to_thread(service.nats.start)
    client = await nats.connect(service.nats.url)
    try:
        store = await HealthStore.open(client.jetstream(), replicas=1)
        await write(store, record_of("acme", ident, HS.HEALTH_STATE_DISABLED, GONE, failures=1))
        got = await eventually(
            lambda: service.get(ident), lambda s: not s.active, what="disabled after the restart"
        )
        assert got.health.reason == GONE
    finally:
        await client.close()


async def test_a_record_that_does_not_decode_is_passed_over(
    health_client: tuple[SubscriptionsService, NATS, HealthStore],
) -> None:
    service, client, store = health_client
    broken = (await service.create(rest_spec("Broken"))).subscription.id
    ident = (await service.create(rest_spec("Orders"))).subscription.id
    kv = await client.jetstream().key_value(HEALTH_BUCKET)
    await kv.put(health_key("acme", broken), b"\xff\x00 not a record")
    await write(store, record_of("acme", ident, HS.HEALTH_STATE_DISABLED, GONE, failures=1))
    await eventually(lambda: service.get(ident), lambda s: not s.active, what="disabled")
    shown = await service.get(broken)
    assert shown.active and shown.health.state == HS.HEALTH_STATE_HEALTHY
