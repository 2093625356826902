"""Scale-out: two routers and two senders sharing their durable consumers (EVENTS "router",
DELIVERIES "sender"; replicas told apart by WEBHOOKS_INSTANCE), on PostgreSQL, every
service a separate process (``tests.support.platform_stack``).

2,000 events at fan-out 1, ingested through both routers, to two receivers: every delivery
is made exactly once (no process crashed, so no redelivery may show), and the work is
spread. Which sender made a request is read from outside the sender: the request's client
port is one of that process's sockets (``/proc``). Which router routed how many events is
the line each router logs when its routing consumer stops (its counters since start).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.support.platform_stack import (
    ROUTER_CONSUMER,
    SENDER_CONSUMER,
    PeerRecordingReceiver,
    Platform,
    new_tenant,
    platform_event,
    postgres_schema,
    rest,
    running_platform,
    tcp_ports_of,
)
from tests.support.service_process import ServiceProcess
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_messaging import DELIVERIES, EVENTS

pytestmark = pytest.mark.postgres

EVENTS_COUNT = 2000
# Each replica's share must be at least this: an even split is 50 %, and one replica
# taking nearly everything (the other idle or not pulling) must fail.
MIN_SHARE = 0.15
ROUTED = re.compile(r"routing consumer stopped: (\d+) events routed, (\d+) jobs published")


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> AsyncIterator[Platform]:
    with postgres_schema(postgres_url, "scale") as schema:
        async with running_platform(
            tmp_path_factory.mktemp("scale-out"),
            store="postgres",
            postgres_url=postgres_url,
            postgres_schema=schema,
            routers=2,
            senders=2,
            # Compose's attempt timeout: the machine may be busy, and a timed-out attempt
            # that reached the receiver would be a FAILED attempt and no longer exactly-once.
            env={"WEBHOOKS_SENDER_TIMEOUT_MS": "15000"},
        ) as running:
            yield running


async def pulling(stack: Platform, stream: str, durable: str, replicas: int) -> None:
    """Until ``replicas`` pull requests wait on the durable: every replica is consuming."""
    deadline = time.monotonic() + 30
    while True:
        info = await stack.js.consumer_info(stream, durable)
        if (info.num_waiting or 0) >= replicas:
            return
        assert time.monotonic() < deadline, f"{durable}: {info.num_waiting} pulling"
        await asyncio.sleep(0.1)


def routed_by(process: ServiceProcess) -> tuple[int, int]:
    """(events routed, jobs published) from the router's stop line."""
    found = ROUTED.findall(process.log_text())
    assert found, f"no stop line in the router's log:\n{process.log_tail()}"
    events, jobs = found[-1]
    return int(events), int(jobs)


async def test_two_routers_and_two_senders_share_2000_events(stack: Platform) -> None:
    tenant = new_tenant("scale")
    assert {p.env["WEBHOOKS_INSTANCE"] for p in stack.routers + stack.senders} == {
        "router-1",
        "router-2",
        "sender-1",
        "sender-2",
    }
    await pulling(stack, EVENTS, ROUTER_CONSUMER, 2)
    await pulling(stack, DELIVERIES, SENDER_CONSUMER, 2)
    attempts = await stack.attempts(tenant)
    objects, users = PeerRecordingReceiver(stack.pki), PeerRecordingReceiver(stack.pki)
    async with objects, users:
        # Fan-out 1: each event matches exactly one subscription.
        await stack.create_subscription(tenant, rest("objects", objects.url("/objects")))
        await stack.create_subscription(
            tenant,
            rest(
                "users",
                users.url("/users"),
                entity="User",
                triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
            ),
        )
        events = [
            platform_event(tenant, "Object", "OnNew")
            if n % 2
            else platform_event(tenant, "User", "OnNew")
            for n in range(EVENTS_COUNT)
        ]
        expected = {("/objects" if e.entity == "Object" else "/users", e.event_id) for e in events}
        started = time.monotonic()
        await stack.publish(events)  # batches of 500, alternating between the routers
        await stack.wait_idle(within=120, scheduled=True)
        elapsed = time.monotonic() - started
        received = objects.received + users.received
        got = [(r.path, json.loads(r.body)["Event"]["EventId"]) for r in received]
        assert len(got) == len(set(got)), f"{len(got) - len(set(got))} deliveries made twice"
        assert set(got) == expected, (
            f"missing {len(expected - set(got))}, unexpected {len(set(got) - expected)}"
        )
        webhook_ids = {r.headers["webhook-id"] for r in received}
        assert len(webhook_ids) == EVENTS_COUNT
        await attempts.wait(lambda: len(attempts.records) >= EVENTS_COUNT, timeout=30)
        outcomes = Counter(
            (messages_pb2.AttemptOutcome.Name(r.outcome), r.status_code) for r in attempts.records
        )
        assert outcomes == {("ATTEMPT_OUTCOME_SUCCEEDED", 204): EVENTS_COUNT}, outcomes
        assert webhook_ids == attempts.succeeded()
        assert len(attempts.records) == EVENTS_COUNT  # one attempt each, nothing retried

        # Which sender made each request: its connection is one of that process's sockets
        # (still open: kept alive in its pool).
        by_sender = []
        for sender in stack.senders:
            assert sender.process is not None
            count = 0
            for receiver in (objects, users):
                ports = tcp_ports_of(sender.process.pid, to_port=receiver.port)
                count += sum(port in ports for port in receiver.peer_ports)
            by_sender.append(count)
        assert sum(by_sender) == EVENTS_COUNT, by_sender
    # Each router says how many events it routed when it stops.
    for router in stack.routers:
        await router.stop(require_clean_exit=True)
    by_router = [routed_by(router) for router in stack.routers]
    print(
        f"\n{EVENTS_COUNT} events in {elapsed:.1f} s; deliveries per sender {by_sender}, "
        f"(events, jobs) per router {by_router}"
    )
    assert sum(events for events, _ in by_router) == EVENTS_COUNT, by_router
    assert all(events == jobs for events, jobs in by_router), by_router  # fan-out 1
    for share in [*by_sender, *(events for events, _ in by_router)]:
        assert share >= MIN_SHARE * EVENTS_COUNT, (by_sender, by_router)
