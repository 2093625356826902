"""What one stream costs a 3-node NATS cluster with 1 and with 3 replicas (docs/scaling.md).

Starts a cluster (``tests.support.nats_cluster``), declares two streams on it, ``BENCH_R1``
(1 replica) and ``BENCH_R3`` (3), and publishes ``--messages`` messages of ``--size``
bytes (about a delivery job) onto each in turn, ``--rounds`` times alternately, the way the
router publishes jobs (``ConfirmedPublisher``: a ``Nats-Msg-Id`` each, up to 4,000
unanswered, every PubAck awaited). Prints, per case, the confirmed messages per second and
the CPU (user + system, from ``/proc``) per message of each node, the stream leader marked
``*``, and of the publishing process. On a shared 2-core machine the rate is the
publisher's (one Python process) more than the cluster's; the CPU per message of the
leader is the figure that says how far one stream's leader goes.

    .venv/bin/python bench/cluster_streams.py [--messages 50000] [--size 800] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

import nats  # noqa: E402
from nats.aio.client import Client as NATS  # noqa: E402
from nats.js.api import StreamConfig  # noqa: E402

from tests.support.nats_cluster import NatsCluster  # noqa: E402
from webhooks_messaging.publisher import ConfirmedPublisher, Outcome  # noqa: E402

IN_FLIGHT = 4_000  # the router's JobPublisher's most unanswered jobs
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def publish_all(nc: NATS, stream: str, count: int, size: int) -> float:
    """Publishes ``count`` messages onto ``stream``; seconds until every one is confirmed."""
    publisher = ConfirmedPublisher(nc, stream, max_in_flight=IN_FLIGHT)
    await publisher.start()
    done = asyncio.Event()
    confirmed = 0
    failed: list[Outcome] = []

    def then(outcome: Outcome) -> None:
        nonlocal confirmed
        confirmed += 1
        if outcome is not None:
            failed.append(outcome)
        if confirmed == count:
            done.set()

    payload = os.urandom(size)
    prefix = f"bench.{stream.lower()}.{time.monotonic_ns()}"
    started = time.perf_counter()
    for n in range(count):
        await publisher.publish(f"bench.{stream.lower()}.{n % 100}", payload,
                                {"Nats-Msg-Id": f"{prefix}.{n}"}, then)  # fmt: skip
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    await publisher.close()
    if failed:
        raise RuntimeError(f"{len(failed)} not stored, e.g. {failed[0]!r}")
    return elapsed


async def one_case(cluster: NatsCluster, nc: NATS, stream: str, count: int, size: int) -> None:
    info = await nc.jetstream().stream_info(stream)
    leader = info.cluster.leader if info.cluster else None
    pids = {node.name: node.process.pid for node in cluster.nodes if node.process}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    mine = time.process_time()
    elapsed = await publish_all(nc, stream, count, size)
    client = (time.process_time() - mine) / count * 1e6
    used = {name: (cpu_seconds(pid) - before[name]) / count * 1e6 for name, pid in pids.items()}
    nodes = "  ".join(f"{n}{'*' if n == leader else ' '} {us:5.1f}" for n, us in used.items())
    print(
        f"{stream:<9} {count / elapsed:>8,.0f} msg/s   CPU µs per message: {nodes}   "
        f"publisher {client:5.1f}",
        flush=True,
    )


async def main(count: int, size: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        cluster = NatsCluster(Path(tmp) / "cluster")
        await asyncio.to_thread(cluster.start)
        try:
            nc = await nats.connect(cluster.urls)
            js = nc.jetstream()
            for stream, replicas in (("BENCH_R1", 1), ("BENCH_R3", 3)):
                subjects = [f"bench.{stream.lower()}.>"]
                await js.add_stream(
                    StreamConfig(name=stream, subjects=subjects, num_replicas=replicas)
                )
            print(f"{count:,} messages of {size} B per case, {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
            for _ in range(rounds):
                for stream in ("BENCH_R1", "BENCH_R3"):
                    await one_case(cluster, nc, stream, count, size)
            await nc.close()
        finally:
            await asyncio.to_thread(cluster.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.size, args.rounds))
