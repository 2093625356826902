"""Benchmark of the router's routing-table build from the SUBSCRIPTIONS stream.

Publishes ``--count`` SubscriptionDomainEvent messages (realistic subscriptions: several
triggers with components, a webhook, sealed-looking secrets, spread over ``--tenants``
tenants) to a fresh nats-server, then times:

- the ceiling: the same ordered consumer reading the whole stream, counting messages, with
  no decoding and no applying;
- the feed: ``SubscriptionFeed.run`` building a ``RoutingTable`` until ``ready``.

Prints both rates and their ratio. Target (issue 3): 100,000 subscriptions in < 10 s.

    .venv/bin/python bench/router_table.py [--count 100000] [--tenants 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

from nats.aio.client import Client  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402

from tests.support import NatsServer  # noqa: E402
from webhooks.v1 import common_pb2, messages_pb2  # noqa: E402
from webhooks_config import load_settings  # noqa: E402
from webhooks_messaging import SUBSCRIPTIONS, connect, declare_streams, subscription_subject  # noqa: E402
from webhooks_messaging.feed import SUBJECTS, SubscriptionFeed  # noqa: E402
from webhooks_messaging.following import (  # noqa: E402
    IDLE_HEARTBEAT_SECONDS,
    PENDING_BYTES_LIMIT,
    PENDING_MSGS_LIMIT,
)
from webhooks_router.routes import RoutingTable  # noqa: E402

TARGET_SECONDS = 10.0
PUBLISH_CHUNK = 2_000


def _triggers(n: int) -> tuple[str, list[common_pb2.TriggerSpec]]:
    """An entity and several triggers of it, varied by ``n``."""
    spec = common_pb2.TriggerSpec
    change = common_pb2.StatusChange
    match n % 5:
        case 0 | 1:
            return "Object", [
                spec(trigger="OnNew", channels=[n % 18, (n + 1) % 18]),
                spec(trigger="OnNewChild", channels=[(n + 2) % 18]),
                spec(
                    trigger="OnNewActivity",
                    activity_types=[1, 2],
                    channels=[n % 18],
                    status_changes=[
                        change(from_status=0, to_status=2),
                        change(from_status=1, to_status=5),
                    ],
                ),
                spec(trigger="OnNewActivity", activity_types=[3, 6]),
                spec(trigger="OnUpdateTag"),
            ]
        case 2:
            return "User", [
                spec(trigger="OnNew", channels=[n % 18]),
                spec(trigger="OnUpdate"),
                spec(trigger="OnUpdateTag"),
            ]
        case 3:
            return "WhatsApp", [
                spec(
                    trigger="OnMessageStatus",
                    whatsapp_channels=[f"wa-{n % 7}"],
                    whatsapp_statuses=["delivered", "read", "failed"],
                ),
                spec(trigger="OnMessageStatus", whatsapp_channels=[f"wa-{n % 7 + 10}"]),
            ]
        case _:
            return "Tag", [spec(trigger="OnAdd"), spec(trigger="OnUpdate")]


def subscription_message(n: int, tenants: int) -> tuple[str, bytes]:
    """The subject and payload of the n-th subscription's Created event."""
    tenant = f"tenant-{n % tenants:03d}"
    subscription_id = str(uuid.UUID(int=n + 1))
    entity, triggers = _triggers(n)
    state = messages_pb2.SubscriptionState(
        id=subscription_id,
        tenant=tenant,
        name=f"subscription-{n}",
        entity=entity,
        triggers=triggers,
        include_complete_data=n % 3 == 0,
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST,
            url=f"https://hooks-{n % 97}.example.com/webhooks/{subscription_id}",
            method="POST",
            format="JSON",
            content_type="application/json",
        ),
        authentication=common_pb2.Authentication(
            basic=common_pb2.BasicAuth(username="integration", password="gAAAAAB" + "x" * 93)
        ),
        retry_policy=common_pb2.RetryPolicy(retries=3, interval_seconds=300),
        active=n % 10 != 0,  # one in ten inactive
        version=1,
        signing_secret="gAAAAAB" + "s" * 93,
    )
    state.created_at.GetCurrentTime()
    state.updated_at.CopyFrom(state.created_at)
    event = messages_pb2.SubscriptionDomainEvent(
        notification_id=n + 1, event_type="Subscription.Created", subscription=state
    )
    event.occurred_at.CopyFrom(state.created_at)
    return subscription_subject(tenant, subscription_id), event.SerializeToString()


async def publish(nc: Client, js: JetStreamContext, count: int, tenants: int) -> float:
    """Fill the stream; returns the mean payload size."""
    sizes = 0
    for start in range(0, count, PUBLISH_CHUNK):
        for n in range(start, min(start + PUBLISH_CHUNK, count)):
            subject, payload = subscription_message(n, tenants)
            sizes += len(payload)
            await nc.publish(subject, payload, headers={"Nats-Msg-Id": f"subscriptions:{n + 1}"})
        await nc.flush()
    for _ in range(600):
        if (await js.stream_info(SUBSCRIPTIONS)).state.messages >= count:
            return sizes / count
        await asyncio.sleep(0.05)
    raise RuntimeError("the stream did not receive every message")


async def ceiling(js: JetStreamContext, count: int) -> float:
    """Seconds to read the whole stream with the feed's consumer, doing nothing else."""
    done = asyncio.Event()
    seen = 0

    async def on_message(msg: Msg) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    started = time.perf_counter()
    sub = await js.subscribe(
        SUBJECTS,
        stream=SUBSCRIPTIONS,
        cb=on_message,
        ordered_consumer=True,
        idle_heartbeat=IDLE_HEARTBEAT_SECONDS,
        pending_msgs_limit=PENDING_MSGS_LIMIT,
        pending_bytes_limit=PENDING_BYTES_LIMIT,
    )
    await done.wait()
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    return elapsed


async def build(js: JetStreamContext) -> tuple[float, int]:
    """Seconds for the feed to build the table until ready, and the active entries."""
    table = RoutingTable()
    feed = SubscriptionFeed(table)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(feed.run(js, stop))
    await feed.ready.wait()
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed, len(table)


async def main(count: int, tenants: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        server = NatsServer(Path(tmp) / "store")
        server.start()
        try:
            settings = load_settings({"WEBHOOKS_NATS_URL": server.url})
            nc = await connect(settings, "bench-router-table")
            js = nc.jetstream()
            await declare_streams(js, settings)
            started = time.perf_counter()
            size = await publish(nc, js, count, tenants)
            print(
                f"published {count:,} subscriptions ({tenants} tenants, {size:.0f} B each) "
                f"in {time.perf_counter() - started:.1f} s"
            )
            ceilings, builds = [], []
            for run in range(1, runs + 1):
                read = await ceiling(js, count)
                built, active = await build(js)
                ceilings.append(read)
                builds.append(built)
                print(
                    f"run {run}: ceiling read {read:.2f} s ({count / read:,.0f} msg/s); "
                    f"feed build {built:.2f} s ({count / built:,.0f} subscriptions/s, "
                    f"{active:,} active); ratio {read / built:.2f}"
                )
            read, built = statistics.median(ceilings), statistics.median(builds)
            verdict = "met" if built < TARGET_SECONDS else "MISSED"
            print(
                f"median: ceiling {count / read:,.0f} msg/s, feed {count / built:,.0f} "
                f"subscriptions/s, build {built:.2f} s for {count:,} (ratio {read / built:.2f}); "
                f"target < {TARGET_SECONDS:.0f} s: {verdict}"
            )
            await nc.drain()
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.tenants, args.runs))
