"""The whole platform as separate processes, exactly as compose runs it: a nats-server (or a
given NATS URL, e.g. a cluster's), ``webhooks serve subscriptions``, N ``serve router``,
N ``serve sender`` and ``serve failures``, each with the documented WEBHOOKS_* environment,
on SQLite (a data directory per process: nothing shared on disk) or PostgreSQL (one schema
for subscriptions and failures, as in compose.yaml).

The senders trust a test CA (``TestPki``) through WEBHOOKS_CA_BUNDLE and admit loopback
through WEBHOOKS_OUTBOUND_ALLOW, as an operator would; receivers
(``tests.support.receivers``) run in the test's event loop under that CA. Retries may be
1 s apart (WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS) and an attempt times out after a few
seconds (WEBHOOKS_SENDER_TIMEOUT_MS).

    async with running_platform(tmp, store="postgres", postgres_url=url,
                                postgres_schema=schema, routers=2, senders=2) as p:
        created = await p.create_subscription(tenant, spec)   # on SUBSCRIPTIONS when back
        results = await p.publish([platform_event(tenant, "User", "OnNew")])
        await p.wait_idle()                                    # routed and delivered
        p.senders[1].kill(); await p.senders[1].start()        # a crash and a restart

``Platform`` has the gRPC stubs of every service (``subs``, ``router``, ``sender``,
``failures``), an attempt log per tenant on ATTEMPTS (``attempts``), jobs put straight on
DELIVERIES as the router makes them (``job``, ``put_job``: for tests of the sender and the
failures view without routing), the consumers' state (``wait_idle``) and, when this module
started the nats-server, its monitoring (``connections``: per NATS connection the messages
it sent and got).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import nats
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from tests.support.nats_server import NatsServer
from tests.support.ports import free_port
from tests.support.postgres import create_schema, drop_schemas
from tests.support.receivers import HttpsReceiver, TestPki
from tests.support.service_process import ServiceProcess
from webhooks.v1 import (
    common_pb2,
    failures_pb2_grpc,
    messages_pb2,
    router_pb2,
    router_pb2_grpc,
    sender_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhooks_catalogue.samples import sample_data, sample_event
from webhooks_grpc.tokens import token_digest
from webhooks_messaging import (
    ATTEMPTS,
    DELIVERIES,
    EVENTS,
    SUBSCRIPTIONS,
    delivery_job_subject,
    subscription_subject,
)
from webhooks_messaging import auth as nats_auth
from webhooks_messaging.jobs import new_delivery_id, subscription_job
from webhooks_messaging.permissions import ADMIN_USER
from webhooks_secrets import new_key

PLATFORM_TOKEN = "platform-test-" + uuid.uuid4().hex
RPC_TIMEOUT = 20.0
SENDER_TIMEOUT_MS = 3000
PUBLISH_BATCH = 500  # events per PublishEvents call
ROUTER_CONSUMER = "router"  # the durable on EVENTS every router shares
SENDER_CONSUMER = "sender"  # the durable on DELIVERIES every sender shares
# The same of the bulk lane (a tenant's events beyond its standard rate, replays).
ROUTER_BULK_CONSUMER = "router-bulk"
SENDER_BULK_CONSUMER = "sender-bulk"
STORES = ("sqlite", "postgres")
FC = messages_pb2.FailureClass
SUCCEEDED = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
FAILED = messages_pb2.ATTEMPT_OUTCOME_FAILED
ACCEPTED = router_pb2.PUBLISH_STATUS_ACCEPTED
Metadata = tuple[tuple[str, str], ...]


def platform(tenant: str) -> Metadata:
    """Call metadata of the platform token acting for ``tenant``."""
    return (("authorization", f"Bearer {PLATFORM_TOKEN}"), ("x-webhooks-tenant", tenant))


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def new_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- what tests build


def platform_event(
    tenant: str,
    entity: str,
    trigger: str,
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    data: Mapping[str, Any] | None = None,
    **fields: Any,
) -> messages_pb2.PlatformEvent:
    """A valid platform event of this trigger (``sample_event``) with a fresh id, dated now;
    ``data`` replaces the sample's data, ``fields`` set PlatformEvent fields (``channel=7``,
    ``activity_type=2``, ``subchannel="sales"``)."""
    event = sample_event(
        entity,
        trigger,
        tenant=tenant,
        event_id=event_id or f"ev-{uuid.uuid4().hex}",
        occurred_at=occurred_at or datetime.now(UTC),
    )
    if data is not None:
        event.data_json = json.dumps(dict(data), ensure_ascii=False).encode()
    for name, value in fields.items():
        if isinstance(value, common_pb2.StatusChange):
            getattr(event, name).CopyFrom(value)
        else:
            setattr(event, name, value)
    return event


def rest(
    name: str,
    url: str,
    *,
    retries: int = 0,
    interval: int = 1,
    authentication: common_pb2.Authentication | None = None,
    certificate_id: str = "",
    entity: str = "Object",
    triggers: Sequence[common_pb2.TriggerSpec] = (common_pb2.TriggerSpec(trigger="OnNew"),),
    include_complete_data: bool = False,
) -> subscriptions_pb2.SubscriptionSpec:
    """A REST subscription (by default of Object OnNew, no retry, no authentication)."""
    spec = subscriptions_pb2.SubscriptionSpec(
        name=name,
        entity=entity,
        triggers=list(triggers),
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url=url, client_certificate_id=certificate_id
        ),
        retry_policy=common_pb2.RetryPolicy(retries=retries, interval_seconds=interval),
        include_complete_data=include_complete_data,
    )
    if authentication is not None:
        spec.authentication.CopyFrom(authentication)
    return spec


# ---- what comes out


@dataclass
class AttemptLog:
    """Every AttemptRecord of one tenant, as it is stored on ATTEMPTS."""

    records: list[messages_pb2.AttemptRecord] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        self.records.append(messages_pb2.AttemptRecord.FromString(msg.data))
        self.arrived.set()

    def of(self, delivery_id: str) -> list[messages_pb2.AttemptRecord]:
        return sorted(
            (r for r in self.records if r.delivery_id == delivery_id),
            key=lambda r: (r.series, r.attempt),
        )

    def succeeded(self) -> set[str]:
        """The delivery ids with a SUCCEEDED attempt."""
        return {r.delivery_id for r in self.records if r.outcome == SUCCEEDED}

    async def wait(
        self,
        done: Callable[[], bool],
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for a condition, not a call
        what: str = "attempts",
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what} not seen in {timeout} s: {self.records[-5:]}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(left, 0.5))


class PeerRecordingReceiver(HttpsReceiver):
    """Also records the client's port of every request: its connection, so (with
    ``tcp_ports_of``) the process that sent it."""

    def __init__(self, pki: TestPki) -> None:
        super().__init__(pki)
        self.peer_ports: list[int] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peer_ports.append(int(peer[1]) if peer else 0)
        return await super()._handle(request)


def tcp_ports_of(pid: int, to_port: int | None = None) -> set[int]:
    """Local ports of the TCP sockets process ``pid`` has open (Linux /proc); with
    ``to_port``, only of those connected to that remote port.

    Linux hands out the same ephemeral port for connections to different destinations, so
    a port of one process's connection to a receiver can also be the port of another
    process's connection elsewhere (to NATS, say): match the receiver's port too when
    telling processes apart by their connections to it."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            if to_port is not None and int(fields[2].rsplit(":", 1)[1], 16) != to_port:
                continue
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# ---- the platform


@dataclass
class Platform:
    store: str  # "sqlite" or "postgres"
    nats_url: str
    nats: NatsServer | None  # None: a NATS given by URL (not this module's to stop)
    monitor_port: int | None  # the nats-server's HTTP monitoring, when started here
    pki: TestPki
    env: dict[str, str]  # the environment every service shares (data dir aside)
    tmp: Path  # logs, data directories
    subscriptions: ServiceProcess
    routers: list[ServiceProcess]
    senders: list[ServiceProcess]
    failures_process: ServiceProcess | None
    nc: NATS
    js: JetStreamContext
    # The platform's NATS users (each service its own, this harness the admin) when this
    # module started the nats-server; None: no authentication.
    auth: nats_auth.NatsAuth | None = None

    # -- processes

    @property
    def processes(self) -> list[ServiceProcess]:
        """Every service process, in start order."""
        optional = [self.failures_process] if self.failures_process is not None else []
        return [self.subscriptions, *self.routers, *self.senders, *optional]

    def new_process(self, service: str, **env: str) -> ServiceProcess:
        """One more (not started) replica of ``service`` on its own data directory and log;
        ``env`` adds to the shared environment."""
        index = sum(p.service == service for p in self.processes) + 1
        return service_process(self.tmp, self.env, service, index, env, self.auth)

    async def add_replica(self, service: str, **env: str) -> ServiceProcess:
        """Starts one more router or sender (sharing the durable consumer)."""
        process = self.new_process(service, **env)
        {"router": self.routers, "sender": self.senders}[service].append(process)
        await process.start()
        return process

    # -- gRPC stubs (of the first replica)

    @property
    def subs(self) -> subscriptions_pb2_grpc.SubscriptionServiceStub:
        assert self.subscriptions.channel is not None, "subscriptions not running"
        return subscriptions_pb2_grpc.SubscriptionServiceStub(self.subscriptions.channel)

    def router_stub(self, index: int = 0) -> router_pb2_grpc.RouterServiceStub:
        channel = self.routers[index].channel
        assert channel is not None, f"router {index} not running"
        return router_pb2_grpc.RouterServiceStub(channel)

    def sender_stub(self, index: int = 0) -> sender_pb2_grpc.SenderServiceStub:
        channel = self.senders[index].channel
        assert channel is not None, f"sender {index} not running"
        return sender_pb2_grpc.SenderServiceStub(channel)

    @property
    def router(self) -> router_pb2_grpc.RouterServiceStub:
        return self.router_stub(0)

    @property
    def sender(self) -> sender_pb2_grpc.SenderServiceStub:
        return self.sender_stub(0)

    @property
    def failures(self) -> failures_pb2_grpc.FailuresServiceStub:
        process = self.failures_process
        assert process is not None and process.channel is not None, "failures not running"
        return failures_pb2_grpc.FailuresServiceStub(process.channel)

    # -- subscriptions

    async def create_subscription(
        self,
        tenant: str,
        spec: subscriptions_pb2.SubscriptionSpec,
        *,
        metadata: Metadata | None = None,
        active: bool = True,
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        """Create a subscription (as the platform token for ``tenant``, or ``metadata``) and
        wait until it is on SUBSCRIPTIONS: routers and senders know only subscriptions they
        have seen there, and the API answers before the outbox relay has published."""
        response: subscriptions_pb2.CreateSubscriptionResponse = await self.subs.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(subscription=spec, active=active),
            metadata=metadata or platform(tenant),
            timeout=RPC_TIMEOUT,
        )
        await self.on_stream(response.subscription)
        return response

    async def on_stream(self, subscription: subscriptions_pb2.Subscription) -> None:
        """Until the subscription's state (at least its version) is on SUBSCRIPTIONS."""
        subject = subscription_subject(subscription.tenant, subscription.id)
        deadline = time.monotonic() + RPC_TIMEOUT
        while True:
            with contextlib.suppress(NotFoundError):
                msg = await self.js.get_last_msg(SUBSCRIPTIONS, subject)
                state = messages_pb2.SubscriptionDomainEvent.FromString(msg.data or b"")
                if state.subscription.version >= subscription.version:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{subject} v{subscription.version} not on {SUBSCRIPTIONS}")
            await asyncio.sleep(0.02)

    # -- events in

    async def publish(
        self,
        events: Sequence[messages_pb2.PlatformEvent],
        *,
        metadata: Metadata | None = None,
        batch: int = PUBLISH_BATCH,
        router: int | None = None,
        require_accepted: bool = True,
    ) -> list[router_pb2.PublishResult]:
        """Events in through PublishEvents, ``batch`` per call, round-robin over the routers
        (or to router ``router``); the platform token acts for each batch's first tenant
        unless ``metadata`` is given. Every event must be ACCEPTED unless
        ``require_accepted`` is false."""
        results: list[router_pb2.PublishResult] = []
        for number, start in enumerate(range(0, len(events), batch)):
            chunk = events[start : start + batch]
            index = router if router is not None else number % len(self.routers)
            response = await self.router_stub(index).PublishEvents(
                router_pb2.PublishEventsRequest(events=chunk),
                metadata=metadata or platform(chunk[0].tenant),
                timeout=RPC_TIMEOUT,
            )
            results.extend(response.results)
        if require_accepted:
            refused = [r for r in results if r.status != ACCEPTED]
            assert not refused, f"{len(refused)} events not accepted, e.g. {refused[:3]}"
        return results

    # -- jobs straight onto DELIVERIES (tests of the sender and failures without routing)

    def job(
        self,
        subscription: subscriptions_pb2.Subscription,
        *,
        trigger: str = "OnNew",
        event_id: str | None = None,
    ) -> messages_pb2.DeliveryJob:
        """A job as the router makes it (not yet published)."""
        return subscription_job(
            subscription,
            event_id=event_id or f"ev-{uuid.uuid4().hex}",
            delivery_id=new_delivery_id(),
            trigger=trigger,
            data=sample_data(subscription.entity, trigger),
            occurred_at=datetime.now(UTC),
            include_complete_data=False,
            channel=7,
            subchannel="sales",
        )

    async def put_job(self, job: messages_pb2.DeliveryJob) -> None:
        """Put ``job`` on DELIVERIES the way the router does (stored when this returns)."""
        await self.js.publish(
            delivery_job_subject(job.tenant, job.subscription_id),
            job.SerializeToString(),
            headers={"Nats-Msg-Id": job.job_id},
        )

    # -- what comes out

    async def attempts(self, tenant: str) -> AttemptLog:
        """Every attempt of ``tenant`` from now on (and those already on ATTEMPTS)."""
        log = AttemptLog()
        await self.js.subscribe(
            f"attempts.{tenant}.>", stream=ATTEMPTS, cb=log.on_message, ordered_consumer=True
        )
        return log

    async def consumer_backlog(self, stream: str, durable: str) -> tuple[int, int]:
        """(pending, delivered but not acknowledged) of a durable; (0, 0) before it exists."""
        try:
            info = await self.js.consumer_info(stream, durable)
        except NotFoundError:
            return 0, 0
        return info.num_pending or 0, info.num_ack_pending or 0

    async def wait_idle(self, within: float = 60.0, *, scheduled: bool = False) -> None:
        """Until the routers' consumer of EVENTS and the senders' of DELIVERIES have nothing
        pending or unacknowledged (every event routed, every job taken has its attempt
        recorded); with ``scheduled``, also until DELIVERIES holds nothing (no retry is
        scheduled any more)."""
        deadline = time.monotonic() + within
        while True:
            router = await self.consumer_backlog(EVENTS, ROUTER_CONSUMER)
            sender = await self.consumer_backlog(DELIVERIES, SENDER_CONSUMER)
            bulk = (
                *await self.consumer_backlog(EVENTS, ROUTER_BULK_CONSUMER),
                *await self.consumer_backlog(DELIVERIES, SENDER_BULK_CONSUMER),
            )
            held = (await self.js.stream_info(DELIVERIES)).state.messages if scheduled else 0
            if router == (0, 0) and sender == (0, 0) and bulk == (0,) * 4 and held == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not idle after {within} s: router (pending, unacked) {router}, "
                    f"sender {sender}, bulk lanes {bulk}, {held} messages on {DELIVERIES}"
                )
            await asyncio.sleep(0.1)

    async def connections(self) -> list[dict[str, Any]]:
        """The nats-server's client connections (``/connz``: name, port, in_msgs, out_msgs
        ...), when this module started it."""
        assert self.monitor_port is not None, "a NATS given by URL: no monitoring here"
        url = f"http://127.0.0.1:{self.monitor_port}/connz?limit=10000"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            document = await response.json()
        found: list[dict[str, Any]] = document.get("connections") or []
        return found

    async def nats_messages_of(self, process: ServiceProcess) -> tuple[int, int]:
        """(messages the process sent to NATS, messages NATS sent it) over the connections
        it has open now (matched by their local ports)."""
        assert process.process is not None and process.alive, f"{process.service} not running"
        ports = tcp_ports_of(process.process.pid)
        sent = got = 0
        for connection in await self.connections():
            if connection.get("port") in ports:
                sent += int(connection.get("in_msgs", 0))
                got += int(connection.get("out_msgs", 0))
        return sent, got


def service_env(
    tmp: Path,
    nats_url: str,
    pki: TestPki,
    *,
    tokens: Sequence[Mapping[str, str]] = (),
    secret_key: str | None = None,
) -> dict[str, str]:
    """The environment every service gets (without the test runner's WEBHOOKS_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    env.update(
        {
            "WEBHOOKS_DATA_DIR": str(tmp / "data"),
            "WEBHOOKS_NATS_URL": nats_url,
            "WEBHOOKS_TOKENS": json.dumps(
                [
                    {
                        "name": "platform",
                        "token_sha256": token_digest(PLATFORM_TOKEN).hex(),
                        "tenant": "*",
                    },
                    *tokens,
                ]
            ),
            "WEBHOOKS_SECRET_KEYS": secret_key or new_key(),
            "WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS": "1",
            "WEBHOOKS_SENDER_TIMEOUT_MS": str(SENDER_TIMEOUT_MS),
            "WEBHOOKS_OUTBOUND_ALLOW": "127.0.0.0/8,::1/128",
            "WEBHOOKS_CA_BUNDLE": str(pki.ca_file),
            "WEBHOOKS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def service_process(
    tmp: Path,
    env: Mapping[str, str],
    service: str,
    index: int,
    extra: Mapping[str, str],
    auth: nats_auth.NatsAuth | None = None,
) -> ServiceProcess:
    """Replica ``index`` (from 1) of ``service``: its own data directory and log; replicas
    of routers and senders are told apart by WEBHOOKS_INSTANCE (``<service>-<index>``);
    with ``auth``, it connects to NATS as its own user."""
    name = f"{service}-{index}" if service in ("router", "sender") else service
    own = {"WEBHOOKS_DATA_DIR": str(tmp / "data" / name)}
    if auth is not None:
        own["WEBHOOKS_NATS_NKEY_SEED_FILE"] = str(auth.seed_file(service))
    if service in ("router", "sender"):
        own["WEBHOOKS_INSTANCE"] = name
    return ServiceProcess(service, {**env, **own, **extra}, tmp / f"{name}.log")


@contextlib.contextmanager
def postgres_schema(url: str, prefix: str) -> Iterator[str]:
    """A fresh schema for as long as the block runs (for module-scoped stacks: the
    ``postgres_schema`` fixture is per test)."""
    name = create_schema(url, prefix)
    try:
        yield name
    finally:
        drop_schemas(url, [name])


@contextlib.asynccontextmanager
async def running_platform(
    tmp: Path,
    *,
    store: str = "sqlite",
    postgres_url: str = "",
    postgres_schema: str = "",
    nats_url: str | None = None,
    routers: int = 1,
    senders: int = 1,
    failures: bool = True,
    tokens: Sequence[Mapping[str, str]] = (),
    env: Mapping[str, str] | None = None,
    service_envs: Mapping[str, Mapping[str, str]] | None = None,
    nats_authentication: bool = True,
) -> AsyncIterator[Platform]:
    """The platform, started in order (subscriptions, routers, senders, failures) and
    stopped in reverse (SIGTERM). ``nats_url``: use that NATS (a cluster: comma-separated)
    instead of starting a nats-server; ``tokens``: more ``{"name", "token", "tenant"}``
    beside the platform token; ``env``: more environment for every service (OTEL_*,
    WEBHOOKS_SENDER_TIMEOUT_MS ...); ``service_envs``: more for one service by name;
    ``nats_authentication``: the nats-server started here admits only the platform's users
    (webhooks_messaging.auth), as ``webhooks up`` and compose run it."""
    assert store in STORES, store
    server: NatsServer | None = None
    monitor_port: int | None = None
    auth: nats_auth.NatsAuth | None = None
    if nats_url is None:
        monitor_port = free_port()
        auth = nats_auth.prepare(tmp / "nats-auth") if nats_authentication else None
        server = NatsServer(
            tmp / "nats" / "store",
            extra_args=["-m", str(monitor_port)],
            config_file=auth.server_config if auth else None,
        )
        await asyncio.to_thread(server.start)
        nats_url = server.url
    pki = TestPki.create(tmp / "pki")
    shared = service_env(tmp, nats_url, pki, tokens=tokens)
    if store == "postgres":
        assert postgres_url and postgres_schema, "postgres needs a URL and a schema"
        shared |= {
            "WEBHOOKS_STORE": "postgres",
            "WEBHOOKS_POSTGRES_URL": postgres_url,
            "WEBHOOKS_POSTGRES_SCHEMA": postgres_schema,
        }
    shared |= dict(env or {})
    extra = service_envs or {}

    def make(service: str, index: int = 1) -> ServiceProcess:
        return service_process(tmp, shared, service, index, extra.get(service, {}), auth)

    subscriptions = make("subscriptions")
    router_processes = [make("router", i + 1) for i in range(routers)]
    sender_processes = [make("sender", i + 1) for i in range(senders)]
    failures_process = make("failures") if failures else None
    try:
        admin = {"nkeys_seed": str(auth.seed_file(ADMIN_USER))} if auth else {}
        nc = await nats.connect(nats_url.split(","), **admin)
    except BaseException:
        if server is not None:
            await asyncio.to_thread(server.stop)
        raise
    running = Platform(
        store=store,
        nats_url=nats_url,
        nats=server,
        monitor_port=monitor_port,
        pki=pki,
        env=shared,
        tmp=tmp,
        subscriptions=subscriptions,
        routers=router_processes,
        senders=sender_processes,
        failures_process=failures_process,
        nc=nc,
        js=nc.jetstream(),
        auth=auth,
    )
    try:
        for process in running.processes:
            await process.start()
        yield running
    finally:
        await nc.close()
        for process in reversed(running.processes):
            await process.stop()
        if server is not None:
            await asyncio.to_thread(server.stop)
