"""Noisy-neighbour benchmark: a quiet party's publish→receipt latency with and without a
noisy one, against the platform as separate processes (``running_platform``: nats-server,
subscriptions, ``--routers`` routers, ``--senders`` senders; SQLite).

Each scenario is one function (``SCENARIOS``) that runs against its own platform and
returns its figures; the run prints them and writes ``bench/results/fairness-<UTC>.json``.

- ``tenant-burst`` (issue 13, fairness between tenants): tenant B publishes ``--rate``
  events/s (one per call), first alone for ``--alone`` s, then while tenant A publishes
  ``--burst`` events as fast as the router takes them (calls of 1,000, two in flight). Each
  has one subscription on a receiver process of its own (tests/support/receipt_log.py).
  Printed: B's p50/p99 alone and during A's drain, and A's drain time (first call to last
  delivery). The scenario is tests/support/tenant_burst.py, shared with the end-to-end
  test (tests/e2e/test_tenant_fairness.py) that asserts on it.
- ``origin`` (issue 13, fairness between subscriptions that share an origin): a quiet
  subscription on ``https://host:port/ok`` gets ``--origin-jobs`` jobs at ``--origin-rate``
  per second, alone, then while another tenant's subscription on ``/slow`` of the same
  host:port answers in 10 s with a backlog of ``--slow-jobs`` (routers=0: jobs go straight
  onto DELIVERIES). Printed: the quiet subscription's p50/p99 alone and beside the slow one.
  The scenario is tests/support/origin_fairness.py, shared with
  tests/e2e/test_origin_fairness.py.

Usage: .venv/bin/python bench/fairness.py [--quick] [--scenario tenant-burst] [--burst N]
``--quick`` is a smoke run (a small burst) that the test suite runs
(tests/e2e/test_bench_fairness.py); its figures are reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

from tests.support.origin_fairness import origin_fairness  # noqa: E402
from tests.support.platform_stack import running_platform  # noqa: E402
from tests.support.sender_stack import Stack  # noqa: E402
from tests.support.tenant_burst import percentile, tenant_burst  # noqa: E402

RESULTS = REPO / "bench" / "results"

Scenario = Callable[[Path, argparse.Namespace], Awaitable[dict[str, Any]]]


def figures(latencies: list[float]) -> dict[str, Any]:
    """p50 / p99 / max in ms of latencies in seconds, and how many."""
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


async def tenant_burst_scenario(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Tenant B's latency alone and while tenant A's burst drains."""
    async with running_platform(
        directory / "platform", routers=args.routers, senders=args.senders, failures=False
    ) as stack:
        result = await tenant_burst(
            stack, directory, count=args.burst, rate=args.rate, alone_seconds=args.alone
        )
    return {
        "noisy": f"tenant A: {result.burst} events at once",
        "quiet": f"tenant B: {args.rate:g} events/s",
        "quiet_alone": figures(result.quiet_alone),
        "quiet_with_noisy": figures(result.quiet_during),
        "noisy_drain_s": round(result.drain_seconds, 2),
    }


async def origin_scenario(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A quiet subscription's latency alone and beside a 10 s one on the same origin."""
    async with running_platform(
        directory / "platform",
        routers=0,
        senders=1,
        failures=False,
        env={"WEBHOOKS_SENDER_TIMEOUT_MS": "15000"},  # the slow answers are not timeouts
    ) as platform:
        result = await origin_fairness(
            Stack(platform),
            slow_jobs=args.slow_jobs,
            quiet_jobs=args.origin_jobs,
            rate=args.origin_rate,
        )
    return {
        "noisy": f"another tenant: {args.slow_jobs} jobs to /slow (10 s), same host:port",
        "quiet": f"{args.origin_jobs} jobs to /ok at {args.origin_rate:g}/s",
        "quiet_alone": figures(result.quiet_alone),
        "quiet_with_noisy": figures(result.quiet_with_slow),
    }


SCENARIOS: dict[str, Scenario] = {
    "tenant-burst": tenant_burst_scenario,
    "origin": origin_scenario,
}


def show(name: str, row: dict[str, Any]) -> None:
    alone, loaded = row["quiet_alone"], row["quiet_with_noisy"]
    print(f"== {name}: {row['quiet']}; noisy {row['noisy']} ==")
    print(f"{'quiet party':<24} {'events':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, values in (("alone", alone), ("with the noisy one", loaded)):
        print(
            f"{label:<24} {values['count']:>7} {values['p50_ms']:>8} "
            f"{values['p99_ms']:>8} {values['max_ms']:>8}"
        )
    if "noisy_drain_s" in row:
        print(f"noisy party's drain: {row['noisy_drain_s']} s")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "meta": {
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg(),
            "routers": args.routers,
            "senders": args.senders,
        },
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for name in args.scenario or list(SCENARIOS):
            directory = root / name
            directory.mkdir(parents=True, exist_ok=True)
            row = await SCENARIOS[name](directory, args)
            report["scenarios"][name] = row
            show(name, row)
    report["meta"]["load_after"] = os.getloadavg()
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--routers", type=int, default=1)
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--burst", type=int, default=20_000, help="tenant-burst: A's events")
    parser.add_argument("--rate", type=float, default=50.0, help="tenant-burst: B's events/s")
    parser.add_argument("--alone", type=float, default=5.0, help="tenant-burst: B alone, s")
    parser.add_argument("--slow-jobs", type=int, default=200, help="origin: slow backlog")
    parser.add_argument("--origin-jobs", type=int, default=1000, help="origin: quiet jobs")
    parser.add_argument("--origin-rate", type=float, default=200.0, help="origin: quiet/s")
    parser.add_argument("--keep", metavar="DIR", help="work in (and keep) DIR: logs")
    parser.add_argument("--results", metavar="DIR", default=str(RESULTS), help="JSON goes here")
    args = parser.parse_args(argv)
    if args.quick:
        args.burst = min(args.burst, 3000)
        args.alone = min(args.alone, 2.0)
        args.slow_jobs = min(args.slow_jobs, 100)
        args.origin_jobs = min(args.origin_jobs, 200)
    report = asyncio.run(run(args))
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"fairness-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
