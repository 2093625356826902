"""Sender benchmark: deliveries/s from preloaded jobs to an HTTPS receiver, against the raw
aiohttp loop to the same receiver measured in the same run.

What one run does:

1. A test CA and a server certificate (tests.support.receivers.TestPki); nginx under it as
   the receiver, one process (``master_process off``), listening on ``--endpoints`` ports
   (each port is its own endpoint origin, so the sender's per-endpoint limit applies per
   port), answering 204 to every POST. ``wrk`` (C, HTTPS, keep-alive) checks that this
   receiver does far more than either Python client below.
2. nats-server, and ``webhooks serve subscriptions`` as a process: ``--subscriptions`` REST
   subscriptions created through its gRPC API (entity Object, spread over the ports and
   paths), then the service is stopped once SUBSCRIPTIONS holds them (it plays no part in
   delivering).
3. Per tracing mode (``--modes``; default: ``traced`` then ``sampled``):
   - the raw client loop, the ceiling: one Python process (this script, ``--raw-child``)
     with one aiohttp ``ClientSession`` verifying TLS against the test CA, POSTing the same
     ~1 KiB bodies to the same URLs with ``--raw-concurrency`` requests in flight;
   - ``--jobs`` delivery jobs, built as the router builds them (shaped payload, job id,
     trace context), are published onto DELIVERIES while no sender runs;
   - ``webhooks serve sender`` is started; this process polls the ATTEMPTS stream's message
     count (a consumer decoding every record would compete with the sender for the CPU)
     until every job has its attempt record. Afterwards an ordered consumer reads the
     records of the run back and counts the outcomes, and DELIVERIES must be empty (every
     job acknowledged).
   ``deliveries/s`` is measured from the first attempt record to the last (the sender's
   import and start-up excluded); ``from spawn`` includes them.

Tracing modes (the sender's OpenTelemetry sampler; no exporter is configured, so spans are
built and ended but not shipped):
- ``traced``: the SDK default (parentbased_always_on); every job carries a sampled
  ``traceparent``, as the router sends it when it samples everything: a span per attempt;
- ``sampled``: ``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``..._ARG=0.01``, and 1 %
  of the jobs carry a sampled ``traceparent`` (the router's decision under the same
  sampler); the other 99 % get non-recording spans;
- ``off``: ``always_off``.

Usage: .venv/bin/python bench/sender.py [--jobs 20000] [--modes traced,sampled]
Targets (issue 4): >= 5,000 deliveries/s, and >= 0.5 of the raw loop (one process each).
Writes bench/results/sender-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

import aiohttp  # noqa: E402
import nats  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402
from nats.js.api import ConsumerConfig, DeliverPolicy  # noqa: E402

from tests.support import NatsServer, free_port  # noqa: E402
from tests.support.receivers import TestPki  # noqa: E402
from tests.support.service_process import ServiceProcess  # noqa: E402
from webhooks.v1 import (  # noqa: E402
    common_pb2,
    messages_pb2,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhooks_catalogue.samples import sample_data  # noqa: E402
from webhooks_catalogue.shaping import shape_payload  # noqa: E402
from webhooks_messaging import delivery_job_subject  # noqa: E402
from webhooks_messaging.jobs import delivery_job, new_delivery_id, routed_job_id  # noqa: E402
from webhooks_secrets import new_key  # noqa: E402

TENANT = "bench"
TOKEN = "bench-sender-" + uuid.uuid4().hex
RESULTS = REPO / "bench" / "results"
PIPELINE = 2000  # js.publish calls in flight while preloading
POLL_SECONDS = 0.01
RUN_TIMEOUT_SECONDS = 600.0
MODES: dict[str, dict[str, str]] = {
    "traced": {},  # the SDK default: parentbased_always_on
    "sampled": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    },
    "off": {"OTEL_TRACES_SAMPLER": "always_off"},
}
# Share of jobs whose traceparent says "sampled": what a router under the same sampler sends.
SAMPLED_SHARE = {"traced": 1.0, "sampled": 0.01, "off": 0.0}


# ---- the receiver


@dataclass
class Nginx:
    """nginx as one non-daemon process (no master), HTTPS on ``ports``, 204 to every POST."""

    root: Path
    pki: TestPki
    ports: list[int]
    process: subprocess.Popen[bytes] | None = None
    # With a path: one line per request, "<receipt time, s since the epoch, ms> <webhook-id>"
    # (buffered, flushed every 100 ms); bench/e2e.py reads it as it grows.
    receipts_log: Path | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        listens = "\n".join(f"    listen 127.0.0.1:{port} ssl;" for port in self.ports)
        access_log = "access_log off;"
        if self.receipts_log is not None:
            access_log = (
                "log_format receipt '$msec $http_webhook_id';\n"
                f"  access_log {self.receipts_log} receipt buffer=64k flush=100ms;"
            )
        config = self.root / "nginx.conf"
        config.write_text(
            f"""
daemon off;
master_process off;
worker_processes 1;
error_log {self.root}/error.log warn;
pid {self.root}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  {access_log}
  client_body_temp_path {self.root}/body;
  proxy_temp_path {self.root}/proxy;
  fastcgi_temp_path {self.root}/fastcgi;
  uwsgi_temp_path {self.root}/uwsgi;
  scgi_temp_path {self.root}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  server {{
{listens}
    ssl_certificate {self.pki.server_cert_file};
    ssl_certificate_key {self.pki.server_key_file};
    location / {{ return 204; }}
  }}
}}
"""
        )
        self.process = subprocess.Popen(
            ["/usr/sbin/nginx", "-e", str(self.root / "error.log"), "-p", str(self.root),
             "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "error.log").read_text(errors="replace"))
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.ports[-1]), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful; TERM is fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wrk(url: str, body: bytes, root: Path, connections: int, seconds: float) -> float:
    """Requests/s wrk (one thread) gets from ``url`` with POSTs of ``body`` (keep-alive)."""
    script = root / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        ["/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"the receiver answered non-2xx to wrk:\n{out}")
    return float(found[1])


# ---- the raw client loop (a child process: one process, like the sender)


async def raw_loop(config: dict[str, Any]) -> dict[str, Any]:
    """POST the bodies round-robin to the URLs with ``concurrency`` in flight: ``warmup``
    seconds, then ``seconds`` counted. One session, TLS verified against the test CA."""
    urls: list[str] = config["urls"]
    bodies: list[bytes] = config["bodies"]
    context = ssl.create_default_context(cafile=config["ca_file"])
    connector = aiohttp.TCPConnector(limit=config["concurrency"], ssl=context)
    timeout = aiohttp.ClientTimeout(total=15)
    headers = {"Content-Type": "application/json"}
    counting = False
    done = 0
    errors = 0
    stop = False

    async def worker(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        i = index
        while not stop:
            i += 1
            try:
                async with session.post(
                    urls[i % len(urls)], data=bodies[i % len(bodies)], headers=headers
                ) as response:
                    await response.read()
                    ok = 200 <= response.status < 300
            except (aiohttp.ClientError, OSError, TimeoutError):
                ok = False
            if counting:
                if ok:
                    done += 1
                else:
                    errors += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [asyncio.create_task(worker(i, session)) for i in range(config["concurrency"])]
        await asyncio.sleep(config["warmup"])
        counting = True
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(config["seconds"])
        counting = False
        cpu1, t1 = time.process_time(), time.monotonic()
        stop = True
        await asyncio.gather(*workers)
    return {
        "requests_per_s": round(done / (t1 - t0)),
        "requests": done,
        "errors": errors,
        "cpu_us_per_request": round((cpu1 - cpu0) / max(done, 1) * 1e6, 1),
        "cpu_share": round((cpu1 - cpu0) / (t1 - t0), 2),
    }


def run_raw_child(
    config: dict[str, Any], root: Path, profile: Path | None = None, profile_format: str = ""
) -> dict[str, Any]:
    """One raw loop in its own process; with ``profile``, py-spy records it there too."""
    path = root / f"raw-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(config))
    child = subprocess.Popen(
        [sys.executable, __file__, "--raw-child", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    profiler = None
    if profile is not None:
        profiler = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(child.pid),
             "--rate", "200", "--format", profile_format, "--output", str(profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    out, err = child.communicate()
    if profiler is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(30)  # it stops when the child exits, and writes its output
    if child.returncode:
        raise RuntimeError(f"raw loop failed ({child.returncode}): {err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# ---- the platform


def service_env(tmp: Path, nats_url: str, pki: TestPki, secret_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOKS_", "OTEL_TRACES_"))}
    env.update(
        {
            "WEBHOOKS_DATA_DIR": str(tmp / "data"),
            "WEBHOOKS_NATS_URL": nats_url,
            "WEBHOOKS_TOKENS": json.dumps([{"name": "bench", "token": TOKEN, "tenant": "*"}]),
            "WEBHOOKS_SECRET_KEYS": secret_key,
            "WEBHOOKS_OUTBOUND_ALLOW": "127.0.0.0/8",
            "WEBHOOKS_CA_BUNDLE": str(pki.ca_file),
            "WEBHOOKS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def create_subscriptions(
    service: ServiceProcess, urls: list[str]
) -> list[subscriptions_pb2.Subscription]:
    assert service.channel is not None
    stub = subscriptions_pb2_grpc.SubscriptionServiceStub(service.channel)
    metadata = (("authorization", f"Bearer {TOKEN}"), ("x-webhooks-tenant", TENANT))
    created = []
    for index, url in enumerate(urls):
        spec = subscriptions_pb2.SubscriptionSpec(
            name=f"bench hook {index}",
            entity="Object",
            triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
            webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST, url=url),
            retry_policy=common_pb2.RetryPolicy(retries=3, interval_seconds=300),
        )
        reply = await stub.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(subscription=spec),
            metadata=metadata,
            timeout=20,
        )
        created.append(reply.subscription)
    return created


def traceparent(sampled: bool) -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{'01' if sampled else '00'}"


def build_jobs(
    subscriptions: list[subscriptions_pb2.Subscription], count: int, sampled_share: float
) -> list[tuple[str, bytes, dict[str, str]]]:
    """``count`` jobs round-robin over the subscriptions, as the router publishes them."""
    now = datetime.now(UTC)
    data = sample_data("Object", "OnNew")
    items = []
    for i in range(count):
        subscription = subscriptions[i % len(subscriptions)]
        event_id = f"ev-{uuid.uuid4().hex}"
        delivery_id = new_delivery_id()
        job = delivery_job(
            job_id=routed_job_id(event_id, subscription.id),
            delivery_id=delivery_id,
            event_id=event_id,
            tenant=TENANT,
            subscription_id=subscription.id,
            subscription_version=subscription.version,
            subscription_name=subscription.name,
            entity="Object",
            trigger="OnNew",
            channel=7,
            subchannel="sales",
            payload_json=shape_payload(
                entity="Object",
                trigger="OnNew",
                tenant=TENANT,
                event_id=event_id,
                delivery_id=delivery_id,
                subscription_name=subscription.name,
                occurred_at=now,
                data=data,
                include_complete_data=True,
            ),
            occurred_at=now,
            trace_context={"traceparent": traceparent(random.random() < sampled_share)},
        )
        items.append(
            (
                delivery_job_subject(TENANT, subscription.id),
                job.SerializeToString(),
                {"Nats-Msg-Id": job.job_id},
            )
        )
    return items


async def pipelined(js: JetStreamContext, items: list[tuple[str, bytes, dict[str, str]]]) -> None:
    for start in range(0, len(items), PIPELINE):
        chunk = items[start : start + PIPELINE]
        await asyncio.gather(*(js.publish(s, d, headers=h) for s, d, h in chunk))


async def count(js: JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def outcomes(js: JetStreamContext, first_seq: int, expected: int) -> Counter[str]:
    """Outcome (and failure class) of the ATTEMPTS records from ``first_seq`` on."""
    seen: Counter[str] = Counter()
    done = asyncio.Event()

    async def on_record(msg: Msg) -> None:
        record = messages_pb2.AttemptRecord.FromString(msg.data)
        if record.outcome == messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED:
            seen["succeeded"] += 1
        else:
            name = messages_pb2.FailureClass.Name(record.failure_class)
            seen[f"failed {name} {record.error_message[:80]}"] += 1
        if sum(seen.values()) >= expected:
            done.set()

    sub = await js.subscribe(
        f"attempts.{TENANT}.>",
        cb=on_record,
        ordered_consumer=True,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first_seq
        ),
        pending_msgs_limit=1 << 20,
        pending_bytes_limit=1 << 30,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 60)
    await sub.unsubscribe()
    return seen


async def bench_mode(
    mode: str,
    args: argparse.Namespace,
    root: Path,
    env: dict[str, str],
    js: JetStreamContext,
    subscriptions: list[subscriptions_pb2.Subscription],
) -> dict[str, Any]:
    jobs = build_jobs(subscriptions, args.jobs, SAMPLED_SHARE[mode])
    before = await count(js, "ATTEMPTS")
    delivery_seq = (await js.stream_info("DELIVERIES")).state.last_seq
    await pipelined(js, jobs)
    assert await count(js, "DELIVERIES") == args.jobs, "DELIVERIES should hold only this run"
    sender = ServiceProcess("sender", env | MODES[mode], root / f"sender-{mode}.log")
    profiler: subprocess.Popen[bytes] | None = None
    first_at = last_at = 0.0
    first_n = 0
    cpu_first = cpu_last = 0.0

    async def watch() -> None:
        nonlocal first_at, last_at, first_n, cpu_first, cpu_last
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            n = await count(js, "ATTEMPTS") - before
            now = time.monotonic()
            if n > 0 and not first_at:
                first_at, first_n = now, n
                assert sender.process is not None
                cpu_first = cpu_seconds(sender.process.pid)
            if n >= args.jobs:
                last_at = now
                assert sender.process is not None
                cpu_last = cpu_seconds(sender.process.pid)
                return
            await asyncio.sleep(POLL_SECONDS)
        raise TimeoutError(f"{mode}: not every attempt recorded in {RUN_TIMEOUT_SECONDS} s")

    spawned = time.monotonic()
    watcher = asyncio.create_task(watch())
    try:
        await sender.start()
        serving = time.monotonic() - spawned
        if args.profile:
            assert sender.process is not None
            profiler = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                 str(sender.process.pid), "--rate", "200", "--format", args.profile_format,
                 "--output", str(Path(args.profile) / f"sender-{mode}.{args.profile_format}")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        await watcher
        # Every job acknowledged: DELIVERIES is a work queue, acked jobs leave it.
        deadline = time.monotonic() + 30
        left = await count(js, "DELIVERIES")
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            left = await count(js, "DELIVERIES")
    finally:
        watcher.cancel()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(30)
        await sender.stop()
    seen = await outcomes(js, before + 1, args.jobs)
    # Anything published onto DELIVERIES beyond the jobs: parkings (a schedule, then the
    # job it fires) and retries. Parking is what the sender does with a job whose
    # endpoint already has every slot busy and as many jobs waiting.
    extra = (await js.stream_info("DELIVERIES")).state.last_seq - delivery_seq - args.jobs
    steady_seconds = max(last_at - first_at, 1e-6)
    steady_n = args.jobs - first_n
    return {
        "mode": mode,
        "sampler": MODES[mode].get("OTEL_TRACES_SAMPLER", "parentbased_always_on (default)"),
        "sampler_arg": MODES[mode].get("OTEL_TRACES_SAMPLER_ARG", ""),
        "sampled_job_share": SAMPLED_SHARE[mode],
        "jobs": args.jobs,
        "serving_s": round(serving, 2),
        "seconds_first_to_last": round(steady_seconds, 3),
        "deliveries_per_s": round(steady_n / steady_seconds),
        "deliveries_per_s_from_spawn": round(args.jobs / (last_at - spawned)),
        "sender_cpu_us_per_delivery": round((cpu_last - cpu_first) / max(steady_n, 1) * 1e6, 1),
        "sender_cpu_share": round((cpu_last - cpu_first) / steady_seconds, 2),
        "outcomes": dict(seen),
        "left_on_deliveries": left,
        "extra_messages_on_deliveries": extra,
    }


async def run(args: argparse.Namespace) -> None:
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    results: dict[str, Any] = {"modes": []}
    with tempfile.TemporaryDirectory(prefix="bench-sender-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        pki = TestPki.create(root / "pki")
        ports = [free_port() for _ in range(args.endpoints)]
        nginx = Nginx(root / "nginx", pki, ports)
        server = NatsServer(root / "nats" / "store")
        env: dict[str, str] = {}
        subscriptions_service: ServiceProcess | None = None
        nc = None
        try:
            nginx.start()
            server.start()
            env = service_env(root, server.url, pki, new_key())
            if args.sender_concurrency:
                env["WEBHOOKS_SENDER_CONCURRENCY"] = str(args.sender_concurrency)
            if args.endpoint_concurrency:
                env["WEBHOOKS_SENDER_ENDPOINT_CONCURRENCY"] = str(args.endpoint_concurrency)
            urls = [
                f"https://127.0.0.1:{ports[i % len(ports)]}/hooks/{i}"
                for i in range(args.subscriptions)
            ]
            subscriptions_service = ServiceProcess("subscriptions", env, root / "subscriptions.log")
            await subscriptions_service.start()
            subscriptions = await create_subscriptions(subscriptions_service, urls)
            nc = await nats.connect(server.url, pending_size=1 << 28)
            js = nc.jetstream()
            deadline = time.monotonic() + 30
            while await count(js, "SUBSCRIPTIONS") < len(subscriptions):
                if time.monotonic() > deadline:
                    raise RuntimeError("the subscriptions never reached SUBSCRIPTIONS")
                await asyncio.sleep(0.1)
            await subscriptions_service.stop()  # not needed to deliver; frees the CPU

            sample = build_jobs(subscriptions, 64, 0.0)
            bodies = [messages_pb2.DeliveryJob.FromString(d).payload_json for _, d, _ in sample]
            body_file = root / "bodies.json"
            body_file.write_text(json.dumps([b.decode() for b in bodies]))
            body_bytes = round(sum(map(len, bodies)) / len(bodies))
            receiver = await asyncio.to_thread(wrk, urls[0], bodies[0], root, 64, args.wrk_seconds)
            results.update(
                {
                    "body_bytes": body_bytes,
                    "endpoints": len(ports),
                    "subscriptions": len(subscriptions),
                    "receiver_wrk_requests_per_s": round(receiver),
                }
            )
            print(
                f"receiver: nginx (1 process), {len(ports)} HTTPS ports; wrk -c64 "
                f"{receiver:,.0f} requests/s; bodies {body_bytes} bytes; "
                f"{len(subscriptions)} subscriptions"
            )
            sender_in_flight = min(
                args.sender_concurrency or 1024,
                len(ports) * (args.endpoint_concurrency or 64),
            )
            raw_concurrency = args.raw_concurrency or sender_in_flight
            raw_config = {
                "urls": urls,
                "bodies": str(body_file),
                "ca_file": str(pki.ca_file),
                "concurrency": raw_concurrency,
                "warmup": 1.0,
                "seconds": args.raw_seconds,
            }
            for mode in modes:
                # The ceiling is measured right before and right after the sender, and
                # averaged: the load of a shared machine drifts within a run.
                # With --profile, the raw loop before the sender is recorded as well.
                raw_profile = None
                if args.profile:
                    raw_profile = Path(args.profile) / f"raw-{mode}.{args.profile_format}"
                before = await asyncio.to_thread(
                    run_raw_child, raw_config, root, raw_profile, args.profile_format
                )
                row = await bench_mode(mode, args, root, env, js, subscriptions)
                after = await asyncio.to_thread(run_raw_child, raw_config, root)
                raw = {
                    key: round((before[key] + after[key]) / 2, 1)
                    for key in ("requests_per_s", "cpu_us_per_request", "cpu_share")
                }
                raw["requests_per_s"] = round(raw["requests_per_s"])
                row["raw_loop"] = raw | {
                    "concurrency": raw_concurrency,
                    "errors": before["errors"] + after["errors"],
                    "before": before,
                    "after": after,
                }
                row["ratio_to_raw"] = round(row["deliveries_per_s"] / raw["requests_per_s"], 3)
                # What the ratio would be if each had a core to itself: CPU per request of
                # the raw loop over CPU per delivery of the sender (less sensitive to what
                # else runs on the two cores).
                row["cpu_ratio_to_raw"] = round(
                    raw["cpu_us_per_request"] / row["sender_cpu_us_per_delivery"], 3
                )
                results["modes"].append(row)
                show_row(row)
        finally:
            if nc is not None:
                await nc.close()
            if subscriptions_service is not None:
                await subscriptions_service.stop()
            server.stop()
            nginx.stop()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"sender-{stamp}.json"
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "sender_concurrency": args.sender_concurrency or "default (1024)",
        "endpoint_concurrency": args.endpoint_concurrency or "default (64)",
    }
    out.write_text(json.dumps({"meta": meta, **results}, indent=2))
    print("\n== sender benchmark ==")
    print(
        f"{'mode (sender sampler)':<40} {'deliveries/s':>12} {'raw loop req/s':>14} "
        f"{'ratio':>6} {'sender CPU us/dlv':>17} {'raw CPU us/req':>14} {'CPU ratio':>9}"
    )
    for row in results["modes"]:
        label = f"{row['mode']}: {row['sampler']} {row['sampler_arg']}".strip()
        print(
            f"{label:<40} {row['deliveries_per_s']:>12,} "
            f"{row['raw_loop']['requests_per_s']:>14,} {row['ratio_to_raw']:>6.2f} "
            f"{row['sender_cpu_us_per_delivery']:>17,.0f} "
            f"{row['raw_loop']['cpu_us_per_request']:>14,.0f} {row['cpu_ratio_to_raw']:>9.2f}"
        )
    ok_rate = all(r["deliveries_per_s"] >= 5000 for r in results["modes"])
    ok_ratio = all(r["ratio_to_raw"] >= 0.5 for r in results["modes"])
    print(
        f"receiver (wrk, C) {results['receiver_wrk_requests_per_s']:,} requests/s; "
        f"targets: >= 5,000 deliveries/s {'met' if ok_rate else 'MISSED'}, "
        f">= 0.5 of the raw loop {'met' if ok_ratio else 'MISSED'}"
    )
    print(f"written to {out}")


def show_row(row: dict[str, Any]) -> None:
    raw = row["raw_loop"]
    print(
        f"{row['mode']:<8} deliveries/s={row['deliveries_per_s']:,} "
        f"(from spawn {row['deliveries_per_s_from_spawn']:,}; serving after "
        f"{row['serving_s']} s)  raw loop={raw['requests_per_s']:,} req/s "
        f"(c={raw['concurrency']}, before {raw['before']['requests_per_s']:,}, after "
        f"{raw['after']['requests_per_s']:,}, errors {raw['errors']})  "
        f"ratio={row['ratio_to_raw']:.2f} (CPU ratio {row['cpu_ratio_to_raw']:.2f})  "
        f"sender CPU {row['sender_cpu_us_per_delivery']:,.0f} us/delivery "
        f"({row['sender_cpu_share']:.0%} of a core)  outcomes={row['outcomes']}  "
        f"left on DELIVERIES={row['left_on_deliveries']}  "
        f"parkings/retries on DELIVERIES={row['extra_messages_on_deliveries']:,}"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--raw-child":
        config = json.loads(Path(sys.argv[2]).read_text())
        config["bodies"] = [b.encode() for b in json.loads(Path(config["bodies"]).read_text())]
        print(json.dumps(asyncio.run(raw_loop(config))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs preloaded per mode")
    parser.add_argument(
        "--modes", default="traced,sampled", help="comma-separated: traced, sampled, off"
    )
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--endpoints", type=int, default=4, help="receiver ports (origins)")
    parser.add_argument("--sender-concurrency", type=int, default=0, help="default: service's")
    parser.add_argument(
        "--endpoint-concurrency", type=int, default=0, help="default: the service's"
    )
    parser.add_argument(
        "--raw-concurrency", type=int, default=0, help="default: the sender's requests in flight"
    )
    parser.add_argument("--raw-seconds", type=float, default=4.0)
    parser.add_argument("--wrk-seconds", type=float, default=3.0)
    parser.add_argument("--keep", metavar="DIR", help="work (and keep) service logs in DIR")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the sender of each mode (and the raw loop)"
    )
    parser.add_argument("--profile-format", default="speedscope", help="py-spy --format")
    args = parser.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
