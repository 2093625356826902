"""End-to-end benchmark: PublishEvents -> router -> DELIVERIES -> sender -> HTTPS receiver.

The whole platform runs as separate processes, as compose runs it
(``tests.support.platform_stack.running_platform``: a nats-server, ``webhooks serve``
subscriptions, ``--routers`` routers, ``--senders`` senders sharing their durable consumers,
failures; SQLite), traces sampled as in production (``parentbased_traceidratio`` 0.01,
``--traced`` for the SDK default). The receiver is nginx (``bench.sender.Nginx``: one
process, HTTPS on ``--endpoints`` ports under the platform's test CA, 204 to every POST)
writing one line per request: its own receipt time (``$msec``, wall clock, ms) and the
``webhook-id`` header, the delivery id. The delivery id is the router's
``uuid5(event id:subscription id)``, so every receipt maps back to its event, and the event
carries its publish time in ``occurred_at`` (set, wall clock, right before the
PublishEvents call that carries it): latency = receipt - occurred_at, both from the same
host's clock.

One run:

1. ``wrk -c64`` against the receiver: what it does (C, keep-alive), far above the rest.
2. The raw client ceiling: one Python process (``bench.sender.raw_loop``) POSTing the same
   bodies to the same URLs, one aiohttp session, ``--raw-concurrency`` in flight; before
   and after the throughput cases, the mean.
3. Throughput at fan-out 1 and 10 (a tenant each, 1 and 10 REST subscriptions of Object
   OnNew spread over the ports): ``--events`` (fan-out 1) / ``--events / 10`` events in
   PublishEvents calls of ``--batch``, ``--calls`` calls in flight, round-robin over the
   routers, with at most ``--window`` deliveries outstanding (published, not yet received)
   so the load is what the pipeline sustains, not a backlog that the router builds first.
   ``deliveries/s`` = the middle 80 % of the receipts over their receiver-side time span;
   ``events/s`` = that ÷ fan-out. CPU of every process (``/proc``) over the same span, and
   of the machine (``/proc/stat``): where the CPU goes, and what other work took.
4. Latency at a fixed offered load (``--rate`` events/s, default 1,000) at fan-out 1:
   PublishEvents calls of ``--per-call`` events at a steady pace (open loop) for
   ``--seconds`` after 1 s of warm-up, on a tenant of its own; p50/p95/p99 of receipt -
   occurred_at, and each delivery's time split into stages: ingest (to the event's stored
   time on EVENTS), route (to the router publishing the job, seen by a core subscription
   here), sender (to the attempt's started_at on ATTEMPTS) and https (to the receipt).

Prints a table, writes ``bench/results/e2e-<UTC>.json``.
Every service runs with its Prometheus endpoint (``--no-metrics``: none), as ``webhooks up``
runs them; nothing scrapes them during the run.
Usage: .venv/bin/python bench/e2e.py [--quick] [--routers 1] [--senders 2]
Targets (issue 6): >= 3,000 deliveries/s sustained at fan-out 1; p99 <= 50 ms at 1,000
events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support and bench.*

import grpc.aio  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402

from bench.router import percentile, steady  # noqa: E402
from bench.sender import Nginx, build_jobs, cpu_seconds, run_raw_child, wrk  # noqa: E402
from tests.support.platform_stack import (  # noqa: E402
    Platform,
    new_tenant,
    platform_event,
    rest,
    running_platform,
)
from tests.support.platform_stack import platform as metadata_for  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from webhooks.v1 import messages_pb2, router_pb2, subscriptions_pb2  # noqa: E402
from webhooks_messaging.jobs import delivery_id_for, routed_job_id  # noqa: E402

RESULTS = REPO / "bench" / "results"
POLL_SECONDS = 0.05  # how often the receiver's log is read
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}
# Every service with its Prometheus endpoint, as `webhooks up` and compose run them (port 0:
# replicas each bind their own); --no-metrics for the figures without.
METRICS = {
    f"WEBHOOKS_{service.upper()}_METRICS_ADDR": "127.0.0.1:0"
    for service in ("subscriptions", "router", "sender", "failures", "console")
}
ACCEPTED = router_pb2.PUBLISH_STATUS_ACCEPTED
TARGET_DELIVERIES = 3000
TARGET_P99_MS = 50.0


# ---- CPU accounting


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds the machine has been busy (``/proc/stat``, all cores), and of them the
    kernel's interrupt handling (irq + softirq: loopback TCP mostly, charged to no process)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, (fields[5] + fields[6]) / tick


@dataclass
class Cpu:
    """CPU seconds of our processes by role, and of the machine, at one moment."""

    at: float
    roles: dict[str, float]
    machine: float
    irq: float

    @staticmethod
    def snapshot(pids: dict[str, list[int]]) -> Cpu:
        roles: dict[str, float] = {}
        for role, ids in pids.items():
            total = 0.0
            for pid in ids:
                with contextlib.suppress(OSError):
                    total += cpu_seconds(pid)
            roles[role] = total
        return Cpu(time.monotonic(), roles, *machine_busy_seconds())

    def until(self, later: Cpu) -> dict[str, float]:
        """Cores used by role between the two snapshots, plus ``irq`` (the kernel's
        interrupt handling), ``others`` (the rest of the machine: other sessions' work) and
        ``machine`` (all of it)."""
        wall = max(later.at - self.at, 1e-6)
        shares = {r: (later.roles[r] - self.roles[r]) / wall for r in self.roles}
        shares["irq"] = (later.irq - self.irq) / wall
        shares["machine"] = (later.machine - self.machine) / wall
        shares["others"] = shares["machine"] - sum(v for r, v in shares.items() if r != "machine")
        return {r: round(v, 3) for r, v in shares.items()}


def process_ids(stack: Platform, nginx: Nginx) -> dict[str, list[int]]:
    def pids(processes: list[Any]) -> list[int]:
        return [p.process.pid for p in processes if p.process is not None]

    nats = stack.nats._process if stack.nats is not None else None
    return {
        "nats": [nats.pid] if nats is not None else [],
        "router": pids(stack.routers),
        "sender": pids(stack.senders),
        "failures": pids([stack.failures_process] if stack.failures_process else []),
        "subscriptions": pids([stack.subscriptions]),
        "nginx": [nginx.process.pid] if nginx.process is not None else [],
        "bench": [os.getpid()],
    }


# ---- the receiver's side


@dataclass
class Receipts:
    """The receiver's log read as it grows: the first receipt time of every webhook-id."""

    path: Path
    at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    offset: int = 0
    rest: bytes = b""
    grew: asyncio.Event = field(default_factory=asyncio.Event)
    watching: dict[str, float] = field(default_factory=dict)  # expected id -> occurred_at
    received: int = 0  # of the watched ids
    on_poll: list[Callable[[], None]] = field(default_factory=list)

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            stamp, _, delivery = line.decode().partition(" ")
            if delivery == "-" or not delivery:
                continue  # the raw loop and wrk send no webhook-id
            if delivery in self.at:
                self.duplicates += 1
                continue
            self.at[delivery] = float(stamp)
            if delivery in self.watching:
                self.received += 1
        for callback in self.on_poll:
            callback()
        if lines:
            self.grew.set()

    async def follow(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(POLL_SECONDS)

    def watch(self, expected: dict[str, float]) -> None:
        self.watching = expected
        self.received = sum(1 for d in expected if d in self.at)

    async def wait_all(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while self.received < len(self.watching):
            if time.monotonic() > deadline:
                return False
            self.grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.grew.wait(), 0.5)
        return True


# ---- the load


@dataclass
class Case:
    name: str
    tenant: str
    subscriptions: list[subscriptions_pb2.Subscription]
    template: messages_pb2.PlatformEvent

    def events(self, count: int, tag: str) -> list[messages_pb2.PlatformEvent]:
        out = []
        run = uuid.uuid4().hex[:8]
        for i in range(count):
            event = messages_pb2.PlatformEvent()
            event.CopyFrom(self.template)
            event.event_id = f"e2e-{tag}-{run}-{i}"
            out.append(event)
        return out

    def stamp(
        self,
        events: list[messages_pb2.PlatformEvent],
        expected: dict[str, float],
        event_of: dict[str, str] | None = None,
    ) -> None:
        """Dates the events now (their publish time) and expects one delivery per
        subscription of each, keyed by its delivery id (the router's); ``event_of``: the
        event id of each delivery id."""
        now_ns = time.time_ns()
        for event in events:
            event.occurred_at.FromNanoseconds(now_ns)
            for subscription in self.subscriptions:
                delivery = delivery_id_for(routed_job_id(event.event_id, subscription.id))
                expected[delivery] = now_ns / 1e9
                if event_of is not None:
                    event_of[delivery] = event.event_id


async def publish_call(
    stack: Platform, router: int, case: Case, events: list[messages_pb2.PlatformEvent]
) -> None:
    reply = await stack.router_stub(router).PublishEvents(
        router_pb2.PublishEventsRequest(events=events),
        metadata=metadata_for(case.tenant),
        timeout=30,
    )
    refused = [r for r in reply.results if r.status != ACCEPTED]
    assert not refused, f"{len(refused)} events not accepted, e.g. {refused[:2]}"


async def warm_up(stack: Platform, receipts: Receipts, case: Case, count: int) -> None:
    """A few events through every router, every connection of every sender opened."""
    expected: dict[str, float] = {}
    events = case.events(count, "warm")
    case.stamp(events, expected)
    receipts.watch(expected)
    per = max(1, count // (4 * len(stack.routers)))
    await asyncio.gather(
        *(
            publish_call(stack, (i // per) % len(stack.routers), case, events[i : i + per])
            for i in range(0, count, per)
        )
    )
    if not await receipts.wait_all(60):
        raise RuntimeError(f"{case.name}: warm-up deliveries missing")


async def throughput(
    stack: Platform,
    receipts: Receipts,
    case: Case,
    events_total: int,
    args: argparse.Namespace,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    fanout = len(case.subscriptions)
    await warm_up(stack, receipts, case, min(200, events_total // 10 or 1))
    events = case.events(events_total, "tp")
    expected: dict[str, float] = {}
    receipts.watch(expected)
    deliveries = events_total * fanout
    published = 0  # events handed to PublishEvents
    chunks = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    next_chunk = 0
    # CPU snapshots when 10 % and 90 % of the deliveries have been received.
    marks: dict[int, Cpu] = {}

    def mark() -> None:
        for share in (10, 90):
            if share not in marks and receipts.received >= deliveries * share // 100:
                marks[share] = Cpu.snapshot(pids)

    receipts.on_poll.append(mark)

    async def publisher(index: int) -> None:
        nonlocal next_chunk, published
        while next_chunk < len(chunks):
            chunk = chunks[next_chunk]
            router = next_chunk % len(stack.routers)
            next_chunk += 1
            while published * fanout - receipts.received > args.window:
                receipts.grew.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(receipts.grew.wait(), 0.5)
            case.stamp(chunk, expected)
            published += len(chunk)
            await publish_call(stack, router, case, chunk)

    started = time.time()
    try:
        await asyncio.gather(*(publisher(i) for i in range(args.calls)))
        published_s = time.time() - started
        complete = await receipts.wait_all(120)
    finally:
        receipts.on_poll.remove(mark)
    times = sorted(receipts.at[d] for d in expected if d in receipts.at)
    n = len(times)
    lo, hi = n // 10, max(n // 10 + 1, n * 9 // 10 - 1)
    span = max(times[hi] - times[lo], 1e-6)
    rate = (hi - lo) / span
    cpu = marks[10].until(marks[90]) if 10 in marks and 90 in marks else {}
    per_delivery = {
        role: round(share / rate * 1e6, 1)
        for role, share in cpu.items()
        if role not in ("machine", "others", "irq")
    }
    return {
        "case": case.name,
        "fanout": fanout,
        "events": events_total,
        "deliveries": deliveries,
        "received": n,
        "complete": complete,
        "deliveries_per_s": round(rate),
        "events_per_s": round(rate / fanout),
        "overall_deliveries_per_s": round(n / max(times[-1] - started, 1e-6)),
        "publish_seconds": round(published_s, 2),
        "window": args.window,
        "cpu_cores": cpu,
        "cpu_us_per_delivery": per_delivery,
    }


async def latency(
    stack: Platform,
    receipts: Receipts,
    case: Case,
    args: argparse.Namespace,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    await warm_up(stack, receipts, case, 100)
    calls_per_s = args.rate / args.per_call
    total_calls = int(calls_per_s * (1.0 + args.seconds))
    warm_calls = int(calls_per_s * 1.0)
    chunks = [case.events(args.per_call, f"lat{i}") for i in range(total_calls)]
    expected: dict[str, float] = {}
    measured: dict[str, float] = {}
    event_of: dict[str, str] = {}
    receipts.watch(expected)
    call_ms: list[float] = []
    failed: dict[str, int] = {}
    snapshots: list[Cpu] = []
    # When the router sends each job (a core subscription sees it as it is published,
    # before DELIVERIES has stored it): splits the router's part from the sender's.
    jobs_sent: dict[str, float] = {}

    async def on_job(msg: Msg) -> None:
        jobs_sent[(msg.headers or {}).get("Nats-Msg-Id", "")] = time.time()

    # Either lane's jobs (deliveries.jobs. or deliveries.bulk.): beyond its standard rate
    # the tenant's events take the bulk lane (the router's lanes.py).
    tap = await stack.nc.subscribe(
        f"deliveries.*.{case.tenant}.>", cb=on_job, pending_msgs_limit=1 << 20
    )

    async def send(i: int) -> None:
        if i == warm_calls:
            snapshots.append(Cpu.snapshot(pids))
        chunk = chunks[i]
        stamped: dict[str, float] = {}
        case.stamp(chunk, stamped, event_of)
        expected.update(stamped)
        if i >= warm_calls:
            measured.update(stamped)
        t0 = time.perf_counter()
        try:
            await publish_call(stack, i % len(stack.routers), case, chunk)
        except Exception as error:  # an overloaded router is a figure, not a crash
            name = error.code().name if isinstance(error, grpc.aio.AioRpcError) else repr(error)
            failed[name] = failed.get(name, 0) + 1
            return
        if i >= warm_calls:
            call_ms.append((time.perf_counter() - t0) * 1e3)

    await steady(calls_per_s, total_calls / calls_per_s, send)
    snapshots.append(Cpu.snapshot(pids))
    complete = await receipts.wait_all(30)
    await tap.unsubscribe()
    job_at = {delivery_id_for(job_id): at for job_id, at in jobs_sent.items()}
    got = [(receipts.at[d] - t) * 1e3 for d, t in measured.items() if d in receipts.at]
    if not got:
        raise RuntimeError("latency: nothing received")
    # Where the time goes: when each event was stored on EVENTS (the broker's clock, the
    # same host's) and when its attempt started (the sender's record on ATTEMPTS).
    stored = await stream_times(
        stack, f"*.{case.tenant}.>", len(event_of), msg_id, stream="EVENTS"
    )  # either lane
    started = await stream_times(stack, f"attempts.{case.tenant}.>", len(event_of), attempt_start)
    stages: dict[str, list[float]] = {"ingest": [], "route": [], "sender": [], "https": []}
    for delivery, published in measured.items():
        at_event = stored.get(event_of[delivery])
        at_job = job_at.get(delivery)
        at_start = started.get(delivery)
        received = receipts.at.get(delivery)
        if at_event is None or at_job is None or at_start is None or received is None:
            continue
        stages["ingest"].append((at_event - published) * 1e3)  # PublishEvents -> EVENTS
        stages["route"].append((at_job - at_event) * 1e3)  # EVENTS -> job sent by the router
        stages["sender"].append((at_start - at_job) * 1e3)  # stored, fetched, attempt started
        stages["https"].append((received - at_start) * 1e3)  # attempt -> receipt
    return {
        "case": case.name,
        "offered_events_per_s": args.rate,
        "events_per_call": args.per_call,
        "seconds": args.seconds,
        "sent": len(measured),
        "received": len(got),
        "complete": complete,
        "failed_calls": failed,
        "p50_ms": round(percentile(got, 0.50), 1),
        "p95_ms": round(percentile(got, 0.95), 1),
        "p99_ms": round(percentile(got, 0.99), 1),
        "max_ms": round(max(got), 1),
        "publish_call_p50_ms": round(percentile(call_ms, 0.5), 1) if call_ms else None,
        "publish_call_p99_ms": round(percentile(call_ms, 0.99), 1) if call_ms else None,
        "cpu_cores": snapshots[0].until(snapshots[1]) if len(snapshots) == 2 else {},
        "stages_ms": {
            name: {
                "p50": round(percentile(values, 0.5), 1),
                "p99": round(percentile(values, 0.99), 1),
            }
            for name, values in stages.items()
            if values
        },
    }


async def stream_times(
    stack: Platform,
    subject: str,
    count: int,
    key: Callable[[Msg], str | tuple[str, float]],
    stream: str | None = None,
) -> dict[str, float]:
    """Every message on ``subject`` read once: key -> time (the message's stored time, or
    the time ``key`` returns with it); at most 60 s for ``count`` of them."""
    found: dict[str, float] = {}
    done = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        keyed = key(msg)
        if isinstance(keyed, tuple):
            found[keyed[0]] = keyed[1]
        else:
            found[keyed] = msg.metadata.timestamp.timestamp()
        if len(found) >= count:
            done.set()

    sub = await stack.js.subscribe(
        subject,
        stream=stream,
        cb=on_msg,
        ordered_consumer=True,
        pending_msgs_limit=1 << 20,
        pending_bytes_limit=1 << 30,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 60)
    await sub.unsubscribe()
    return found


def msg_id(msg: Msg) -> str:
    return str((msg.headers or {})["Nats-Msg-Id"])


def attempt_start(msg: Msg) -> tuple[str, float]:
    record = messages_pb2.AttemptRecord.FromString(msg.data)
    return record.delivery_id, record.started_at.ToNanoseconds() / 1e9


# ---- the run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sampler = ({} if args.traced else SAMPLED) | ({} if args.no_metrics else METRICS)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        profilers: list[subprocess.Popen[bytes]] = []
        async with running_platform(
            root / "platform", routers=args.routers, senders=args.senders, env=sampler
        ) as stack:
            ports = [free_port() for _ in range(args.endpoints)]
            nginx = Nginx(root / "nginx", stack.pki, ports, receipts_log=root / "receipts.log")
            receipts = Receipts(root / "receipts.log")
            follower: asyncio.Task[None] | None = None
            try:
                nginx.start()
                follower = asyncio.create_task(receipts.follow())
                cases = {}
                # A tenant per case (the latency case's own: its EVENTS and ATTEMPTS are
                # read back), Object OnNew subscriptions spread over the receiver's ports.
                for key, fanout in (("1", 1), ("10", 10), ("latency", 1)):
                    tenant = new_tenant(f"e2e{key}")
                    created = []
                    for i in range(fanout):
                        url = f"https://127.0.0.1:{ports[i % len(ports)]}/hooks/{key}/{i}"
                        spec = rest(f"e2e {key} #{i}", url, retries=3)
                        created.append((await stack.create_subscription(tenant, spec)).subscription)
                    template = platform_event(tenant, "Object", "OnNew")
                    cases[key] = Case(f"fan-out {fanout}", tenant, created, template)
                subscriptions = cases["1"].subscriptions + cases["10"].subscriptions
                urls = [s.webhook.url for s in subscriptions]
                sample = build_jobs(subscriptions, 64, 0.0)
                bodies = [messages_pb2.DeliveryJob.FromString(d).payload_json for _, d, _ in sample]
                body_file = root / "bodies.json"
                body_file.write_text(json.dumps([b.decode() for b in bodies]))
                receiver = await asyncio.to_thread(
                    wrk, urls[0], bodies[0], root, 64, args.wrk_seconds
                )
                print(f"receiver: nginx, {len(ports)} HTTPS ports, wrk -c64 {receiver:,.0f} req/s")
                raw_config = {
                    "urls": urls,
                    "bodies": str(body_file),
                    "ca_file": str(stack.pki.ca_file),
                    "concurrency": args.raw_concurrency,
                    "warmup": 1.0,
                    "seconds": args.raw_seconds,
                }
                raws = [await asyncio.to_thread(run_raw_child, raw_config, root)]
                print(f"raw aiohttp loop (before): {raws[0]['requests_per_s']:,} req/s")
                pids = process_ids(stack, nginx)
                if args.profile:
                    profilers = start_profilers(Path(args.profile), pids)
                results = []
                sizes = {1: args.events, 10: max(args.events // 10, 100)}
                for fanout in (1, 10):
                    case = cases[str(fanout)]
                    row = await throughput(stack, receipts, case, sizes[fanout], args, pids)
                    results.append(row)
                    print(
                        f"{row['case']}: {row['events_per_s']:,} events/s, "
                        f"{row['deliveries_per_s']:,} deliveries/s, cores {row['cpu_cores']}"
                    )
                lat = await latency(stack, receipts, cases["latency"], args, pids)
                print(
                    f"latency at {args.rate:,.0f} events/s ({args.per_call}/call): "
                    f"p50 {lat['p50_ms']} p95 {lat['p95_ms']} p99 {lat['p99_ms']} ms, "
                    f"cores {lat['cpu_cores']}"
                )
                stop_profilers(profilers)
                raws.append(await asyncio.to_thread(run_raw_child, raw_config, root))
                print(f"raw aiohttp loop (after): {raws[1]['requests_per_s']:,} req/s")
            finally:
                stop_profilers(profilers)
                if follower is not None:
                    follower.cancel()
                nginx.stop()
        ceiling = sum(r["requests_per_s"] for r in raws) / len(raws)
        for row in results:
            row["ratio_to_raw"] = round(row["deliveries_per_s"] / ceiling, 3)
    return {
        "meta": {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            "routers": args.routers,
            "senders": args.senders,
            "traces_sampler": {k: v for k, v in sampler.items() if k.startswith("OTEL_")}
            or "SDK default (parentbased_always_on)",
            "metrics": not args.no_metrics,
            "endpoints": args.endpoints,
            "batch": args.batch,
            "calls_in_flight": args.calls,
            "window": args.window,
            "quick": args.quick,
        },
        "receiver_wrk_requests_per_s": round(receiver),
        "raw_loop": {
            "requests_per_s": round(ceiling),
            "concurrency": args.raw_concurrency,
            "before": raws[0],
            "after": raws[1],
        },
        "throughput": results,
        "latency": lat,
        "duplicates_at_receiver": receipts.duplicates,
    }


def start_profilers(directory: Path, pids: dict[str, list[int]]) -> list[subprocess.Popen[bytes]]:
    """py-spy (raw stacks) on every router and sender, until stop_profilers."""
    directory.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    started = []
    for role in ("router", "sender", "failures"):
        for index, pid in enumerate(pids[role]):
            out = directory / f"{role}-{index + 1}.txt"
            command = [spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
            command.append("--nonblocking")  # sampled without pausing: latencies hold
            started.append(
                subprocess.Popen(
                    [*command, "--output", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return started


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        if profiler.poll() is None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for profiler in profilers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(30)
    profilers.clear()


def show(report: dict[str, Any]) -> None:
    meta = report["meta"]
    raw = report["raw_loop"]["requests_per_s"]
    roles = ("nats", "router", "sender", "failures", "nginx", "bench", "irq", "others")
    print(
        f"\n== end to end: {meta['routers']} router(s), {meta['senders']} sender(s), "
        f"sampler {meta['traces_sampler']}; load average {meta['load_before'][0]:.2f} "
        f"before, {meta['load_after'][0]:.2f} after =="
    )
    print(
        f"{'case':<34} {'events/s':>9} {'dlv/s':>7} {'/raw':>5}  "
        + " ".join(f"{r:>8}" for r in roles)
        + "   (cores)"
    )
    print(
        f"{'receiver: nginx, wrk -c64 (C)':<34} {'':>9} {report['receiver_wrk_requests_per_s']:>7,}"
    )
    print(
        f"{'raw aiohttp loop, 1 process':<34} {'':>9} {raw:>7,} {1.0:>5.2f}  "
        f"(c={report['raw_loop']['concurrency']}; before "
        f"{report['raw_loop']['before']['requests_per_s']:,}, after "
        f"{report['raw_loop']['after']['requests_per_s']:,})"
    )
    for row in report["throughput"]:
        cores = row["cpu_cores"]
        print(
            f"{row['case'] + ' (' + format(row['events'], ',') + ' events)':<34} "
            f"{row['events_per_s']:>9,} {row['deliveries_per_s']:>7,} {row['ratio_to_raw']:>5.2f}  "
            + " ".join(f"{cores.get(r, 0):>8.2f}" for r in roles)
        )
        per = row["cpu_us_per_delivery"]
        print(
            f"{'  CPU us per delivery':<34} {'':>9} {'':>7} {'':>5}  "
            + " ".join(f"{per.get(r, 0):>8.0f}" for r in roles[:-2])
        )
    lat = report["latency"]
    cores = lat["cpu_cores"]
    label = f"latency {lat['offered_events_per_s']:,.0f}/s, {lat['events_per_call']}/call"
    print(
        f"{label:<34} p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  p99 {lat['p99_ms']} ms  "
        f"max {lat['max_ms']} ms  ({lat['received']:,}/{lat['sent']:,} received; PublishEvents "
        f"p50 {lat['publish_call_p50_ms']} p99 {lat['publish_call_p99_ms']} ms)"
    )
    print(
        f"{'':<34} {'':>9} {'':>7} {'':>5}  " + " ".join(f"{cores.get(r, 0):>8.2f}" for r in roles)
    )
    stages = "; ".join(
        f"{name} p50 {v['p50']} p99 {v['p99']} ms" for name, v in lat["stages_ms"].items()
    )
    print(f"{'  stages':<34} {stages}")
    fan1 = report["throughput"][0]
    ok_rate = fan1["deliveries_per_s"] >= TARGET_DELIVERIES
    ok_p99 = lat["p99_ms"] <= TARGET_P99_MS
    print(
        f"targets: fan-out 1 {fan1['deliveries_per_s']:,} deliveries/s vs >= "
        f"{TARGET_DELIVERIES:,} ({'met' if ok_rate else 'MISSED'}); p99 {lat['p99_ms']} ms vs "
        f"<= {TARGET_P99_MS:.0f} ms ({'met' if ok_p99 else 'MISSED'}); duplicates at the "
        f"receiver {report['duplicates_at_receiver']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 60 s)")
    parser.add_argument("--routers", type=int, default=1)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--events", type=int, default=30_000, help="events at fan-out 1")
    parser.add_argument("--batch", type=int, default=100, help="events per PublishEvents call")
    parser.add_argument("--calls", type=int, default=4, help="PublishEvents calls in flight")
    parser.add_argument("--window", type=int, default=6000, help="deliveries outstanding")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency: events/s")
    parser.add_argument("--per-call", type=int, default=10, help="latency: events per call")
    parser.add_argument("--seconds", type=float, default=15.0, help="latency: measured s")
    parser.add_argument("--endpoints", type=int, default=4, help="receiver ports")
    parser.add_argument("--raw-concurrency", type=int, default=64)
    parser.add_argument("--raw-seconds", type=float, default=4.0)
    parser.add_argument("--wrk-seconds", type=float, default=2.0)
    parser.add_argument("--traced", action="store_true", help="SDK default sampler (all)")
    parser.add_argument("--no-metrics", action="store_true", help="no metrics endpoints")
    parser.add_argument("--keep", metavar="DIR", help="work in (and keep) DIR: logs")
    parser.add_argument("--profile", metavar="DIR", help="py-spy routers/senders into DIR")
    parser.add_argument("--results", metavar="DIR", default=str(RESULTS), help="JSON goes here")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = min(args.events, 3000)
        args.seconds = min(args.seconds, 4.0)
        args.raw_seconds = min(args.raw_seconds, 2.0)
        args.wrk_seconds = 1.0
    report = asyncio.run(run(args))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"e2e-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    show(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
