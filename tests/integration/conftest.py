"""The subscriptions service run in-process on the test loop, on SQLite and on PostgreSQL.

``subscriptions_service`` is parametrized over both stores: the PostgreSQL run uses the
``postgres_url`` fixture, so it is skipped when PostgreSQL is absent and fails when
``WEBHOOKS_REQUIRE_POSTGRES=1``. Each service gets its own data directory or schema and its
own nats-server: the outbox relay takes its position from the SUBSCRIPTIONS stream, so a
fresh store publishing onto a stream another store already filled would resume after that
store's last notification and its messages would be deduplicated by id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import nats
import pytest
from nats.js.api import RawStreamMsg

from tests.support import NatsServer
from tests.support.rpc import rpc_error as rpc_error  # re-exported for this folder's tests
from webhooks.v1 import common_pb2, subscriptions_pb2, subscriptions_pb2_grpc
from webhooks_config import Settings, load_settings
from webhooks_messaging import SUBSCRIPTIONS
from webhooks_secrets import SecretBox, new_key
from webhooks_subscriptions import service

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# token name -> (token, tenant)
TOKENS: dict[str, tuple[str, str]] = {
    "platform": ("platform-token-4d9b1f0e", "*"),
    "acme-admin": ("acme-token-0c7a52d3", "acme"),
    "globex-admin": ("globex-token-9e61b8aa", "globex"),
}
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0

Metadata = list[tuple[str, str]]


def bearer(token_name: str, tenant: str | None = None) -> Metadata:
    """Call metadata of a configured token, naming ``tenant`` when given."""
    metadata = [("authorization", f"Bearer {TOKENS[token_name][0]}")]
    if tenant is not None:
        metadata.append(("x-webhooks-tenant", tenant))
    return metadata


def object_trigger(*channels: int) -> common_pb2.TriggerSpec:
    return common_pb2.TriggerSpec(trigger="OnNew", channels=list(channels))


def rest_spec(
    name: str,
    url: str = "https://hooks.example.com/in",
    *,
    authentication: common_pb2.Authentication | None = None,
    certificate_id: str = "",
    entity: str = "Object",
    triggers: list[common_pb2.TriggerSpec] | None = None,
) -> subscriptions_pb2.SubscriptionSpec:
    """A valid REST subscription of Object OnNew (channels 1 and 2) with no authentication."""
    spec = subscriptions_pb2.SubscriptionSpec(
        name=name,
        entity=entity,
        triggers=triggers if triggers is not None else [object_trigger(1, 2)],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url=url, client_certificate_id=certificate_id
        ),
    )
    if authentication is not None:
        spec.authentication.CopyFrom(authentication)
    return spec


def soap_spec(name: str, **soap: Any) -> subscriptions_pb2.SubscriptionSpec:
    """A valid SOAP 1.1 subscription of User OnNew; ``soap`` overrides SoapSettings fields."""
    settings = {
        "operation": "Notify",
        "namespace": "urn:example:hooks",
        "soap_action": "urn:example:hooks#Notify",
        **soap,
    }
    return subscriptions_pb2.SubscriptionSpec(
        name=name,
        entity="User",
        triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_SOAP,
            url="https://soap.example.com/hooks",
            soap=common_pb2.SoapSettings(**settings),
        ),
    )


def basic_auth(username: str, password: str) -> common_pb2.Authentication:
    return common_pb2.Authentication(
        basic=common_pb2.BasicAuth(username=username, password=password)
    )


@dataclass
class SubscriptionsService:
    """A running subscriptions service and what tests need to talk to it and inspect it."""

    store: str
    settings: Settings
    channel: grpc.aio.Channel
    stub: subscriptions_pb2_grpc.SubscriptionServiceStub
    nats: NatsServer
    secret_keys: list[str]
    postgres_url: str = ""  # "" on SQLite
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def schema(self) -> str:
        """The PostgreSQL schema ("" on SQLite)."""
        return self.settings.postgres_schema if self.store == "postgres" else ""

    @property
    def secrets(self) -> SecretBox:
        return SecretBox(self.secret_keys)

    @property
    def acme(self) -> Metadata:
        return bearer("acme-admin")

    @property
    def globex(self) -> Metadata:
        return bearer("globex-admin")

    def platform(self, tenant: str) -> Metadata:
        return bearer("platform", tenant)

    async def create(
        self,
        spec: subscriptions_pb2.SubscriptionSpec,
        metadata: Metadata | None = None,
        active: bool | None = None,
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        request = subscriptions_pb2.CreateSubscriptionRequest(subscription=spec, active=active)
        response: subscriptions_pb2.CreateSubscriptionResponse = await self.stub.CreateSubscription(
            request, metadata=metadata or self.acme
        )
        return response

    async def get(
        self, subscription_id: str, metadata: Metadata | None = None
    ) -> subscriptions_pb2.Subscription:
        reply: subscriptions_pb2.Subscription = await self.stub.GetSubscription(
            subscriptions_pb2.GetSubscriptionRequest(id=subscription_id),
            metadata=metadata or self.acme,
        )
        return reply

    async def history(
        self, subscription_id: str, metadata: Metadata | None = None
    ) -> subscriptions_pb2.GetSubscriptionHistoryResponse:
        reply: subscriptions_pb2.GetSubscriptionHistoryResponse = (
            await self.stub.GetSubscriptionHistory(
                subscriptions_pb2.GetSubscriptionHistoryRequest(id=subscription_id),
                metadata=metadata or self.acme,
            )
        )
        return reply

    async def list_page(
        self, metadata: Metadata | None = None, **request: Any
    ) -> subscriptions_pb2.ListSubscriptionsResponse:
        reply: subscriptions_pb2.ListSubscriptionsResponse = await self.stub.ListSubscriptions(
            subscriptions_pb2.ListSubscriptionsRequest(**request), metadata=metadata or self.acme
        )
        return reply

    async def list_all(
        self, metadata: Metadata | None = None, **request: Any
    ) -> list[subscriptions_pb2.Subscription]:
        """Every subscription the filters match, walking the pages."""
        found: list[subscriptions_pb2.Subscription] = []
        token = ""
        for _ in range(10_000):
            page = await self.list_page(metadata, page_token=token, **request)
            found.extend(page.subscriptions)
            token = page.next_page_token
            if not token:
                return found
        raise AssertionError("the listing never ended")

    async def names(self, metadata: Metadata | None = None, **request: Any) -> list[str]:
        return [s.name for s in await self.list_all(metadata, **request)]

    async def stream_messages(
        self, at_least: int, wait_seconds: float = 15.0
    ) -> list[RawStreamMsg]:
        """Every message of the SUBSCRIPTIONS stream once it holds ``at_least``."""
        client = await nats.connect(self.nats.url)
        try:
            js = client.jetstream()
            deadline = asyncio.get_running_loop().time() + wait_seconds
            while True:
                try:
                    state = (await js.stream_info(SUBSCRIPTIONS)).state
                    count = state.messages
                except nats.js.errors.NotFoundError:
                    count = 0
                if count >= at_least:
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{SUBSCRIPTIONS} holds {count} < {at_least} messages")
                await asyncio.sleep(0.05)
            return [
                await js.get_msg(SUBSCRIPTIONS, seq=seq)
                for seq in range(state.first_seq, state.last_seq + 1)
            ]
        finally:
            await client.close()


ServiceFactory = Callable[..., Awaitable[SubscriptionsService]]


@pytest.fixture(params=STORES)
def subscriptions_store(request: pytest.FixtureRequest) -> str:
    store: str = request.param
    return store


@pytest.fixture
async def start_subscriptions(
    subscriptions_store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ServiceFactory]:
    """Factory: ``await start_subscriptions(WEBHOOKS_X="...")`` runs one more service on the
    parametrized store with extra settings; all are stopped at the end of the test."""
    started: list[SubscriptionsService] = []
    postgres_url = ""
    schema_factory: Callable[[str], str] | None = None
    if subscriptions_store == "postgres":
        postgres_url = request.getfixturevalue("postgres_url")
        schema_factory = request.getfixturevalue("postgres_schema")

    async def start(**extra_env: str) -> SubscriptionsService:
        index = len(started)
        nats_server = NatsServer(tmp_path / f"nats-{index}" / "store")
        await asyncio.to_thread(nats_server.start)
        keys = [new_key()]
        env = {
            "WEBHOOKS_DATA_DIR": str(tmp_path / f"data-{index}"),
            "WEBHOOKS_NATS_URL": nats_server.url,
            "WEBHOOKS_SUBSCRIPTIONS_ADDR": "127.0.0.1:0",
            "WEBHOOKS_TOKENS": json.dumps(
                [
                    {"name": name, "token": token, "tenant": tenant}
                    for name, (token, tenant) in TOKENS.items()
                ]
            ),
            "WEBHOOKS_SECRET_KEYS": ",".join(keys),
            "WEBHOOKS_ALLOW_HTTP_LOOPBACK": "false",
            "WEBHOOKS_RELAY_POLL_MS": "200",
            "WEBHOOKS_LOG_LEVEL": "WARNING",
        }
        if schema_factory is not None:
            env |= {
                "WEBHOOKS_STORE": "postgres",
                "WEBHOOKS_POSTGRES_URL": postgres_url,
                "WEBHOOKS_POSTGRES_SCHEMA": schema_factory("subs"),
            }
        settings = load_settings(env | extra_env)
        loop = asyncio.get_running_loop()
        bound: asyncio.Future[int] = loop.create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(settings, ready=bound.set_result, stop=stop))
        starting: set[asyncio.Future[Any]] = {bound, task}
        done, _ = await asyncio.wait(
            starting, timeout=START_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if bound not in done:
            stop.set()
            nats_server.stop()
            if task in done:
                task.result()  # raises what made the start-up fail
            raise AssertionError("the subscriptions service did not start in time")
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{bound.result()}")
        running = SubscriptionsService(
            store=subscriptions_store,
            settings=settings,
            channel=channel,
            stub=subscriptions_pb2_grpc.SubscriptionServiceStub(channel),
            nats=nats_server,
            secret_keys=keys,
            postgres_url=postgres_url,
            stop=stop,
            task=task,
        )
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop.set()
        await running.channel.close(None)
        if running.task is not None:
            await asyncio.wait_for(running.task, STOP_TIMEOUT_SECONDS)
        await asyncio.to_thread(running.nats.stop)


@pytest.fixture
async def subscriptions_service(start_subscriptions: ServiceFactory) -> SubscriptionsService:
    """The subscriptions service with default settings, once per store."""
    return await start_subscriptions()
