"""Benchmark of the subscriptions service: creates/s, updates/s and list latency over gRPC.

Each figure is printed with the ratio to a ceiling measured in the same run, on the same
machine, so that drift between runs on shared machines cancels out:

- the gRPC ceiling: the same client loop against the standard ``grpc.health.v1`` Check of
  the same server process (no auth, no storage, a tiny message);
- the storage ceilings: in-process, without gRPC, on the same kind of store: a bare
  eventsourcing aggregate created and saved, and ``Subscriptions.create_subscription`` of the
  application exactly as the service wires it (validation, sealing, name reservation,
  listing projection after the save).

The service runs as a separate process (``python -m webhooks_cli serve subscriptions``) with
a real nats-server, so the outbox relay publishes every event as it would in production.

Run ``python bench/subscriptions.py --help``; bench/README.md explains the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

import grpc  # noqa: E402
import grpc.aio  # noqa: E402
from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate  # noqa: E402
from google.protobuf.field_mask_pb2 import FieldMask  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from tests.support import NatsServer, free_port  # noqa: E402
from tests.support.postgres import drop_schemas  # noqa: E402
from webhooks.v1 import common_pb2, subscriptions_pb2, subscriptions_pb2_grpc  # noqa: E402
from webhooks_config import Settings, load_settings  # noqa: E402
from webhooks_secrets import new_key  # noqa: E402
from webhooks_subscriptions.application import Caller  # noqa: E402
from webhooks_subscriptions.bootstrap import build, persistence_env  # noqa: E402
from webhooks_subscriptions.convert import spec_data  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TOKEN = "bench-" + secrets.token_hex(16)
WRITE_TENANT = "bench"
LIST_TENANT = "bench-list"
CALL_TIMEOUT = 60.0
# (entity, trigger): one valid trigger of every catalogue entity, so the listing holds seven
# entities in equal shares and an entity filter keeps one row in seven.
ENTITY_TRIGGERS = (
    ("Object", "OnNew"),
    ("User", "OnNew"),
    ("Satisfaction", "OnSubmit"),
    ("Tag", "OnAdd"),
    ("Form", "OnSubmit"),
    ("Chat", "OnUserExit"),
    ("WhatsApp", "OnMessageStatus"),
)
# Ten words in equal shares: name_contains=<word> keeps one row in ten.
WORDS: tuple[str, ...] = ("alpha", "bravo", "charlie", "delta", "echo")
WORDS += ("foxtrot", "golf", "hotel", "india", "juliet")
RARE_WORD = "zebra"  # in one name in a thousand: name_contains must look at every row
RARE_EVERY = 1000


# Requests


def subscription_spec(name: str, index: int) -> subscriptions_pb2.SubscriptionSpec:
    """A REST subscription with Basic authentication, as the user guide's first example."""
    entity, trigger = ENTITY_TRIGGERS[index % len(ENTITY_TRIGGERS)]
    return subscriptions_pb2.SubscriptionSpec(
        name=name,
        entity=entity,
        triggers=[common_pb2.TriggerSpec(trigger=trigger)],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url=f"https://hooks.example.com/in/{index}"
        ),
        authentication=common_pb2.Authentication(
            basic=common_pb2.BasicAuth(username="bench", password=f"password-{index}")
        ),
    )


def list_name(index: int) -> str:
    word = WORDS[index % len(WORDS)]
    if index % RARE_EVERY == RARE_EVERY // 2:
        return f"{word}-{RARE_WORD}-{index:07d}"
    return f"{word}-{index:07d}"


def metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKEN}"), ("x-webhooks-tenant", tenant))


# Measuring


@dataclass
class Throughput:
    operations: int
    concurrency: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_us_per_op: float | None = None  # CPU time of the service process per operation
    client_cpu_us_per_op: float | None = None  # CPU time of this process per operation


@dataclass
class Latency:
    calls: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    rows: int  # rows on the first page (a check that the filter found what it should)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


class CpuClock:
    """User + system CPU seconds of another process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/stat")
        self._tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float | None:
        try:
            fields = self._path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._tick


async def closed_loop(
    operations: int,
    concurrency: int,
    call: Callable[[int], Awaitable[object]],
    server: CpuClock | None = None,
) -> Throughput:
    """``operations`` calls, ``concurrency`` of them in flight at any time."""
    latencies: list[float] = []
    counter = iter(range(operations))

    async def worker() -> None:
        for index in counter:
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    server_before = server.seconds() if server else None
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_after = server.seconds() if server else None
    server_cpu = (
        (server_after - server_before)
        if server_before is not None and server_after is not None
        else None
    )
    return Throughput(
        operations=operations,
        concurrency=concurrency,
        seconds=round(seconds, 3),
        per_second=round(operations / seconds, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
        server_cpu_us_per_op=round(server_cpu / operations * 1e6, 1)
        if server_cpu is not None
        else None,
        client_cpu_us_per_op=round(client_cpu / operations * 1e6, 1),
    )


def threaded_loop(operations: int, concurrency: int, call: Callable[[int], object]) -> Throughput:
    """The in-process counterpart of ``closed_loop``: ``concurrency`` worker threads."""
    latencies: list[float] = []

    def timed(index: int) -> None:
        started = time.perf_counter()
        call(index)
        latencies.append(time.perf_counter() - started)

    client_before = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in pool.map(timed, range(operations)):
            pass
    seconds = time.perf_counter() - started
    cpu = time.process_time() - client_before
    return Throughput(
        operations=operations,
        concurrency=concurrency,
        seconds=round(seconds, 3),
        per_second=round(operations / seconds, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
        client_cpu_us_per_op=round(cpu / operations * 1e6, 1),
    )


async def sequential_latency(
    calls: int, call: Callable[[], Awaitable[int]], warmup: int = 20
) -> Latency:
    rows = 0
    for _ in range(warmup):
        rows = await call()
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        rows = await call()
        latencies.append(time.perf_counter() - started)
    return Latency(
        calls=calls,
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3),
        mean_ms=round(statistics.fmean(latencies) * 1000, 3),
        rows=rows,
    )


# The store, the broker, the service


@dataclass
class Store:
    kind: str  # sqlite or postgres
    root: Path
    schemas: list[str] = field(default_factory=list)

    def environment(self, name: str, nats_url: str, port: int, key: str) -> dict[str, str]:
        """The WEBHOOKS_* settings of one store called ``name`` (data dir or schema)."""
        env = {
            "WEBHOOKS_DATA_DIR": str(self.root / name),
            "WEBHOOKS_NATS_URL": nats_url,
            "WEBHOOKS_SUBSCRIPTIONS_ADDR": f"127.0.0.1:{port}",
            "WEBHOOKS_TOKENS": json.dumps([{"name": "bench", "token": TOKEN, "tenant": "*"}]),
            "WEBHOOKS_SECRET_KEYS": key,
            "WEBHOOKS_LOG_LEVEL": "WARNING",
            "WEBHOOKS_STORE": self.kind,
        }
        if self.kind == "postgres":
            schema = f"bench_{secrets.token_hex(4)}_{name}"
            self.schemas.append(schema)
            env["WEBHOOKS_POSTGRES_URL"] = POSTGRES_URL
            env["WEBHOOKS_POSTGRES_SCHEMA"] = schema
        return env

    def drop(self) -> None:
        drop_schemas(POSTGRES_URL, self.schemas)


def create_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


class Service:
    """``python -m webhooks_cli serve subscriptions`` in its own process."""

    def __init__(self, env: dict[str, str], log_file: Path, profile: Path | None = None) -> None:
        self.env = env
        self.profile = profile
        self.port = int(env["WEBHOOKS_SUBSCRIPTIONS_ADDR"].rsplit(":", 1)[1])
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> float:
        """Starts the process; returns the seconds until its health check says SERVING."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
        environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        environment.update(self.env)
        command = [sys.executable, "-m", "webhooks_cli", "serve", "subscriptions"]
        if self.profile is not None:
            # The same service with cProfile in every thread.
            command = [sys.executable, str(REPO / "bench" / "profiled_service.py")]
            self.profile.parent.mkdir(parents=True, exist_ok=True)
            environment["BENCH_PROFILE_OUT"] = str(self.profile)
        started = time.perf_counter()
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_serving(timeout=300.0)
        return time.perf_counter() - started

    def _wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the service exited early; see {self.log_file}")
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                time.sleep(0.05)
        raise RuntimeError(f"the service did not become ready; see {self.log_file}")

    def cpu_clock(self) -> CpuClock:
        assert self.process is not None
        return CpuClock(self.process.pid)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def running(service: Service) -> Iterator[float]:
    try:
        yield service.start()
    finally:
        service.stop()


# Phases


class ProbeStore(Application[UUID]):
    """The bare eventsourcing floor: one tiny aggregate created and saved per operation."""

    name = "BenchProbe"


class Probe(Aggregate):
    def __init__(self, value: int) -> None:
        self.value = value


def storage_ceilings(settings: Settings, operations: int, concurrency: int) -> dict[str, Any]:
    """In-process, no gRPC: bare eventsourcing saves, then the application's creates."""
    if settings.store == "postgres":
        create_schema(settings.postgres_schema)
    probes = ProbeStore(env=persistence_env(settings))
    try:
        for index in range(50):
            probes.save(Probe(index))

        def save_probe(index: int) -> None:
            probes.save(Probe(index))

        bare = threaded_loop(operations, concurrency, save_probe)
    finally:
        probes.close()

    components = build(settings)
    try:
        caller = Caller(tenant="bench-ceiling", actor="bench", trace={})
        specs = [spec_data(subscription_spec(f"ceiling-{i:07d}", i)) for i in range(operations)]
        for index in range(50):
            warm = spec_data(subscription_spec(f"warm-{index}", index))
            components.app.create_subscription(caller, warm)

        def create(index: int) -> None:
            components.app.create_subscription(caller, specs[index])

        app = threaded_loop(operations, concurrency, create)
    finally:
        components.close()
    return {"eventsourcing_save": asdict(bare), "app_create_subscription": asdict(app)}


def seed_listing(settings: Settings, count: int, batch: int = 250) -> dict[str, Any]:
    """``count`` subscriptions for LIST_TENANT through the application, with the service
    stopped: every create runs the application's own validation and sealing, but the saves
    are grouped ``batch`` subscriptions (with their name reservations) per transaction; the
    listing projector runs after each group, as it does after each save in the service."""
    components = build(settings)
    app = components.app
    caller = Caller(tenant=LIST_TENANT, actor="bench-seed", trace={})
    pending: list[Aggregate] = []
    save_and_project = app._save

    def collect(*aggregates: Aggregate) -> None:
        pending.extend(aggregates)

    setattr(app, "_save", collect)  # noqa: B010 - the create path, saved in groups
    started = time.perf_counter()
    try:
        for index in range(count):
            spec = spec_data(subscription_spec(list_name(index), index))
            app.create_subscription(caller, spec, active=index % 2 == 0)
            if len(pending) >= 2 * batch:
                save_and_project(*pending)
                pending.clear()
        if pending:
            save_and_project(*pending)
    finally:
        components.close()
    seconds = time.perf_counter() - started
    return {"subscriptions": count, "seconds": round(seconds, 2), "per_second": count / seconds}


async def wait_for_relay(settings: Settings, at_least: int, limit: float) -> dict[str, Any]:
    """Waits until the SUBSCRIPTIONS stream holds ``at_least`` messages and stops growing, so
    the relay is idle before latencies are measured."""
    from webhooks_messaging import SUBSCRIPTIONS, connect

    nc = await connect(settings, "bench")
    try:
        js = nc.jetstream()
        started = time.perf_counter()
        deadline = started + limit
        last, steady_since = -1, time.perf_counter()
        while time.perf_counter() < deadline:
            messages = int((await js.stream_info(SUBSCRIPTIONS)).state.messages)
            now = time.perf_counter()
            if messages != last:
                last, steady_since = messages, now
            elif messages >= at_least and now - steady_since >= 1.5:
                return {"messages": messages, "seconds": round(steady_since - started, 2)}
            await asyncio.sleep(0.25)
        raise RuntimeError(f"the relay did not publish {at_least} messages in {limit} s")
    finally:
        await nc.close()


async def grpc_phase(service: Service, args: argparse.Namespace) -> dict[str, Any]:
    """gRPC ceiling (health Check, GetCatalogue), creates/s, updates/s."""
    results: dict[str, Any] = {}
    server = service.cpu_clock()
    async with grpc.aio.insecure_channel(service.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = subscriptions_pb2_grpc.SubscriptionServiceStub(channel)
        meta = metadata(WRITE_TENANT)
        run = secrets.token_hex(3)
        check = health_pb2.HealthCheckRequest(service="")

        async def health_check(_: int) -> None:
            await health.Check(check, timeout=CALL_TIMEOUT)

        async def catalogue(_: int) -> None:
            await stub.GetCatalogue(
                subscriptions_pb2.GetCatalogueRequest(), metadata=meta, timeout=CALL_TIMEOUT
            )

        ids: list[str] = []

        async def create(index: int) -> None:
            request = subscriptions_pb2.CreateSubscriptionRequest(
                subscription=subscription_spec(f"bench-{run}-{index:07d}", index)
            )
            reply = await stub.CreateSubscription(request, metadata=meta, timeout=CALL_TIMEOUT)
            ids.append(reply.subscription.id)

        async def warm_create(index: int) -> None:
            request = subscriptions_pb2.CreateSubscriptionRequest(
                subscription=subscription_spec(f"warm-{run}-{index:07d}", index)
            )
            await stub.CreateSubscription(request, metadata=meta, timeout=CALL_TIMEOUT)

        mask = FieldMask(paths=["webhook"])

        async def update(index: int) -> None:
            request = subscriptions_pb2.UpdateSubscriptionRequest(
                id=ids[index % len(ids)],
                subscription=subscriptions_pb2.SubscriptionSpec(
                    webhook=common_pb2.Webhook(
                        type=common_pb2.WEBHOOK_TYPE_REST,
                        url=f"https://hooks.example.com/moved/{index}",
                    )
                ),
                update_mask=mask,
            )
            await stub.UpdateSubscription(request, metadata=meta, timeout=CALL_TIMEOUT)

        concurrency = args.concurrency
        await closed_loop(200, concurrency, health_check)
        await closed_loop(50, concurrency, warm_create)
        await asyncio.sleep(1.0)  # the relay publishes the warm-up creates
        results["health_check"] = asdict(
            await closed_loop(args.ceiling_calls, concurrency, health_check, server)
        )
        results["get_catalogue"] = asdict(
            await closed_loop(args.ceiling_calls // 4, concurrency, catalogue, server)
        )
        results["create"] = asdict(await closed_loop(args.creates, concurrency, create, server))
        if len(ids) <= concurrency:
            raise RuntimeError("--creates must exceed --concurrency: updates need distinct ids")
        results["update"] = asdict(await closed_loop(args.updates, concurrency, update, server))
    return results


async def list_phase(service: Service, args: argparse.Namespace) -> dict[str, Any]:
    """First page of 100 with a filter, one call at a time, and the health Check beside it."""
    results: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(service.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = subscriptions_pb2_grpc.SubscriptionServiceStub(channel)
        meta = metadata(LIST_TENANT)
        check = health_pb2.HealthCheckRequest(service="")

        async def health_check() -> int:
            await health.Check(check, timeout=CALL_TIMEOUT)
            return 0

        def lister(**filters: Any) -> Callable[[], Awaitable[int]]:
            request = subscriptions_pb2.ListSubscriptionsRequest(page_size=100, **filters)

            async def call() -> int:
                reply = await stub.ListSubscriptions(request, metadata=meta, timeout=CALL_TIMEOUT)
                return len(reply.subscriptions)

            return call

        cases: dict[str, Callable[[], Awaitable[int]]] = {
            "health_check": health_check,
            "no_filter": lister(),
            "entity": lister(entity="User"),
            "name_contains": lister(name_contains=WORDS[1]),
            "active_true": lister(active=True),
            "name_contains_rare": lister(name_contains=RARE_WORD),
        }
        for name, call in cases.items():
            results[name] = asdict(await sequential_latency(args.list_calls, call))
    return results


def run_store(kind: str, args: argparse.Namespace, nats: NatsServer, root: Path) -> dict[str, Any]:
    store = Store(kind, root / kind)
    key = new_key()
    result: dict[str, Any] = {"store": kind}
    try:
        ceiling_env = store.environment("ceiling", nats.url, free_port(), key)
        print(f"[{kind}] storage ceilings, in-process ({args.creates} creates) ...", flush=True)
        result["storage"] = storage_ceilings(
            load_settings(ceiling_env), args.creates, args.concurrency
        )

        env = store.environment("service", nats.url, free_port(), key)
        settings = load_settings(env)
        service = Service(env, root / f"service-{kind}.log")
        if args.profile:
            service.profile = args.profile / f"{kind}-grpc-phase.txt"
        print(f"[{kind}] gRPC: ceilings, {args.creates} creates, {args.updates} updates ...")
        with running(service) as startup:
            result["startup_seconds_empty"] = round(startup, 2)
            result["grpc"] = asyncio.run(grpc_phase(service, args))

        print(f"[{kind}] seeding {args.list_size} subscriptions in-process ...", flush=True)
        result["seed"] = seed_listing(settings, args.list_size)
        print(f"[{kind}] list latency ({args.list_calls} calls each) ...", flush=True)
        if args.profile:
            service.profile = args.profile / f"{kind}-list-phase.txt"
        with running(service) as startup:
            result["startup_seconds_seeded"] = round(startup, 2)
            result["relay_catch_up"] = asyncio.run(
                wait_for_relay(settings, args.list_size, limit=900.0)
            )
            result["list"] = asyncio.run(list_phase(service, args))
    finally:
        store.drop()
    return result


# Report


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2f}" if whole else "-"


def report(result: dict[str, Any], targets: dict[str, float]) -> list[str]:
    grpc_r, storage = result["grpc"], result["storage"]
    health = grpc_r["health_check"]["per_second"]
    bare = storage["eventsourcing_save"]["per_second"]
    app = storage["app_create_subscription"]["per_second"]
    concurrency = grpc_r["create"]["concurrency"]
    lines = [
        f"== {result['store']} ==",
        f"{'throughput (concurrency ' + str(concurrency) + ')':<44}{'rate':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'srv CPU us':>11}"
        f"{'/ gRPC':>8}{'/ store':>9}{'/ app':>7}",
    ]

    def row(label: str, figures: dict[str, Any], ratios: bool) -> None:
        cpu = figures.get("server_cpu_us_per_op")
        rate = figures["per_second"]
        lines.append(
            f"{label:<44}{_rate(rate):>10}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
            f"{(f'{cpu:,.0f}' if cpu is not None else '-'):>11}"
            + (
                f"{_ratio(rate, health):>8}{_ratio(rate, bare):>9}{_ratio(rate, app):>7}"
                if ratios
                else ""
            )
        )

    row("gRPC ceiling: health Check", grpc_r["health_check"], False)
    row("gRPC GetCatalogue (auth, ~large reply)", grpc_r["get_catalogue"], True)
    row("storage ceiling: eventsourcing save", storage["eventsourcing_save"], False)
    row("storage ceiling: app create, in-process", storage["app_create_subscription"], False)
    row("CreateSubscription via gRPC", grpc_r["create"], True)
    row("UpdateSubscription (webhook) via gRPC", grpc_r["update"], True)
    seed, relay = result["seed"], result["relay_catch_up"]
    lines.append(
        f"seeded {seed['subscriptions']:,} subscriptions in-process at "
        f"{_rate(seed['per_second'])}; relay then published {relay['messages']:,} messages "
        f"in {relay['seconds']} s; start-up with them {result['startup_seconds_seeded']} s"
    )
    listing = result["list"]
    health_p99 = listing["health_check"]["p99_ms"]
    lines.append(
        f"{'ListSubscriptions, first page of 100':<44}{'rows':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'mean ms':>11}{'p99/health p99':>16}"
    )
    labels = {
        "health_check": "ceiling: health Check (same channel)",
        "no_filter": "no filter",
        "entity": "entity=User (1 row in 7)",
        "name_contains": f"name_contains={WORDS[1]} (1 row in 10)",
        "active_true": "active=true (1 row in 2)",
        "name_contains_rare": f"name_contains={RARE_WORD} (1 row in {RARE_EVERY})",
    }
    for name, label in labels.items():
        figures = listing[name]
        lines.append(
            f"{label:<44}{figures['rows']:>10}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
            f"{figures['mean_ms']:>11.2f}{_ratio(figures['p99_ms'], health_p99):>16}"
        )
    creates = grpc_r["create"]["per_second"]
    worst = max(listing[n]["p99_ms"] for n in ("entity", "name_contains", "active_true"))
    lines.append(
        f"targets: creates {_rate(creates)} vs >= {_rate(targets['creates'])} "
        f"({'met' if creates >= targets['creates'] else 'MISSED'}); filtered list p99 "
        f"{worst:.2f} ms vs < {targets['list_p99_ms']:.0f} ms "
        f"({'met' if worst < targets['list_p99_ms'] else 'MISSED'})"
    )
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--creates", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--list-size", type=int, default=100_000)
    parser.add_argument("--list-calls", type=int, default=500, help="calls per list case")
    parser.add_argument("--ceiling-calls", type=int, default=10_000, help="health Check calls")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the service under bench/profiled_service.py (cProfile, CPU time, every "
        "thread) and write its profiles to DIR; profiled figures are not comparable",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.creates, args.updates, args.list_size = 300, 300, 2000
        args.list_calls, args.ceiling_calls = 100, 1000
    if args.creates <= args.concurrency:
        parser.error("--creates must exceed --concurrency")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    targets = {"creates": 1000.0, "list_p99_ms": 20.0}
    command = " ".join(["python", "bench/subscriptions.py", *sys.argv[1:]])
    started = datetime.now(UTC)
    root = Path(tempfile.mkdtemp(prefix="bench-subscriptions-"))
    results: list[dict[str, Any]] = []
    try:
        for kind in stores:
            # A broker per store: the relay resumes from the last message on the stream.
            nats = NatsServer(root / f"nats-{kind}")
            nats.start()
            try:
                results.append(run_store(kind, args, nats, root))
            finally:
                nats.stop()
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)
        else:
            print(f"kept {root}")
    print()
    print(f"command: {command}")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for result in results:
        print()
        print("\n".join(report(result, targets)))
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "benchmark": "subscriptions",
        "command": command,
        "started": started.isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "arguments": vars(args),
        "targets": targets,
        "results": results,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
