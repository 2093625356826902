"""What ``bench/e2e.py`` sets up around the running platform: a tenant per case with its
REST subscriptions on the receiver's ports, the ceilings (wrk against the receiver, the raw
aiohttp loop: one Python process POSTing the same bodies to the same URLs) and py-spy."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.e2e_load import Case
from bench.sender import build_jobs, run_raw_child, wrk
from tests.support.platform_stack import Platform, new_tenant, platform_event, rest
from webhooks.v1 import messages_pb2

# Case key -> fan-out; a tenant each (the latency cases read their own EVENTS and ATTEMPTS
# back, and a tenant's lane depends on its own rate).
CASES = {"1": 1, "10": 10, "latency": 1, "half": 1, "single": 1, "soak": 1}


async def make_cases(stack: Platform, ports: list[int]) -> dict[str, Case]:
    """A tenant per case, its Object OnNew subscriptions spread over the receiver's ports."""
    cases = {}
    for key, fanout in CASES.items():
        tenant = new_tenant(f"e2e{key}")
        created = []
        for i in range(fanout):
            url = f"https://127.0.0.1:{ports[i % len(ports)]}/hooks/{key}/{i}"
            spec = rest(f"e2e {key} #{i}", url, retries=3)
            created.append((await stack.create_subscription(tenant, spec)).subscription)
        template = platform_event(tenant, "Object", "OnNew")
        cases[key] = Case(f"fan-out {fanout}", tenant, created, template)
    return cases


@dataclass
class Ceiling:
    """The receiver's own rate (wrk) and the raw loop's runs (before and after the cases)."""

    receiver: float
    config: dict[str, Any]
    root: Path
    raws: list[dict[str, Any]] = field(default_factory=list)

    async def raw(self) -> dict[str, Any]:
        """One more run of the raw loop, in its own process."""
        found = await asyncio.to_thread(run_raw_child, self.config, self.root)
        self.raws.append(found)
        return found

    def summary(self) -> dict[str, Any]:
        """The mean of the runs: requests/s and CPU µs per request (the raw loop's own)."""
        runs = len(self.raws)
        return {
            "requests_per_s": round(sum(r["requests_per_s"] for r in self.raws) / runs),
            "cpu_us_per_request": round(sum(r["cpu_us_per_request"] for r in self.raws) / runs, 1),
            "concurrency": self.config["concurrency"],
            "before": self.raws[0],
            "after": self.raws[-1],
        }


async def ceilings(
    stack: Platform, cases: dict[str, Case], root: Path, args: argparse.Namespace
) -> Ceiling:
    """wrk against the receiver, and the raw loop's setting: the throughput cases' URLs and
    the bodies their jobs carry."""
    subscriptions = cases["1"].subscriptions + cases["10"].subscriptions
    urls = [s.webhook.url for s in subscriptions]
    sample = build_jobs(subscriptions, 64, 0.0)
    bodies = [messages_pb2.DeliveryJob.FromString(d).payload_json for _, d, _ in sample]
    body_file = root / "bodies.json"
    body_file.write_text(json.dumps([b.decode() for b in bodies]))
    receiver = await asyncio.to_thread(wrk, urls[0], bodies[0], root, 64, args.wrk_seconds)
    config = {
        "urls": urls,
        "bodies": str(body_file),
        "ca_file": str(stack.pki.ca_file),
        "concurrency": args.raw_concurrency,
        "warmup": 1.0,
        "seconds": args.raw_seconds,
    }
    return Ceiling(receiver, config, root)


def start_profilers(directory: Path, pids: dict[str, list[int]]) -> list[subprocess.Popen[bytes]]:
    """py-spy (raw stacks) on every router, sender and failures, until stop_profilers."""
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
