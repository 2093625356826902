"""Both lanes on a 3-node NATS cluster with replicas of the router and the sender
(issue 13; docs/scaling.md): every stream with 3 replicas (WEBHOOKS_STREAM_REPLICAS=3), two
routers and two senders sharing the four durables (``router`` and ``router-bulk`` on
EVENTS, ``sender`` and ``sender-bulk`` on DELIVERIES).

A noisy tenant publishes bursts far beyond its standard-lane bucket (so most of its events
take the bulk lane) while a quiet tenant publishes a few events (the standard lane). Every
delivery arrives, once before and once after the node leading EVENTS is killed with
SIGKILL; the bulk durables take work on both sides of the kill. Waits are on conditions
with generous deadlines: the machine is shared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from nats.js.errors import Error as JetStreamError

from tests.support.nats_cluster import NatsCluster
from tests.support.platform_stack import (
    ACCEPTED,
    ROUTER_BULK_CONSUMER,
    ROUTER_CONSUMER,
    SENDER_BULK_CONSUMER,
    SENDER_CONSUMER,
    Platform,
    running_platform,
)
from tests.support.tenant_burst import Party, party
from webhooks.v1 import router_pb2
from webhooks_messaging import DELIVERIES, EVENTS, STREAMS

pytestmark = pytest.mark.fault

BURST = 20  # WEBHOOKS_TENANT_STANDARD_BURST: a tenant's events at once on the standard lane
RATE = 1  # WEBHOOKS_TENANT_STANDARD_RATE: and then per second
NOISY = 300  # the noisy tenant's events per round: most beyond its bucket, on the bulk lane
NOISY_PER_CALL = 30  # a bucket holds fewer: each call goes mostly to the bulk lane
QUIET = 5  # the quiet tenant's events per round, within its bucket
WITHIN = 240.0  # seconds: healing (10 s ack_wait) and elections on a busy machine
DUPLICATE = router_pb2.PUBLISH_STATUS_DUPLICATE
DURABLES = (
    (EVENTS, ROUTER_CONSUMER),
    (EVENTS, ROUTER_BULK_CONSUMER),
    (DELIVERIES, SENDER_CONSUMER),
    (DELIVERIES, SENDER_BULK_CONSUMER),
)


async def wait_until(probe: Callable[[], Awaitable[bool]], what: Callable[[], str]) -> None:
    deadline = time.monotonic() + WITHIN
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WITHIN} s: {what()}")
        await asyncio.sleep(0.2)


async def replicated(p: Platform) -> None:
    """Until every stream has a leader and two current followers."""

    async def all_current() -> bool:
        for stream in STREAMS:
            try:
                cluster = (await p.js.stream_info(stream)).cluster
            except (JetStreamError, TimeoutError):
                return False
            peers = (cluster.replicas or []) if cluster is not None else []
            if cluster is None or not cluster.leader or len(peers) != 2:
                return False
            if not all(peer.current for peer in peers):
                return False
        return True

    await wait_until(all_current, lambda: "streams not on 3 current nodes")


async def taken(p: Platform) -> dict[str, int]:
    """Messages each durable has handed out so far (its consumer sequence), by name; asked
    again while a consumer's leader is being elected."""
    counts: dict[str, int] = {}
    for stream, durable in DURABLES:
        while True:
            try:
                info = await p.js.consumer_info(stream, durable)
                break
            except (JetStreamError, TimeoutError):
                await asyncio.sleep(0.5)
        counts[durable] = (info.delivered.consumer_seq or 0) if info.delivered else 0
    return counts


async def publish_stored(p: Platform, party: Party, count: int, per_call: int) -> set[str]:
    """``count`` events of the party's tenant, ``per_call`` a call, the calls alternating
    between the routers; a call is repeated (same event ids) while the cluster elects a
    leader or a router reconnects. The delivery ids expected."""
    pairs = [party.event() for _ in range(count)]
    for number, start in enumerate(range(0, count, per_call)):
        chunk = [event for event, _ in pairs[start : start + per_call]]
        deadline = time.monotonic() + WITHIN
        while True:
            try:
                results = await p.publish(
                    chunk, batch=per_call, router=number % len(p.routers), require_accepted=False
                )
                refused = [r for r in results if r.status not in (ACCEPTED, DUPLICATE)]
                if not refused:
                    break
                problem = str(refused[0])
            except grpc.aio.AioRpcError as err:
                problem = f"{err.code()}: {err.details()}"
            assert time.monotonic() < deadline, f"events not stored within {WITHIN} s: {problem}"
            await asyncio.sleep(0.5)
    return {delivery for _, delivery in pairs}


async def round_of(p: Platform, noisy: Party, quiet: Party) -> None:
    """One round of both tenants, the noisy one in bursts, until every delivery arrived."""
    noisy_sent, quiet_sent = await asyncio.gather(
        publish_stored(p, noisy, NOISY, NOISY_PER_CALL), publish_stored(p, quiet, QUIET, 1)
    )
    await all_arrived(noisy, noisy_sent)
    await all_arrived(quiet, quiet_sent)


async def all_arrived(party: Party, sent: set[str]) -> None:
    async def probe() -> bool:
        party.receiver.poll()
        return sent <= party.receiver.at.keys()

    def missing() -> str:
        return f"{party.tenant}: {len(sent - party.receiver.at.keys())} deliveries missing"

    await wait_until(probe, missing)


@pytest.mark.timeout(900)
async def test_both_lanes_deliver_on_r3_streams_across_replicas_with_a_node_killed(
    tmp_path: Path,
) -> None:
    cluster = NatsCluster(tmp_path / "cluster")
    await asyncio.to_thread(cluster.start)
    env = {
        "WEBHOOKS_STREAM_REPLICAS": "3",
        "WEBHOOKS_TENANT_STANDARD_BURST": str(BURST),
        "WEBHOOKS_TENANT_STANDARD_RATE": str(RATE),
    }
    try:
        async with (
            running_platform(
                tmp_path, nats_url=cluster.url, routers=2, senders=2, failures=False, env=env
            ) as p,
            party(p, tmp_path, "noisy") as noisy,
            party(p, tmp_path, "quiet") as quiet,
        ):
            await replicated(p)
            for stream in STREAMS:
                assert (await p.js.stream_info(stream)).config.num_replicas == 3, stream

            await round_of(p, noisy, quiet)
            before = await taken(p)
            assert all(before.values()), f"a durable took nothing: {before}"

            leader = (await p.js.stream_info(EVENTS)).cluster
            assert leader is not None and leader.leader is not None
            await asyncio.to_thread(cluster.kill, leader.leader)

            await round_of(p, noisy, quiet)
            after = await taken(p)
            for durable in (ROUTER_BULK_CONSUMER, SENDER_BULK_CONSUMER):
                assert after[durable] > before[durable], f"{durable}: {before} -> {after}"
            assert all(process.alive for process in p.processes), "a service died"
            await p.wait_idle(within=WITHIN)
    finally:
        await asyncio.to_thread(cluster.stop)
