"""What the platform's processes use while ``bench/e2e.py`` runs: CPU time (``/proc``) by
role and of the whole machine, resident memory by process, and the durable consumers'
pending messages (JetStream's consumer info)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext

from bench.sender import Nginx, cpu_seconds
from tests.support.platform_stack import Platform

# The platform's own processes: their CPU per delivery is the figure issue 17 steers by
# (nginx is the receiver, bench the load generator).
PLATFORM_ROLES = ("nats", "router", "sender", "failures", "subscriptions")
SERVICE_ROLES = PLATFORM_ROLES[1:]  # the services whose memory the soak watches


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


def per_delivery(cores: dict[str, float], deliveries_per_s: float) -> dict[str, float]:
    """CPU µs per delivery by role, and ``platform``: summed over PLATFORM_ROLES."""
    rate = max(deliveries_per_s, 1e-6)
    out = {
        role: round(share / rate * 1e6, 1)
        for role, share in cores.items()
        if role not in ("machine", "others", "irq")
    }
    out["platform"] = round(sum(out.get(role, 0.0) for role in PLATFORM_ROLES), 1)
    return out


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


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process (``VmRSS``), MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def rss_by_process(pids: dict[str, list[int]]) -> dict[str, float]:
    """Resident MB of every platform process, named ``<role>-<n>`` (``nats``: the server)."""
    out: dict[str, float] = {}
    for role in PLATFORM_ROLES:
        for index, pid in enumerate(pids.get(role, [])):
            found = rss_mb(pid)
            if found is not None:
                out[role if role == "nats" else f"{role}-{index + 1}"] = found
    return out


async def consumer_pending(js: JetStreamContext) -> dict[str, int]:
    """Messages every consumer has yet to finish: pending (not yet delivered) + delivered
    and not yet acknowledged. Keyed ``<stream>/<durable>``; the ephemeral ones (the ordered
    followers: the failures projector, the routers' subscription tables) by their filter,
    replicas' summed."""
    out: dict[str, int] = {}
    for stream in await js.streams_info():
        name = stream.config.name or ""
        for consumer in await js.consumers_info(name):
            config = consumer.config
            label = config.durable_name or f"ephemeral {config.filter_subject or '>'}"
            key = f"{name}/{label}"
            unfinished = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
            out[key] = out.get(key, 0) + unfinished
    return out
