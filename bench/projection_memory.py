"""Memory of the two in-process projections of SUBSCRIPTIONS, per subscription.

Every router holds a ``RoutingTable`` and every sender a ``Directory`` of all the
platform's subscriptions (docs/scaling.md). This builds each from ``--count`` realistic
subscription states (``bench/router_table.py``'s generator: several triggers with
components, a webhook, sealed-looking secrets; one in ten inactive), each in a fresh
process of its own, and prints the process's resident memory before and after, per
subscription. States are parsed from their serialized form, as the feed parses them from
the stream.

    .venv/bin/python bench/projection_memory.py [--count 100000] [--tenants 1000]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for bench.router_table

PROJECTIONS = ("router", "sender")


def rss_bytes() -> int:
    """The process's resident set (VmRSS), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(projection: str, count: int, tenants: int) -> None:
    """In this process: build one projection of ``count`` subscriptions; print one line."""
    from bench.router_table import subscription_message
    from webhooks.v1 import messages_pb2
    from webhooks_router.routes import RoutingTable
    from webhooks_secrets import SecretBox, new_key
    from webhooks_sender.directory import Directory

    target: RoutingTable | Directory = (
        RoutingTable() if projection == "router" else Directory(SecretBox([new_key()]))
    )
    payloads = (subscription_message(n, tenants)[1] for n in range(count))
    gc.collect()
    before = rss_bytes()
    for seq, payload in enumerate(payloads, start=1):
        event = messages_pb2.SubscriptionDomainEvent.FromString(payload)
        target.apply(event.subscription, seq)
    gc.collect()
    grown = rss_bytes() - before
    print(
        f"{projection:<7} {count:>10,} subscriptions  {len(target):>10,} held  "
        f"RSS +{grown / 2**20:8.1f} MiB  {grown / count:7.0f} B/subscription",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--projection", choices=PROJECTIONS, help="measure in this process")
    args = parser.parse_args()
    if args.projection:
        measure(args.projection, args.count, args.tenants)
        return
    for projection in PROJECTIONS:  # a fresh process each: nothing left over from the other
        subprocess.run(
            [
                *(sys.executable, __file__, "--projection", projection),
                *("--count", str(args.count), "--tenants", str(args.tenants)),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
