"""End-to-end benchmark: PublishEvents -> router -> DELIVERIES -> sender -> HTTPS receiver.

The whole platform runs as separate processes, as compose runs it
(``tests.support.platform_stack.running_platform``: a nats-server, ``webhooks serve``
subscriptions, ``--routers`` routers, ``--senders`` senders sharing their durable consumers,
failures; SQLite), traces sampled as in production (``parentbased_traceidratio`` 0.01,
``--traced`` for the SDK default), every service with its Prometheus endpoint
(``--no-metrics``: none) as ``webhooks up`` runs them; nothing scrapes them during the run.
The receiver is nginx (``bench.sender.Nginx``: one process, HTTPS on ``--endpoints`` ports
under the platform's test CA, 204 to every POST) writing one line per request: its own
receipt time (``$msec``, wall clock, ms) and the ``webhook-id`` header, the delivery id. The
delivery id is the router's ``uuid5(event id:subscription id)``, so every receipt maps back
to its event, and the event carries its publish time in ``occurred_at`` (set, wall clock,
right before the PublishEvents call that carries it): latency = receipt - occurred_at, both
from the same host's clock.

One run (a tenant per case; the modules beside this one: e2e_stack sets up, e2e_load offers
the load, e2e_cases and e2e_soak measure, e2e_probe reads /proc and the consumers,
e2e_report judges and prints):

1. ``wrk -c64`` against the receiver: what it does (C, keep-alive), far above the rest.
2. The raw client ceiling: one Python process (``bench.sender.raw_loop``) POSTing the same
   bodies to the same URLs, one aiohttp session, ``--raw-concurrency`` in flight; before
   and after the cases, the mean: requests/s and its own CPU µs per request.
3. Throughput at fan-out 1 and 10: ``--events`` (fan-out 1) / ``--events / 10`` events in
   calls of ``--batch``, ``--calls`` calls in flight, with at most ``--window`` deliveries
   outstanding. CPU of every process per delivery, summed over the platform's (nats-server,
   routers, senders, failures, subscriptions) and as a ratio to the raw loop's per request.
   Fan-out 1's events/s is the capacity the next cases derive their load from.
4. Latency, open loop, ``--seconds`` measured after 1 s of warm-up: at ``--rate`` events/s
   in calls of ``--per-call`` (the fixed case); at half the capacity in calls of
   ``--per-call`` (half load); at a quarter of it in calls of one event (single-event).
   p50/p95/p99 of receipt - occurred_at and the stages (ingest, route, sender, https).
5. ``--soak MINUTES``: half load that long; lost, duplicates, RSS growth, consumers' backlog.
6. Issue 17's goals, each with its figure, its bound and met / missed.

Prints a table, writes ``<--results>/e2e-<UTC>.json`` (the same figures and goals).
Usage: .venv/bin/python bench/e2e.py [--quick] [--routers 1] [--senders 2] [--soak 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support and bench.*

from bench.e2e_cases import latency, throughput  # noqa: E402
from bench.e2e_load import Case, Load, Receipts  # noqa: E402
from bench.e2e_probe import process_ids  # noqa: E402
from bench.e2e_report import goals, show  # noqa: E402
from bench.e2e_soak import soak  # noqa: E402
from bench.e2e_stack import ceilings, make_cases, start_profilers, stop_profilers  # noqa: E402
from bench.sender import Nginx  # noqa: E402
from tests.support.platform_stack import Platform, running_platform  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}
# Every service with its Prometheus endpoint, as `webhooks up` and compose run them (port 0:
# replicas each bind their own); --no-metrics for the figures without.
METRICS = {
    f"WEBHOOKS_{service.upper()}_METRICS_ADDR": "127.0.0.1:0"
    for service in ("subscriptions", "router", "sender", "failures", "console")
}
# The latency cases: report key -> (case key, label).
LATENCY_CASES = {
    "latency": ("latency", "latency, fixed"),
    "half_load": ("half", "half load"),
    "single_event": ("single", "single-event"),
}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = ({} if args.traced else SAMPLED) | ({} if args.no_metrics else METRICS)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        async with running_platform(
            root / "platform", routers=args.routers, senders=args.senders, env=env
        ) as stack:
            ports = [free_port() for _ in range(args.endpoints)]
            nginx = Nginx(root / "nginx", stack.pki, ports, receipts_log=root / "receipts.log")
            receipts = Receipts(root / "receipts.log")
            nginx.start()
            follower = asyncio.create_task(receipts.follow())
            try:
                found = await measure(stack, nginx, receipts, root, args)
            finally:
                follower.cancel()
                nginx.stop()
    return {"meta": meta(args, env, load_before), **found}


async def measure(
    stack: Platform, nginx: Nginx, receipts: Receipts, root: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The ceilings around the cases, the cases, the soak; then the ratios and the goals."""
    cases = await make_cases(stack, nginx.ports)
    ceiling = await ceilings(stack, cases, root, args)
    print(
        f"receiver: nginx, {len(nginx.ports)} HTTPS ports, wrk -c64 {ceiling.receiver:,.0f} req/s"
    )
    print(f"raw aiohttp loop (before): {(await ceiling.raw())['requests_per_s']:,} req/s")
    pids = process_ids(stack, nginx)
    profilers = start_profilers(Path(args.profile), pids) if args.profile else []
    try:
        found = await measure_cases(stack, receipts, cases, args, pids)
    finally:
        stop_profilers(profilers)
    print(f"raw aiohttp loop (after): {(await ceiling.raw())['requests_per_s']:,} req/s")
    found["soak"] = None
    if args.soak:
        half = found["throughput"][0]["events_per_s"] / 2
        load = Load(half, args.per_call, args.soak * 60, warm_s=0.0, stages=False)
        found["soak"] = await soak(stack, receipts, cases["soak"], load, pids)
        print(f"soak: lost {found['soak']['lost']}, duplicates {found['soak']['duplicates']}")
    raw = ceiling.summary()
    relate(found["throughput"], raw)
    found |= {
        "receiver_wrk_requests_per_s": round(ceiling.receiver),
        "raw_loop": raw,
        "duplicates_at_receiver": receipts.duplicates,
    }
    found["goals"] = goals(found)
    return found


async def measure_cases(
    stack: Platform,
    receipts: Receipts,
    cases: dict[str, Case],
    args: argparse.Namespace,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    """Throughput at fan-out 1 and 10, then the latency cases at loads derived from the
    fan-out 1 capacity just measured."""
    rows = []
    for key, events in (("1", args.events), ("10", max(args.events // 10, 100))):
        row = await throughput(stack, receipts, cases[key], events, args, pids)
        rows.append(row)
        print(
            f"{row['case']}: {row['events_per_s']:,} events/s, "
            f"{row['deliveries_per_s']:,} deliveries/s, cores {row['cpu_cores']}"
        )
    capacity = rows[0]["events_per_s"]
    loads = {
        "latency": Load(args.rate, args.per_call, args.seconds),
        "half_load": Load(capacity / 2, args.per_call, args.seconds),
        "single_event": Load(capacity / 4, 1, args.seconds),
    }
    found: dict[str, Any] = {"throughput": rows, "capacity_events_per_s": capacity}
    for key, load in loads.items():
        case, label = LATENCY_CASES[key]
        lat = await latency(stack, receipts, cases[case], load, pids)
        found[key] = {"label": label, **lat}
        print(
            f"{label} at {load.events_per_s:,.0f} events/s ({load.per_call}/call): "
            f"p50 {lat['p50_ms']} p95 {lat['p95_ms']} p99 {lat['p99_ms']} ms"
        )
    return found


def relate(rows: list[dict[str, Any]], raw: dict[str, Any]) -> None:
    """Each throughput row's ratios to the raw loop: deliveries/s to its requests/s, CPU per
    delivery (the platform's sum, and each role's) to its CPU per request."""
    for row in rows:
        row["ratio_to_raw"] = round(row["deliveries_per_s"] / raw["requests_per_s"], 3)
        per = row["cpu_us_per_delivery"]
        cpu = max(raw["cpu_us_per_request"], 1e-6)
        row["cpu_to_raw"] = round(per["platform"] / cpu, 2) if per else None
        row["cpu_to_raw_by_role"] = {role: round(us / cpu, 2) for role, us in per.items()}


def meta(args: argparse.Namespace, env: dict[str, str], load_before: tuple[float, ...]) -> Any:
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "routers": args.routers,
        "senders": args.senders,
        "traces_sampler": {k: v for k, v in env.items() if k.startswith("OTEL_")}
        or "SDK default (parentbased_always_on)",
        "metrics": not args.no_metrics,
        "endpoints": args.endpoints,
        "batch": args.batch,
        "calls_in_flight": args.calls,
        "window": args.window,
        "per_call": args.per_call,
        "seconds": args.seconds,
        "soak_minutes": args.soak,
        "quick": args.quick,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke run (< 90 s with --soak 0.25)")
    add("--routers", type=int, default=1)
    add("--senders", type=int, default=2)
    add("--events", type=int, default=30_000, help="events at fan-out 1")
    add("--batch", type=int, default=100, help="events per PublishEvents call")
    add("--calls", type=int, default=4, help="PublishEvents calls in flight")
    add("--window", type=int, default=6000, help="deliveries outstanding")
    add("--rate", type=float, default=1000.0, help="fixed latency case: events/s")
    add("--per-call", type=int, default=10, help="latency and soak: events per call")
    add("--seconds", type=float, default=15.0, help="latency cases: measured s each")
    add("--soak", type=float, metavar="MINUTES", help="half load that long (issue 17: 10)")
    add("--endpoints", type=int, default=4, help="receiver ports")
    add("--raw-concurrency", type=int, default=64)
    add("--raw-seconds", type=float, default=4.0)
    add("--wrk-seconds", type=float, default=2.0)
    add("--traced", action="store_true", help="SDK default sampler (all)")
    add("--no-metrics", action="store_true", help="no metrics endpoints")
    add("--keep", metavar="DIR", help="work in (and keep) DIR: logs")
    add("--profile", metavar="DIR", help="py-spy routers/senders/failures into DIR")
    add("--results", metavar="DIR", default=str(RESULTS), help="JSON goes here")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = min(args.events, 3000)
        args.seconds = min(args.seconds, 3.0)
        args.raw_seconds = min(args.raw_seconds, 2.0)
        args.wrk_seconds = 1.0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
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
