"""Router benchmark: routed events/s by fan-out, PublishEvents -> job latency, table build.

The router runs as a separate process (``python -m webhooks_cli serve router``) on a fresh
nats-server per case. Each figure comes with a ceiling measured in the same run:

- routing: N events are published straight onto EVENTS with F subscriptions matching each
  (states published onto SUBSCRIPTIONS), then the router is started; the rate is N*F jobs
  over the span of their own stored times on DELIVERIES, first job to last.
  Ceiling: this process publishing N*F job-sized messages onto DELIVERIES
  (pipelined js.publish, Nats-Msg-Id), before and after the routing; the better of the two.
- latency: one event per PublishEvents call at a steady rate (default 1,000/s), time from
  the call's start to the job arriving at a push consumer of DELIVERIES. Ceiling: js.publish
  -> push consumer of the same size at the same rate on the same NATS.
- table build: S subscription states on SUBSCRIPTIONS, then the router is started; the
  router's own "SUBSCRIPTIONS projection built: N subscriptions in X s" and the wall time from spawn
  to health SERVING plus that line. Ceiling: reading the S messages with an ordered
  consumer in this process.

Usage: .venv/bin/python bench/router.py [--quick] [--cases route1,...] [--profile DIR]
Targets (issue 3): >= 10,000 events/s at fan-out 1; p99 < 10 ms at 1,000 events/s;
100k table build < 10 s. Writes bench/results/router-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

import grpc.aio  # noqa: E402
import nats  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig  # noqa: E402

from tests.support import NatsServer, free_port  # noqa: E402
from webhooks.v1 import common_pb2, messages_pb2, router_pb2, router_pb2_grpc  # noqa: E402
from webhooks_config import load_settings  # noqa: E402
from webhooks_messaging import declare_streams  # noqa: E402

TENANT = "bench"
TOKEN = "bench-router-" + uuid.uuid4().hex
RESULTS = REPO / "bench" / "results"
PIPELINE = 2000  # js.publish calls in flight
PROFILE_DIR: Path | None = None  # --profile: py-spy output of every router process
# Logged by webhooks_messaging.feed once the table holds what SUBSCRIPTIONS held at start.
BUILT = re.compile(r"SUBSCRIPTIONS projection built: (\d+) subscriptions in ([\d.]+) s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Env:
    tmp: Path
    server: NatsServer
    js: JetStreamContext
    nc: Any


@contextlib.asynccontextmanager
async def fresh_nats(root: Path, name: str) -> AsyncIterator[Env]:
    tmp = root / name
    server = NatsServer(tmp / "nats" / "store")
    server.start()
    nc = await nats.connect(server.url, pending_size=1 << 28)
    js = nc.jetstream()
    await declare_streams(js, load_settings({"WEBHOOKS_NATS_URL": server.url}))
    try:
        yield Env(tmp, server, js, nc)
    finally:
        await nc.close()
        server.stop()


class Router:
    def __init__(self, env: Env) -> None:
        self.port = free_port()
        self.log = env.tmp / "router.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")} | {
            "WEBHOOKS_NATS_URL": env.server.url,
            "WEBHOOKS_ROUTER_ADDR": f"127.0.0.1:{self.port}",
            "WEBHOOKS_DATA_DIR": str(env.tmp / "data"),
            "WEBHOOKS_TOKENS": json.dumps([{"name": "b", "token": TOKEN, "tenant": "*"}]),
            "WEBHOOKS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.profiler: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def spawn(self) -> None:
        self.started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "webhooks_cli", "serve", "router"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if PROFILE_DIR is not None:
            # py-spy samples the router process until stop(); flamegraph-ready "raw" output.
            out = PROFILE_DIR / f"{self.log.parent.name}.txt"
            self.profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                 str(self.process.pid), "--rate", "250", "--format", "raw", "--output",
                 str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip

    async def serving(self) -> float:
        """Seconds from spawn until health SERVING."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                assert self.process is not None and self.process.poll() is None, self.log
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.monotonic() - self.started
                await asyncio.sleep(0.02)

    async def table_built(self) -> tuple[int, float, float]:
        """(subscriptions, the router's own build seconds, wall seconds since spawn)."""
        while True:
            found = BUILT.search(self.log.read_text(errors="replace"))
            if found:
                return int(found[1]), float(found[2]), time.monotonic() - self.started
            await asyncio.sleep(0.02)

    def cpu_seconds(self) -> float:
        """User + system CPU the router process has used so far (Linux)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self.profiler.wait(30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
                self.profiler.wait()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def state(index: int, *, trigger: str = "OnNew") -> messages_pb2.SubscriptionState:
    s = messages_pb2.SubscriptionState(
        id=str(uuid.uuid4()),
        tenant=TENANT,
        name=f"bench {index}",
        entity="User",
        triggers=[common_pb2.TriggerSpec(trigger=trigger)],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url=f"https://hooks.example.com/{index}"
        ),
        retry_policy=common_pb2.RetryPolicy(retries=3, interval_seconds=300),
        active=True,
        version=1,
        signing_secret="gAAAAA" + "x" * 120,
    )
    s.created_at.GetCurrentTime()
    s.updated_at.GetCurrentTime()
    return s


async def pipelined(js: JetStreamContext, items: list[tuple[str, bytes, dict[str, str]]]) -> None:
    for start in range(0, len(items), PIPELINE):
        chunk = items[start : start + PIPELINE]
        await asyncio.gather(*(js.publish(s, d, headers=h) for s, d, h in chunk))


async def publish_subscriptions(js: JetStreamContext, count: int, trigger: str) -> None:
    items = []
    for i in range(count):
        st = state(i, trigger=trigger)
        domain = messages_pb2.SubscriptionDomainEvent(
            notification_id=i + 1, event_type="Subscription.Created", subscription=st
        )
        subject = f"subscriptions.{TENANT}.subscription.{st.id}"
        items.append((subject, domain.SerializeToString(), {"Nats-Msg-Id": f"subscriptions:{i}"}))
    await pipelined(js, items)


def platform_event(trigger: str = "OnNew") -> messages_pb2.PlatformEvent:
    e = messages_pb2.PlatformEvent(
        event_id=uuid.uuid4().hex,
        tenant=TENANT,
        entity="User",
        trigger=trigger,
        channel=4,
        data_json=json.dumps({"Id": 90211, "FirstName": "Dana", "Email": "d@example.com"}).encode(),
    )
    e.occurred_at.GetCurrentTime()
    return e


async def count(js: JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


JOB_BYTES_GUESS = 600  # a job of the routing cases (measured: 597-599 bytes)


async def ceiling_rate(js: JetStreamContext, jobs: int, size: int, tag: str) -> float:
    """Jobs/s of this process publishing ``jobs`` messages of ``size`` onto DELIVERIES."""
    payload = os.urandom(size)
    items = [
        (f"deliveries.jobs.{TENANT}.ceiling{i % 100}", payload, {"Nats-Msg-Id": f"{tag}{i}"})
        for i in range(jobs)
    ]
    t0 = time.monotonic()
    await pipelined(js, items)
    return jobs / (time.monotonic() - t0)


async def bench_routing(root: Path, fanout: int, events: int) -> dict[str, Any]:
    async with fresh_nats(root, f"route-{fanout}") as env:
        await publish_subscriptions(env.js, fanout, "OnNew")
        batch = [platform_event() for _ in range(events)]
        await pipelined(
            env.js,
            [
                (f"events.{TENANT}.User.OnNew", e.SerializeToString(), {"Nats-Msg-Id": e.event_id})
                for e in batch
            ],
        )
        jobs = events * fanout
        # Ceiling measured before and after the routing (the best of the two): on a shared
        # machine a single window can catch a quiet or a busy moment.
        before = await ceiling_rate(env.js, jobs, JOB_BYTES_GUESS, "b")
        await env.js.purge_stream("DELIVERIES")
        router = Router(env)
        router.spawn()
        try:
            await router.serving()
            # The router may route before its health says SERVING: what it routed by then
            # is left out of the CPU figure (counted here), and the rate is taken from the
            # jobs' own timestamps on DELIVERIES, first to last, not from this clock.
            cpu_first = router.cpu_seconds()
            routed_before = await count(env.js, "DELIVERIES")
            while await count(env.js, "DELIVERIES") < jobs:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            # The router's own CPU per event: less at the mercy of a shared machine.
            cpu = router.cpu_seconds() - cpu_first
            # The ceiling's messages before were purged: the jobs start after them.
            info = (await env.js.stream_info("DELIVERIES")).state
            first_job = await env.js.get_msg("DELIVERIES", seq=info.first_seq)
            last_job = await env.js.get_msg("DELIVERIES", seq=info.last_seq)
            job_size = len(first_job.data or b"")
        finally:
            router.stop()
        assert first_job.time is not None and last_job.time is not None
        # Stored times of the first and the last job: N jobs span N - 1 intervals.
        seconds = max((last_job.time - first_job.time).total_seconds(), 1e-6) * jobs / (jobs - 1)
        # None when everything was routed before SERVING (small runs): nothing to divide.
        cpu_us = (
            round(cpu / (jobs - routed_before) * fanout * 1e6, 1) if jobs > routed_before else None
        )
        await env.js.purge_stream("DELIVERIES")
        ceiling = max(before, await ceiling_rate(env.js, jobs, job_size, "a"))
        return {
            "case": f"route fan-out {fanout}",
            "events": events,
            "jobs": jobs,
            "job_bytes": job_size,
            "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds),
            "jobs_per_s": round(jobs / seconds),
            "ceiling_jobs_per_s": round(ceiling),
            "ratio": round(jobs / seconds / ceiling, 3),
            "router_cpu_us_per_event": cpu_us,
            "routed_before_serving": routed_before,
        }


async def steady(rate: float, seconds: float, send: Any) -> None:
    interval = 1 / rate
    start = time.monotonic()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


async def bench_latency(
    root: Path, rate: float, seconds: float, per_call: int = 1
) -> dict[str, Any]:
    """``rate`` events/s sent as ``rate / per_call`` PublishEvents calls of ``per_call``."""
    async with fresh_nats(root, f"latency-{per_call}") as env:
        await publish_subscriptions(env.js, 1, "OnNew")
        router = Router(env)
        router.spawn()
        try:
            await router.serving()
            await router.table_built()
            sent: dict[str, float] = {}
            latencies: list[float] = []
            failures: dict[str, int] = {}

            async def on_job(msg: Msg) -> None:
                job = messages_pb2.DeliveryJob.FromString(msg.data)
                t = sent.get(job.event_id)
                if t is not None:
                    latencies.append(time.perf_counter() - t)
                await msg.ack()

            sub = await env.js.subscribe(
                f"deliveries.jobs.{TENANT}.>",
                cb=on_job,
                durable="bench-jobs",
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1),
            )
            async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                metadata = (("authorization", f"Bearer {TOKEN}"), ("x-webhooks-tenant", TENANT))

                async def send(_: int) -> None:
                    events = [platform_event() for _ in range(per_call)]
                    now = time.perf_counter()
                    for e in events:
                        sent[e.event_id] = now
                    try:
                        await stub.PublishEvents(
                            router_pb2.PublishEventsRequest(events=events), metadata=metadata
                        )
                    except grpc.aio.AioRpcError as error:
                        # An overloaded router is a figure to report, not a crash.
                        failures[error.code().name] = failures.get(error.code().name, 0) + 1
                        for e in events:
                            sent.pop(e.event_id, None)

                calls = rate / per_call
                await steady(calls, 1.0, send)  # warm-up
                latencies.clear()
                sent.clear()
                # CPU used during the steady phase, as a share of one core: who saturates
                # first, the router or this client (grpc.aio calls, the job consumer)?
                wall0, client0, router0 = (
                    time.monotonic(),
                    time.process_time(),
                    router.cpu_seconds(),
                )
                await steady(calls, seconds, send)
                wall = time.monotonic() - wall0
                client_cpu = (time.process_time() - client0) / wall
                router_cpu = (router.cpu_seconds() - router0) / wall
                deadline = time.monotonic() + 10
                while len(latencies) < len(sent) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            received = len(latencies)
            router_lat = list(latencies)
            await sub.unsubscribe()
            # Ceiling: js.publish -> push consumer on the same NATS, same rate and size.
            ceiling: list[float] = []
            started: dict[str, float] = {}

            async def on_raw(msg: Msg) -> None:
                t = started.get((msg.headers or {}).get("Nats-Msg-Id", ""))
                if t is not None:
                    ceiling.append(time.perf_counter() - t)
                await msg.ack()

            raw = await env.js.subscribe(
                "deliveries.jobs.ceiling.>",
                cb=on_raw,
                durable="bench-raw",
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1),
            )
            payload = os.urandom(600)

            async def raw_send(i: int) -> None:
                key = f"raw-{i}-{uuid.uuid4().hex}"
                started[key] = time.perf_counter()
                await env.js.publish(
                    "deliveries.jobs.ceiling.x", payload, headers={"Nats-Msg-Id": key}
                )

            await steady(rate, seconds, raw_send)
            deadline = time.monotonic() + 10
            while len(ceiling) < len(started) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await raw.unsubscribe()
        finally:
            router.stop()
    p50, p99 = percentile(router_lat, 0.5) * 1e3, percentile(router_lat, 0.99) * 1e3
    c50, c99 = percentile(ceiling, 0.5) * 1e3, percentile(ceiling, 0.99) * 1e3
    return {
        "case": f"latency at {rate:.0f} events/s, {per_call}/call",
        "sent": int(rate * seconds),
        "received": received,
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "ceiling_p50_ms": round(c50, 2),
        "ceiling_p99_ms": round(c99, 2),
        "p99_ratio": round(p99 / c99, 2),
        "failed_calls": failures,
        "router_cpu_share": round(router_cpu, 2),
        "client_cpu_share": round(client_cpu, 2),
        "mean_ms": round(statistics.fmean(router_lat) * 1e3, 2),
    }


async def bench_table(root: Path, subscriptions: int) -> dict[str, Any]:
    async with fresh_nats(root, "table") as env:
        await publish_subscriptions(env.js, subscriptions, "OnNew")
        # Ceiling: read them all with an ordered consumer here.
        done = asyncio.Event()
        seen = 0

        async def on_msg(msg: Msg) -> None:
            nonlocal seen
            messages_pb2.SubscriptionDomainEvent.FromString(msg.data)
            seen += 1
            if seen >= subscriptions:
                done.set()

        t0 = time.monotonic()
        sub = await env.js.subscribe(
            "subscriptions.>",
            cb=on_msg,
            ordered_consumer=True,
            pending_msgs_limit=4 * 1024 * 1024,
            pending_bytes_limit=512 * 1024 * 1024,
        )
        await done.wait()
        ceiling = time.monotonic() - t0
        await sub.unsubscribe()
        router = Router(env)
        router.spawn()
        try:
            serving = await router.serving()
            built, own, wall = await router.table_built()
        finally:
            router.stop()
    return {
        "case": f"table build {subscriptions} subscriptions",
        "subscriptions": built,
        "router_build_s": own,
        "serving_s": round(serving, 2),
        "spawn_to_built_s": round(wall, 2),
        "ceiling_read_s": round(ceiling, 2),
        "ratio": round(own / ceiling, 2),
    }


def show(results: list[dict[str, Any]]) -> None:
    for r in results:
        case = r["case"]
        rest = "  ".join(f"{k}={v}" for k, v in r.items() if k != "case")
        print(f"{case:<34} {rest}")


async def run(args: argparse.Namespace) -> None:
    cases = set(args.cases.split(",")) if args.cases else None

    def wanted(name: str) -> bool:
        return cases is None or name in cases

    sizes = (
        {1: 2000, 10: 500, 1000: 10}
        if args.quick
        else {1: args.events, 10: args.events // 5, 1000: args.events // 200}
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        root = Path(tmp)
        for fanout, events in sizes.items():
            if not wanted(f"route{fanout}"):
                continue
            results.append(await bench_routing(root, fanout, events))
            show(results[-1:])
        seconds = 2.0 if args.quick else args.seconds
        for per_call in (1, 10):
            if not wanted(f"latency{per_call}"):
                continue
            results.append(await bench_latency(root, args.rate, seconds, per_call))
            show(results[-1:])
        if wanted("table"):
            results.append(await bench_table(root, 10_000 if args.quick else args.subscriptions))
            show(results[-1:])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"router-{stamp}.json"
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "traces_sampler": os.environ.get("OTEL_TRACES_SAMPLER", "(default: parentbased_always_on)"),
        "traces_sampler_arg": os.environ.get("OTEL_TRACES_SAMPLER_ARG", ""),
    }
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print("\n== router benchmark ==")
    show(results)
    print(f"written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (~1 min)")
    parser.add_argument("--events", type=int, default=100_000, help="events at fan-out 1")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    parser.add_argument("--subscriptions", type=int, default=100_000, help="table build size")
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated subset: route1,route10,route1000,latency1,latency10,table",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy every router process into DIR (raw stacks)"
    )
    args = parser.parse_args()
    if args.profile:
        global PROFILE_DIR
        PROFILE_DIR = Path(args.profile).resolve()
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
