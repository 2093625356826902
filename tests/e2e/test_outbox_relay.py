"""The outbox relay of the subscriptions service, run for real: ``python -m webhooks_cli serve
subscriptions`` as a separate process, killed with SIGKILL at the worst moments, against a
NATS server of its own (these tests stop it) and on SQLite and PostgreSQL.

What every test checks on the SUBSCRIPTIONS stream (``assert_exactly_once_in_order``): each
domain event the event store holds (as the history RPC returns them) is there exactly once,
in notification order, with ``Nats-Msg-Id`` "subscriptions:<notification id>".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
import grpc.aio
import nats
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from nats.js.errors import NotFoundError

from tests.support import NatsServer
from tests.support.service_process import ServiceProcess
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2, subscriptions_pb2_grpc
from webhooks_secrets import SecretBox, new_key

STREAM = "SUBSCRIPTIONS"
TOKEN = "relay-test-platform-" + uuid.uuid4().hex
TENANT = "relay-tenant"
OTHER_TENANT = "relay-other"
PASSWORD = "relay-basic-pw-" + uuid.uuid4().hex
CATCH_UP_TIMEOUT = 30.0
RPC_TIMEOUT = 15.0
POLL_MS = 200


# ---- the service under test, as a process


class Service(ServiceProcess):
    """The subscriptions service as a process."""

    async def stop(self, *, require_clean_exit: bool = True) -> None:
        await super().stop(require_clean_exit=require_clean_exit)

    def client(self, tenant: str = TENANT) -> Client:
        assert self.channel is not None
        return Client(subscriptions_pb2_grpc.SubscriptionServiceStub(self.channel), tenant)


@dataclass
class Client:
    """A caller acting for one tenant with the platform token."""

    stub: subscriptions_pb2_grpc.SubscriptionServiceStub
    tenant: str
    trace: dict[str, str] = field(default_factory=dict)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("authorization", f"Bearer {TOKEN}"),
            ("x-webhooks-tenant", self.tenant),
            *self.trace.items(),
        )

    async def create(
        self, name: str | None = None, password: str = PASSWORD
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        request = subscriptions_pb2.CreateSubscriptionRequest(subscription=spec(name, password))
        response: subscriptions_pb2.CreateSubscriptionResponse = await self.stub.CreateSubscription(
            request, metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return response

    async def update_url(self, subscription_id: str, url: str) -> subscriptions_pb2.Subscription:
        request = subscriptions_pb2.UpdateSubscriptionRequest(
            id=subscription_id,
            subscription=subscriptions_pb2.SubscriptionSpec(
                webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST, url=url)
            ),
            update_mask=FieldMask(paths=["webhook"]),
        )
        response: subscriptions_pb2.Subscription = await self.stub.UpdateSubscription(
            request, metadata=self.metadata, timeout=RPC_TIMEOUT
        )
        return response

    async def set_active(self, subscription_id: str, active: bool) -> None:
        await self.stub.SetSubscriptionActive(
            subscriptions_pb2.SetSubscriptionActiveRequest(id=subscription_id, active=active),
            metadata=self.metadata,
            timeout=RPC_TIMEOUT,
        )

    async def delete(self, subscription_id: str) -> None:
        await self.stub.DeleteSubscription(
            subscriptions_pb2.DeleteSubscriptionRequest(id=subscription_id),
            metadata=self.metadata,
            timeout=RPC_TIMEOUT,
        )

    async def get(self, subscription_id: str) -> subscriptions_pb2.Subscription:
        response: subscriptions_pb2.Subscription = await self.stub.GetSubscription(
            subscriptions_pb2.GetSubscriptionRequest(id=subscription_id),
            metadata=self.metadata,
            timeout=RPC_TIMEOUT,
        )
        return response

    async def history(
        self, subscription_id: str
    ) -> list[subscriptions_pb2.SubscriptionHistoryEntry]:
        response = await self.stub.GetSubscriptionHistory(
            subscriptions_pb2.GetSubscriptionHistoryRequest(id=subscription_id),
            metadata=self.metadata,
            timeout=RPC_TIMEOUT,
        )
        return list(response.entries)

    async def list_ids(self) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            response = await self.stub.ListSubscriptions(
                subscriptions_pb2.ListSubscriptionsRequest(page_size=1000, page_token=token),
                metadata=self.metadata,
                timeout=RPC_TIMEOUT,
            )
            ids += [subscription.id for subscription in response.subscriptions]
            token = response.next_page_token
            if not token:
                return ids


def spec(name: str | None = None, password: str = PASSWORD) -> subscriptions_pb2.SubscriptionSpec:
    return subscriptions_pb2.SubscriptionSpec(
        name=name or f"relay {uuid.uuid4().hex[:12]}",
        entity="Object",
        triggers=[
            common_pb2.TriggerSpec(trigger="OnNewActivity", activity_types=[1]),
            common_pb2.TriggerSpec(trigger="OnNew", channels=[4]),
        ],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url="https://example.com/hooks/relay"
        ),
        authentication=common_pb2.Authentication(
            basic=common_pb2.BasicAuth(username="relay-user", password=password)
        ),
        retry_policy=common_pb2.RetryPolicy(retries=2, interval_seconds=600),
    )


# ---- the stream, read back


@dataclass(frozen=True)
class Published:
    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes
    event: messages_pb2.SubscriptionDomainEvent


async def stream_count(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return int(info.state.messages)
    except NotFoundError:
        return 0
    finally:
        await nc.close()


async def read_stream(nats_url: str) -> list[Published]:
    """Every message of SUBSCRIPTIONS, by stream sequence."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(STREAM)
        except NotFoundError:
            return []
        published = []
        if info.state.messages == 0:
            return []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(STREAM, seq=seq)
            published.append(
                Published(
                    seq=seq,
                    subject=message.subject or "",
                    headers=dict(message.headers or {}),
                    data=message.data or b"",
                    event=messages_pb2.SubscriptionDomainEvent.FromString(message.data or b""),
                )
            )
        return published
    finally:
        await nc.close()


async def stored_events(
    clients: list[Client], ids: list[str] | None = None
) -> set[tuple[str, int]]:
    """(subscription id, version) of every domain event in the event store, by history RPC:
    of the given subscriptions, or of every one each client's tenant lists."""
    expected: set[tuple[str, int]] = set()
    for client in clients:
        for subscription_id in ids if ids is not None else await client.list_ids():
            with contextlib.suppress(grpc.aio.AioRpcError):  # another tenant's id
                for entry in await client.history(subscription_id):
                    expected.add((subscription_id, entry.version))
    return expected


async def wait_for_stream(nats_url: str, count: int, service: Service | None = None) -> None:
    """Until the stream holds ``count`` messages; fails at once when it holds more."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    seen = -1
    while time.monotonic() < deadline:
        seen = await stream_count(nats_url)
        assert seen <= count, f"{seen} messages on {STREAM}, more than the {count} stored events"
        if seen == count:
            return
        await asyncio.sleep(0.1)
    tail = service.log_tail() if service is not None else ""
    pytest.fail(f"the relay published {seen} of {count} events in {CATCH_UP_TIMEOUT} s\n{tail}")


def assert_exactly_once_in_order(
    published: list[Published], expected: set[tuple[str, int]]
) -> None:
    notification_ids = [p.event.notification_id for p in published]
    assert notification_ids == sorted(set(notification_ids)), (
        f"notification ids not strictly increasing: {notification_ids}"
    )
    for p in published:
        assert p.headers.get("Nats-Msg-Id") == f"subscriptions:{p.event.notification_id}", p
        assert p.event.HasField("subscription"), p
        state = p.event.subscription
        assert p.subject == f"subscriptions.{state.tenant}.subscription.{state.id}"
    pairs = [(p.event.subscription.id, p.event.subscription.version) for p in published]
    duplicates = sorted({pair for pair in pairs if pairs.count(pair) > 1})
    assert not duplicates, f"published more than once: {duplicates}"
    assert set(pairs) == expected, (
        f"missing from the stream: {sorted(expected - set(pairs))}; "
        f"not in the event store: {sorted(set(pairs) - expected)}"
    )
    # In order per subscription too: versions 1, 2, 3, ... as they were stored.
    versions: dict[str, list[int]] = {}
    for subscription_id, version in pairs:
        versions.setdefault(subscription_id, []).append(version)
    for subscription_id, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{subscription_id}: versions {seen}"


async def check_stream(
    nats_url: str, service: Service, clients: list[Client], ids: list[str] | None = None
) -> list[Published]:
    """Waits for the relay to publish every stored event, then checks the whole stream."""
    expected = await stored_events(clients, ids)
    await wait_for_stream(nats_url, len(expected), service)
    published = await read_stream(nats_url)
    assert_exactly_once_in_order(published, expected)
    return published


# ---- fixtures


class MakeService(Protocol):
    def __call__(self, **extra_env: str) -> Service: ...


@pytest.fixture
def nats_broker(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server for this test alone: the tests stop and restart it."""
    server = NatsServer(tmp_path / "nats" / "store")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {"WEBHOOKS_STORE": "sqlite"}
    postgres_url: str = request.getfixturevalue("postgres_url")
    make_schema: Callable[[str], str] = request.getfixturevalue("postgres_schema")
    return {
        "WEBHOOKS_STORE": "postgres",
        "WEBHOOKS_POSTGRES_URL": postgres_url,
        "WEBHOOKS_POSTGRES_SCHEMA": make_schema("relay"),
    }


@pytest.fixture
def secret_key() -> str:
    return new_key()


@pytest.fixture
async def make_service(
    tmp_path: Path, nats_broker: NatsServer, store_env: dict[str, str], secret_key: str
) -> AsyncIterator[MakeService]:
    """Factory of service processes sharing this test's store and NATS server."""
    services: list[Service] = []

    def make(**extra_env: str) -> Service:
        number = len(services) + 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
        env.update(store_env)
        env.update(
            {
                "WEBHOOKS_DATA_DIR": str(tmp_path / f"data-{number}"),
                "WEBHOOKS_NATS_URL": nats_broker.url,
                "WEBHOOKS_TOKENS": json.dumps(
                    [{"name": "relay-test", "token": TOKEN, "tenant": "*"}]
                ),
                "WEBHOOKS_SECRET_KEYS": secret_key,
                "WEBHOOKS_RELAY_POLL_MS": str(POLL_MS),
                "WEBHOOKS_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env)
        if store_env["WEBHOOKS_STORE"] == "sqlite":  # one store for every process
            env["WEBHOOKS_DATA_DIR"] = str(tmp_path / "data")
        service = Service("subscriptions", env, tmp_path / f"service-{number}.log")
        services.append(service)
        return service

    yield make
    for service in services:
        service.kill()
        await service.close_channel()


@pytest.fixture
async def service(make_service: MakeService) -> AsyncIterator[Service]:
    started = make_service()
    await started.start()
    yield started


# ---- the tests


async def test_kill_between_save_and_publish_publishes_each_event_once_in_order(
    service: Service, nats_broker: NatsServer
) -> None:
    client = service.client()
    first = await client.create()
    await wait_for_stream(nats_broker.url, 1, service)

    nats_broker.stop()
    # The store accepts changes while the broker is down: the relay publishes them later.
    created = [await client.create() for _ in range(2)]
    await client.update_url(created[0].subscription.id, "https://example.com/hooks/moved")
    # The relay's publish times out (after 5 s); the relay gives up for now, and the
    # service must keep serving.
    await service.wait_for_log("outbox relay paused", within=12)
    await asyncio.sleep(1.5)
    assert service.alive, f"the service died while NATS was down:\n{service.log_tail()}"
    assert await service.serving()
    created.append(await client.create())
    assert (await client.get(created[2].subscription.id)).version == 1

    service.kill()
    nats_broker.start()
    # Saved, never published: the kill came between the two.
    assert [p.event.subscription.id for p in await read_stream(nats_broker.url)] == [
        first.subscription.id
    ]

    await service.start()
    ids = [first.subscription.id, *(c.subscription.id for c in created)]
    published = await check_stream(nats_broker.url, service, [service.client()], ids)
    assert len(published) == 5


async def test_kill_during_a_burst_loses_and_duplicates_nothing(
    service: Service, nats_broker: NatsServer
) -> None:
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    total, workers = 200, 8
    kill_after = chance.randrange(40, 160)  # completed operations before the kill
    done = 0
    killed = asyncio.Event()
    tenants = [TENANT, OTHER_TENANT]

    async def worker(number: int) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = subscriptions_pb2_grpc.SubscriptionServiceStub(channel)
            await changes(number, Client(stub, tenants[number % 2]))

    async def changes(number: int, client: Client) -> None:
        nonlocal done
        mine: list[str] = []
        for step in range(total // workers):
            if killed.is_set():
                return
            try:
                if not mine or step % 3 == 0:
                    mine.append((await client.create()).subscription.id)
                else:
                    target = chance.choice(mine)
                    await client.update_url(target, f"https://example.com/hooks/{number}/{step}")
            except grpc.aio.AioRpcError as error:
                if killed.is_set():
                    return  # in flight when the process died
                raise AssertionError(f"seed {seed}: {error}") from None
            done += 1
            if done == kill_after:
                service.kill()
                killed.set()

    await asyncio.gather(*(worker(n) for n in range(workers)))
    assert killed.is_set(), f"seed {seed}: the burst ended before the kill"

    await service.start()
    clients = [service.client(tenant) for tenant in tenants]
    published = await check_stream(nats_broker.url, service, clients)
    assert len(published) >= kill_after, f"seed {seed}"


async def test_clean_restart_publishes_nothing_twice(
    service: Service, nats_broker: NatsServer
) -> None:
    client = service.client()
    ids = [(await client.create()).subscription.id for _ in range(3)]
    await client.update_url(ids[0], "https://example.com/hooks/one")
    await check_stream(nats_broker.url, service, [client], ids)
    before = await stream_count(nats_broker.url)
    assert before == 4

    await service.stop()
    await service.start()
    await asyncio.sleep(5 * POLL_MS / 1000)  # several polls of the restarted relay
    assert await stream_count(nats_broker.url) == before

    client = service.client()
    await client.set_active(ids[1], False)
    await wait_for_stream(nats_broker.url, before + 1, service)
    published = await check_stream(nats_broker.url, service, [client], ids)
    assert published[-1].event.subscription.id == ids[1]
    assert not published[-1].event.subscription.active

    # The broker goes away while a change waits to be published: the relay gives up on
    # that connection, connects again once the broker is back, and publishes it.
    nats_broker.stop()
    await client.set_active(ids[1], True)
    await service.wait_for_log("outbox relay paused", within=12)
    nats_broker.start()
    published = await check_stream(nats_broker.url, service, [client], ids)
    assert len(published) == before + 2
    assert service.alive, service.log_tail()

    # A broker restart under an idle relay: the client reconnects and carries on.
    nats_broker.stop()
    nats_broker.start()
    await client.update_url(ids[2], "https://example.com/hooks/after-restart")
    published = await check_stream(nats_broker.url, service, [client], ids)
    assert len(published) == before + 3


async def test_a_change_is_on_the_stream_when_its_reply_arrives(
    service: Service, nats_broker: NatsServer
) -> None:
    """Read-your-writes for routing: an event published as soon as the reply arrives must
    meet the change on SUBSCRIPTIONS (the router catches up with it before routing)."""
    client = service.client()
    expected_count = 0
    for n in range(10):
        created = await client.create()
        expected_count += 1
        assert await stream_count(nats_broker.url) == expected_count, f"create {n}"
        await client.set_active(created.subscription.id, False)
        expected_count += 1
        last = (await read_stream(nats_broker.url))[-1].event.subscription
        assert (last.id, last.active) == (created.subscription.id, False), f"deactivate {n}"


@pytest.mark.postgres
@pytest.mark.parametrize("store_env", ["postgres"], indirect=True)  # replicas share PostgreSQL
async def test_two_relays_on_one_store_neither_duplicate_nor_reorder(
    make_service: MakeService, nats_broker: NatsServer
) -> None:
    # A duplicate window of 1 s, so the broker's deduplication cannot hide a relay that
    # republishes what the other one published; the second relay polls slowly, so it
    # wakes up behind the first.
    window = {"WEBHOOKS_DUPLICATE_WINDOW_SECONDS": "1"}
    services = [make_service(**window), make_service(**window, WEBHOOKS_RELAY_POLL_MS="1500")]
    await asyncio.gather(*(s.start() for s in services))

    async def changes(service: Service, number: int) -> list[str]:
        client = service.client()
        ids = []
        for step in range(30):
            if step % 3 == 0:
                ids.append((await client.create()).subscription.id)
            else:
                await client.update_url(ids[-1], f"https://example.com/hooks/{number}/{step}")
        return ids

    # Each process changes subscriptions, concurrently, twice over.
    results = await asyncio.gather(*(changes(s, n) for n, s in enumerate(services * 2)))
    ids = [subscription_id for result in results for subscription_id in result]
    # Changes through one process to subscriptions the other created.
    for subscription_id in ids[:5]:
        await services[1].client().set_active(subscription_id, False)
    # Changes through the first process only, spread over longer than the window: the
    # second relay finds them at its next poll, after the first one published them.
    for step in range(10):
        await services[0].client().update_url(ids[-1], f"https://example.com/hooks/late/{step}")
        await asyncio.sleep(0.25)
    published = await check_stream(nats_broker.url, services[0], [services[0].client()], ids)
    assert len(published) == 4 * 30 + 5 + 10
    await asyncio.sleep(2)  # the slow relay polls again: still nothing more
    assert await stream_count(nats_broker.url) == len(published)
    for service in services:
        assert service.alive, service.log_tail()


async def test_published_events_carry_what_router_and_sender_need(
    service: Service, nats_broker: NatsServer, secret_key: str
) -> None:
    trace_id = uuid.uuid4().hex
    client = service.client()
    client.trace = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    created = await client.create(password=PASSWORD)
    subscription_id = created.subscription.id
    await client.set_active(subscription_id, False)
    await client.delete(subscription_id)
    published = await check_stream(nats_broker.url, service, [client], [subscription_id])
    assert len(published) == 3

    box = SecretBox([secret_key])
    for p in published:
        state = p.event.subscription
        assert (state.id, state.tenant) == (subscription_id, TENANT)
        assert state.name == created.subscription.name
        assert state.entity == "Object"
        assert [t.trigger for t in state.triggers] == ["OnNewActivity", "OnNew"]
        assert list(state.triggers[0].activity_types) == [1]
        assert list(state.triggers[1].channels) == [4]
        assert state.webhook.type == common_pb2.WEBHOOK_TYPE_REST
        assert state.webhook.url == "https://example.com/hooks/relay"
        assert (state.webhook.method, state.webhook.format) == ("POST", "JSON")
        assert (state.retry_policy.retries, state.retry_policy.interval_seconds) == (2, 600)
        assert state.created_at.seconds > 0 and state.updated_at.seconds > 0
        # Secrets travel sealed: the sender opens them with the shared key.
        basic = state.authentication.basic
        assert basic.username == "relay-user"
        assert basic.password.startswith("sealed:v1:") and box.open(basic.password) == PASSWORD
        assert box.open(state.signing_secret) == created.signing_secret
        assert PASSWORD.encode() not in p.data
        assert created.signing_secret.encode() not in p.data
        # The publish continues the trace of the command that caused it.
        assert p.headers.get("traceparent", "").split("-")[1] == trace_id, p.headers
        assert p.headers.get("Webhooks-Event-Type") == p.event.event_type
        assert p.event.occurred_at.seconds > 0

    states = [p.event.subscription for p in published]
    assert [(s.version, s.active, s.deleted) for s in states] == [
        (1, True, False),
        (2, False, False),
        (3, False, True),
    ]
    assert [p.event.event_type for p in published] == [
        "Subscription.Created",
        "Subscription.Deactivated",
        "Subscription.Deleted",
    ]
