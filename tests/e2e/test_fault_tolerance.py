"""Fault tolerance of the whole platform, run as processes (``tests.support.platform_stack``):
during a load of 5,000 events published through PublishEvents, each service is killed with
SIGKILL and restarted in turn (on SQLite and on PostgreSQL), NATS is restarted, or one node
of a 3-node NATS cluster is killed — and afterwards every delivery has arrived at least
once, none is lost, and the failures view agrees with what ATTEMPTS holds.

The load: events of five kinds in one tenant, each kind matched by exactly one
subscription, so every event is one delivery. Four subscriptions go to a healthy HTTPS
receiver; one in fifty events is for a fifth whose endpoint always answers 500 (one retry,
1 s later), so the failures view has failed events to be consistent about.

What is asserted comes from outside the services:

- the receiver's requests, read by the payload's ``EventId`` and ``SubscriptionName``: the
  (event, subscription) pairs that arrived are exactly those expected, each with one
  ``webhook-id`` however often it was sent (re-routing after a crash makes the same
  delivery, re-sending sends the same id);
- ATTEMPTS, read afresh from the stream once everything has settled: every healthy
  delivery SUCCEEDED, every failing one FAILED for good after its two attempts;
- the FailuresService: CountFailures and ListFailedEvents (every page) give, per
  subscription and per delivery, what those ATTEMPTS records say;
- the consumers of EVENTS and DELIVERIES empty, DELIVERIES holding nothing, every process
  alive and none of its background loops failing over and over.

Jobs and events a killed process had taken come back after the consumers' ack_wait
(webhooks_messaging.heartbeats.ACK_WAIT_SECONDS, for the router and the sender), which is
what the waits are sized for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from tests.support.nats_cluster import NatsCluster
from tests.support.platform_stack import (
    ACCEPTED,
    FAILED,
    RPC_TIMEOUT,
    SUCCEEDED,
    Platform,
    new_tenant,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from webhooks.v1 import common_pb2, failures_pb2, messages_pb2, router_pb2, subscriptions_pb2
from webhooks_messaging import ATTEMPTS, DELIVERIES, EVENTS, STREAMS
from webhooks_messaging.heartbeats import ACK_WAIT_SECONDS

pytestmark = pytest.mark.fault

TIMEOUT_MS = 2000
SENDER_ACK_WAIT = ACK_WAIT_SECONDS
ROUTER_ACK_WAIT = ACK_WAIT_SECONDS
# A killed router's events come back after its ack_wait, and the jobs they make may go to a sender
# that is killed in turn: both waits, and a margin for a busy machine.
SETTLE_SECONDS = ROUTER_ACK_WAIT + SENDER_ACK_WAIT + 60
# The failing endpoint answers 500 (a failure, not a request to slow down: no throttle)
# and the circuit breaker needs more attempts than the load makes: this test is about the
# platform's own faults, its failing deliveries attempted as their retry policy says
# (endpoint health, which would hold them back, is tests/e2e/test_endpoint_health.py's).
ENV = {
    "WEBHOOKS_SENDER_TIMEOUT_MS": str(TIMEOUT_MS),
    "WEBHOOKS_HEALTH_BREAKER_MIN_REQUESTS": "100000",
}

HEALTHY_KINDS = (("Object", "OnNew"), ("User", "OnNew"), ("Tag", "OnAdd"), ("Form", "OnSubmit"))
FAILING_KIND = ("Tag", "OnUpdate")
FAILING_EVERY = 50  # one event in 50 is for the failing subscription
FAILING_ATTEMPTS = 2  # retries=1
BATCH = 100  # events per PublishEvents call
BATCH_INTERVAL = 0.15  # seconds between calls: the load lasts a while

DUPLICATE = router_pb2.PUBLISH_STATUS_DUPLICATE
RETRIED_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.CANCELLED,
}
FS = failures_pb2
VIEW_FAILED = FS.FAILED_EVENT_STATE_FAILED
VIEW_RETRYING = FS.FAILED_EVENT_STATE_RETRYING
VIEW_RECOVERED = FS.FAILED_EVENT_STATE_RECOVERED
Pair = tuple[str, str]  # (event id, subscription name)
RESTARTING = "failed; restarting"  # webhooks_grpc.supervision's line when a loop failed


# ---- the load


@dataclass
class Tally:
    """What the receiver got, by (event id, subscription name) from the payload: the
    ``webhook-id`` values seen and the number of requests."""

    receiver: HttpsReceiver
    ids: dict[Pair, set[str]] = field(default_factory=dict)
    hits: Counter[Pair] = field(default_factory=Counter)
    _read: int = 0

    def update(self) -> Tally:
        new = self.receiver.received[self._read :]
        self._read += len(new)
        for request in new:
            event = json.loads(request.body)["Event"]
            pair = (event["EventId"], event["SubscriptionName"])
            self.ids.setdefault(pair, set()).add(request.headers["webhook-id"])
            self.hits[pair] += 1
        return self

    @property
    def requests(self) -> int:
        return self._read


@dataclass
class Load:
    tenant: str
    healthy: list[subscriptions_pb2.Subscription]
    failing: subscriptions_pb2.Subscription
    events: list[messages_pb2.PlatformEvent]
    expected: set[Pair]  # every delivery: (event id, subscription name)
    failing_pairs: set[Pair]
    tally: Tally

    @property
    def subscriptions(self) -> list[subscriptions_pb2.Subscription]:
        return [*self.healthy, self.failing]

    def arrived(self) -> int:
        """Distinct expected deliveries the receiver has had so far."""
        return len(self.tally.update().ids.keys() & self.expected)


async def prepare(p: Platform, receiver: HttpsReceiver, count: int) -> Load:
    tenant = new_tenant("fault")
    healthy = []
    for n, (entity, trigger) in enumerate(HEALTHY_KINDS):
        spec = rest(
            f"healthy {n}",
            receiver.url(f"/healthy-{n}"),
            entity=entity,
            triggers=[common_pb2.TriggerSpec(trigger=trigger)],
            retries=2,  # a margin against a timeout on a busy machine
        )
        healthy.append((await p.create_subscription(tenant, spec)).subscription)
    receiver.reply("/failing", Reply(500, b"down for the test"))
    failing_spec = rest(
        "failing",
        receiver.url("/failing"),
        entity=FAILING_KIND[0],
        triggers=[common_pb2.TriggerSpec(trigger=FAILING_KIND[1])],
        retries=FAILING_ATTEMPTS - 1,
        interval=1,
    )
    failing = (await p.create_subscription(tenant, failing_spec)).subscription

    events, expected, failing_pairs = [], set(), set()
    for n in range(count):
        event_id = f"ev-{tenant}-{n:05d}"
        if n % FAILING_EVERY == FAILING_EVERY - 1:
            events.append(platform_event(tenant, *FAILING_KIND, event_id=event_id))
            failing_pairs.add((event_id, failing.name))
            expected.add((event_id, failing.name))
        else:
            kind = n % len(HEALTHY_KINDS)
            events.append(platform_event(tenant, *HEALTHY_KINDS[kind], event_id=event_id))
            expected.add((event_id, healthy[kind].name))
    return Load(tenant, healthy, failing, events, expected, failing_pairs, Tally(receiver))


class Publisher:
    """Publishes the load through PublishEvents, ``BATCH`` events a call, each call retried
    (same event ids: the router answers DUPLICATE for those already stored) while the
    router or NATS is down."""

    def __init__(self, p: Platform, load: Load) -> None:
        self.p = p
        self.load = load
        self.published = 0  # events of the calls answered so far
        self.retries = 0
        self.statuses: Counter[int] = Counter()

    def reached(self, task: asyncio.Task[None], share: float) -> bool:
        """Whether ``share`` of the load is published by ``task`` (running ``run()``);
        raises what the task raised if it failed."""
        if task.done() and task.exception() is not None:
            task.result()
        return self.published >= share * len(self.load.events)

    async def run(self) -> None:
        events = self.load.events
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            await self._publish(chunk)
            self.published += len(chunk)
            await asyncio.sleep(BATCH_INTERVAL)

    async def _publish(self, chunk: list[messages_pb2.PlatformEvent]) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        request = router_pb2.PublishEventsRequest(events=chunk)
        while True:
            channel = self.p.routers[0].channel
            if channel is not None:  # None only while the router is being restarted
                try:
                    response = await self.p.router.PublishEvents(
                        request, metadata=platform(self.load.tenant), timeout=10
                    )
                    break
                except grpc.aio.AioRpcError as err:
                    if err.code() not in RETRIED_CODES or time.monotonic() > deadline:
                        raise
                except asyncio.CancelledError:
                    # A restart closes the old channel, cancelling the call on it; a
                    # cancellation of this task itself goes through.
                    task = asyncio.current_task()
                    if task is None or task.cancelling() or time.monotonic() > deadline:
                        raise
            self.retries += 1
            await asyncio.sleep(0.2)
        self.statuses.update(r.status for r in response.results)
        refused = [r for r in response.results if r.status not in (ACCEPTED, DUPLICATE)]
        assert not refused, f"events refused: {refused[:3]}"
        assert [r.event_id for r in response.results] == [e.event_id for e in chunk]


async def wait_until(
    done: Callable[[], bool] | Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 - a deadline for a condition
    what: Callable[[], str],
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = done()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what()}")
        await asyncio.sleep(0.1)


# ---- what ATTEMPTS and the failures view say


async def read_attempts(p: Platform, tenant: str) -> list[messages_pb2.AttemptRecord]:
    """Every AttemptRecord of ``tenant`` on ATTEMPTS, in stream order, read afresh (a
    consumer made now, so a NATS restart in the test cannot have cut it short)."""
    info = await p.js.stream_info(ATTEMPTS, subjects_filter=f"attempts.{tenant}.>")
    total = sum((info.state.subjects or {}).values())
    records: list[messages_pb2.AttemptRecord] = []
    done = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        records.append(messages_pb2.AttemptRecord.FromString(msg.data))
        if len(records) >= total:
            done.set()

    subscription = await p.js.subscribe(
        f"attempts.{tenant}.>", stream=ATTEMPTS, cb=on_message, ordered_consumer=True
    )
    try:
        if total:
            await asyncio.wait_for(done.wait(), 60)
    finally:
        await subscription.unsubscribe()
    return records


@dataclass
class Expected:
    """The failures view as the records on ATTEMPTS define it (services/failures model)."""

    failed_attempts: Counter[str] = field(default_factory=Counter)  # by subscription
    failed_events: dict[str, set[str]] = field(default_factory=dict)  # subscription → ids
    failed_of: Counter[str] = field(default_factory=Counter)  # delivery → failed attempts
    state: dict[str, int] = field(default_factory=dict)  # delivery → view state
    retry_attempts: Counter[str] = field(default_factory=Counter)  # delivery → attempts - 1
    subscription_of: dict[str, str] = field(default_factory=dict)  # delivery → subscription

    @classmethod
    def fold(cls, records: Iterable[messages_pb2.AttemptRecord]) -> Expected:
        expected = cls()
        attempts: Counter[str] = Counter()
        for record in records:  # in stream order; one series (no manual redelivery here)
            delivery = record.delivery_id
            expected.subscription_of[delivery] = record.subscription_id
            attempts[delivery] += 1
            if record.outcome == FAILED:
                expected.failed_attempts[record.subscription_id] += 1
                expected.failed_of[delivery] += 1
                expected.failed_events.setdefault(record.subscription_id, set()).add(delivery)
                expected.state[delivery] = VIEW_RETRYING if record.will_retry else VIEW_FAILED
            elif record.outcome == SUCCEEDED and delivery in expected.state:
                expected.state[delivery] = VIEW_RECOVERED
        for delivery in expected.state:
            expected.retry_attempts[delivery] = attempts[delivery] - 1
        return expected


async def list_failed(p: Platform, tenant: str) -> list[failures_pb2.FailedEvent]:
    found: list[failures_pb2.FailedEvent] = []
    token = ""
    while True:
        page = await p.failures.ListFailedEvents(
            FS.ListFailedEventsRequest(page_size=500, page_token=token),
            metadata=platform(tenant),
            timeout=RPC_TIMEOUT,
        )
        found.extend(page.failed_events)
        token = page.next_page_token
        if not token:
            return found


# ---- the checks every scenario ends with


async def settle(p: Platform, load: Load, publisher: asyncio.Task[None]) -> None:
    """Until the whole load is published, delivered and every attempt made: the receiver
    has every expected delivery (the failing ones twice), and the consumers and
    DELIVERIES are empty."""
    await asyncio.wait_for(publisher, SETTLE_SECONDS)

    def delivered() -> bool:
        load.tally.update()
        if not load.expected <= load.tally.ids.keys():
            return False
        return all(load.tally.hits[pair] >= FAILING_ATTEMPTS for pair in load.failing_pairs)

    def missing() -> str:
        absent = load.expected - load.tally.ids.keys()
        some = sorted(absent)[:3]
        return f"{len(absent)} of {len(load.expected)} deliveries not arrived, e.g. {some}"

    try:
        await wait_until(delivered, SETTLE_SECONDS, missing)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{await whereabouts(p, load)}") from None
    await p.wait_idle(SETTLE_SECONDS, scheduled=True)


async def whereabouts(p: Platform, load: Load) -> str:
    """Where the deliveries that did not arrive are: for the failure message."""
    absent = load.expected - load.tally.update().ids.keys()
    events = {event_id for event_id, _ in absent}
    on_events = await p.js.stream_info(EVENTS, subjects_filter=f"events.{load.tenant}.>")
    jobs: Counter[str] = Counter()
    samples: list[str] = []
    seq = 1
    while True:
        try:
            msg = await p.js.get_msg(DELIVERIES, seq=seq, subject="deliveries.>", next=True)
        except NotFoundError:
            break
        assert msg.seq is not None
        seq = msg.seq + 1
        job = messages_pb2.DeliveryJob.FromString(msg.data or b"")
        if job.event_id in events:
            jobs[str(msg.subject).split(".")[1]] += 1
            if len(samples) < 3:
                samples.append(f"{msg.subject} {msg.headers}")
    records = [r for r in await read_attempts(p, load.tenant) if r.event_id in events]
    return (
        f"{len(absent)} absent; EVENTS holds {on_events.state.messages} messages in all, "
        f"{sum((on_events.state.subjects or {}).values())} of this tenant; router "
        f"(pending, unacked) {await p.consumer_backlog(EVENTS, 'router')}, sender "
        f"{await p.consumer_backlog(DELIVERIES, 'sender')}; jobs of absent events on "
        f"DELIVERIES by kind {dict(jobs)}; their attempt records: {len(records)}, outcomes "
        f"{dict(Counter(r.outcome for r in records))}; now {datetime.now(UTC)}, e.g. "
        + "; ".join(samples)
    )


async def check_everything(p: Platform, load: Load) -> str:
    """The assertions of every scenario; returns a summary line."""
    tally = load.tally.update()
    # Every delivery arrived, nothing else did, and each always under one webhook-id.
    assert tally.ids.keys() == load.expected
    several = {pair: ids for pair, ids in tally.ids.items() if len(ids) != 1}
    assert not several, f"deliveries sent under several webhook-ids: {list(several.items())[:3]}"

    records = await read_attempts(p, load.tenant)
    by_name = {s.id: s.name for s in load.subscriptions}
    delivery_of: dict[Pair, set[str]] = {}
    for record in records:
        pair = (record.event_id, by_name[record.subscription_id])
        delivery_of.setdefault(pair, set()).add(record.delivery_id)
    assert delivery_of.keys() == load.expected, "a delivery without an attempt on ATTEMPTS"
    assert all(len(ids) == 1 for ids in delivery_of.values()), "one event, two deliveries"
    for pair, ids in delivery_of.items():
        assert tally.ids[pair] == ids, f"{pair}: sent as {tally.ids[pair]}, recorded as {ids}"

    succeeded = {r.delivery_id for r in records if r.outcome == SUCCEEDED}
    healthy = {next(iter(delivery_of[pair])) for pair in load.expected - load.failing_pairs}
    failing = {next(iter(delivery_of[pair])) for pair in load.failing_pairs}
    assert healthy <= succeeded, f"{len(healthy - succeeded)} healthy deliveries not SUCCEEDED"
    assert not failing & succeeded

    # The failures view is what ATTEMPTS says: counts, rows, states.
    expected = Expected.fold(records)
    assert expected.failed_events[load.failing.id] == failing
    for delivery in failing:
        history = [
            (r.series, r.attempt, r.outcome, r.will_retry, r.started_at.ToJsonString())
            for r in records
            if r.delivery_id == delivery
        ]
        assert expected.state[delivery] == VIEW_FAILED, f"{delivery}, in stream order: {history}"
        assert expected.retry_attempts[delivery] == FAILING_ATTEMPTS - 1, history
    counts = await p.failures.CountFailures(
        FS.CountFailuresRequest(subscription_ids=[s.id for s in load.subscriptions]),
        metadata=platform(load.tenant),
        timeout=RPC_TIMEOUT,
    )
    got_counts = {c.subscription_id: (c.failed_attempts, c.failed_events) for c in counts.counts}
    # The counts are of the unresolved failed events (not RECOVERED) and their failed attempts.
    unresolved = [d for d, state in expected.state.items() if state != VIEW_RECOVERED]
    want_counts = {
        s.id: (
            sum(expected.failed_of[d] for d in unresolved if expected.subscription_of[d] == s.id),
            sum(expected.subscription_of[d] == s.id for d in unresolved),
        )
        for s in load.subscriptions
    }
    assert got_counts == want_counts
    listed = await list_failed(p, load.tenant)
    assert len(listed) == len({row.delivery_id for row in listed}), "a failed event twice"
    assert {row.delivery_id: row.state for row in listed} == expected.state
    for row in listed:
        assert row.subscription_id == expected.subscription_of[row.delivery_id]
        assert row.retry_attempts == expected.retry_attempts[row.delivery_id], row

    # Nothing left anywhere.
    assert await p.consumer_backlog(EVENTS, "router") == (0, 0)
    assert await p.consumer_backlog(DELIVERIES, "sender") == (0, 0)
    assert (await p.js.stream_info(DELIVERIES)).state.messages == 0

    # Every process up, none of its background loops failing over and over (a loop that
    # fails is restarted after 1 s and logs it).
    restarts = {
        process.log_path.name: process.log_text().count(RESTARTING) for process in p.processes
    }
    await asyncio.sleep(3)
    for process in p.processes:
        assert process.alive, f"{process.service} died:\n{process.log_tail()}"
        count = process.log_text().count(RESTARTING)
        assert count == restarts[process.log_path.name], (
            f"{process.service} keeps restarting a loop:\n{process.log_tail()}"
        )
    restarted = {name: count for name, count in restarts.items() if count}
    return (
        f"{len(load.events)} events, {tally.requests} requests for {len(load.expected)} "
        f"deliveries ({tally.requests - len(load.expected) - len(failing)} re-sent), "
        f"{len(records)} attempt records, {len(listed)} failed events; loops restarted "
        f"{restarted or 'none'}"
    )


@contextlib.asynccontextmanager
async def loaded(p: Platform, count: int) -> AsyncIterator[tuple[Load, Publisher]]:
    """A receiver, the subscriptions and a Publisher ready to run (not started)."""
    async with HttpsReceiver(p.pki) as receiver:
        load = await prepare(p, receiver, count)
        yield load, Publisher(p, load)


def report(name: str, started: float, summary: str, publisher: Publisher, notes: str) -> None:
    print(
        f"\n{name}: {time.monotonic() - started:.1f} s; {summary}; "
        f"{publisher.retries} PublishEvents calls retried, statuses "
        f"{dict(publisher.statuses)}; {notes}"
    )


# ---- scenarios


async def held_by(p: Platform, stream: str, durable: str, at_least: int, within: float) -> int:
    """Polls the durable until ``at_least`` messages are delivered and not acknowledged
    (taken by a process, in its hands); the most seen if that did not happen ``within``."""
    deadline = time.monotonic() + within
    most = 0
    while time.monotonic() < deadline:
        most = max(most, (await p.consumer_backlog(stream, durable))[1])
        if most >= at_least:
            break
        await asyncio.sleep(0.002)
    return most


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    """running_platform's store arguments: SQLite files, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return {"store": "sqlite"}
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")("fault")
    return {"store": "postgres", "postgres_url": url, "postgres_schema": schema}


async def test_kill_9_each_service_in_turn_during_5000_events_loses_no_delivery(
    tmp_path: Path, store: dict[str, str]
) -> None:
    """SIGKILL and restart, one after the other while the load runs: subscriptions (at 15 %
    published), router (30 %, holding at least 50 events of EVENTS not yet acknowledged),
    sender (50 %, holding at least 40 jobs), failures (70 %).

    The healthy endpoints answer after 50 ms and the sender sends at most 8 requests at a
    time to each (WEBHOOKS_SENDER_ENDPOINT_CONCURRENCY): of the jobs it holds when killed,
    at most 32 are being sent and the others wait for a slot; sent, being sent and not yet
    sent, the process loses them all."""
    started = time.monotonic()
    env = ENV | {"WEBHOOKS_SENDER_ENDPOINT_CONCURRENCY": "8"}
    async with (
        running_platform(tmp_path, env=env, **store) as p,  # type: ignore[arg-type]
        loaded(p, 5000) as (load, publisher),
    ):
        for n in range(len(HEALTHY_KINDS)):
            load.tally.receiver.reply(f"/healthy-{n}", Reply(204, delay=0.05))
        publishing = asyncio.create_task(publisher.run())
        notes = []
        for process, share in (
            (p.subscriptions, 0.15),
            (p.routers[0], 0.3),
            (p.senders[0], 0.5),
            (p.failures_process, 0.7),
        ):
            assert process is not None
            await wait_until(
                lambda share=share: publisher.reached(publishing, share),
                SETTLE_SECONDS,
                lambda: f"{publisher.published} published",
            )
            held = ""
            if process.service == "router":
                count = await held_by(p, EVENTS, "router", 50, within=30)
                assert count >= 50, f"the router never held 50 events (at most {count})"
                held = f" holding {count} events"
            elif process.service == "sender":
                count = await held_by(p, DELIVERIES, "sender", 40, within=30)
                assert count >= 40, f"the sender never held 40 jobs (at most {count})"
                held = f" holding {count} jobs"
            arrived = load.arrived()
            assert arrived < len(load.expected), f"{process.service}: killed after the load"
            process.kill()
            notes.append(
                f"{process.service} killed{held} at {publisher.published} published, "
                f"{arrived} arrived"
            )
            await process.start()
        # The subscriptions service came back with every subscription.
        for subscription in load.subscriptions:
            got = await p.subs.GetSubscription(
                subscriptions_pb2.GetSubscriptionRequest(id=subscription.id),
                metadata=platform(load.tenant),
                timeout=RPC_TIMEOUT,
            )
            assert got.name == subscription.name
        await settle(p, load, publishing)
        summary = await check_everything(p, load)
        report(f"kill -9 each service ({p.store})", started, summary, publisher, "; ".join(notes))


async def test_nats_restarted_during_5000_events_loses_no_delivery(tmp_path: Path) -> None:
    """The nats-server stopped (SIGTERM) at 40 % published and started again on the same
    store 2 s later: every service reconnects, its consumers resume."""
    started = time.monotonic()
    async with running_platform(tmp_path, env=ENV) as p, loaded(p, 5000) as (load, publisher):
        assert p.nats is not None
        publishing = asyncio.create_task(publisher.run())
        await wait_until(
            lambda: publisher.reached(publishing, 0.4),
            SETTLE_SECONDS,
            lambda: f"{publisher.published} published",
        )
        arrived = load.arrived()
        assert arrived < len(load.expected), "NATS restarted after the load"
        await asyncio.to_thread(p.nats.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(p.nats.start)
        notes = f"NATS restarted at {publisher.published} published, {arrived} arrived"
        await settle(p, load, publishing)
        summary = await check_everything(p, load)
        report("NATS restart", started, summary, publisher, notes)


async def replicated(p: Platform, timeout: float = 30) -> None:  # noqa: ASYNC109
    """Until every stream has 3 replicas: a leader and two current followers."""

    async def all_current() -> bool:
        for stream in STREAMS:
            try:
                info = await p.js.stream_info(stream)
            except NotFoundError:
                return False
            cluster = info.cluster
            peers = (cluster.replicas or []) if cluster is not None else []
            if info.config.num_replicas != 3 or cluster is None or not cluster.leader:
                return False
            if len(peers) != 2 or not all(peer.current for peer in peers):
                return False
        return True

    await wait_until(all_current, timeout, lambda: "streams not on 3 current nodes")


async def test_a_nats_cluster_node_killed_during_5000_events_loses_no_delivery(
    tmp_path: Path,
) -> None:
    """Three nats-server nodes, every stream with 3 replicas (WEBHOOKS_STREAM_REPLICAS=3);
    at 40 % published the node leading DELIVERIES is killed with SIGKILL and stays down
    until everything has settled: the other two carry on."""
    started = time.monotonic()
    cluster = NatsCluster(tmp_path / "cluster")
    await asyncio.to_thread(cluster.start)
    try:
        async with (
            running_platform(
                tmp_path, nats_url=cluster.url, env=ENV | {"WEBHOOKS_STREAM_REPLICAS": "3"}
            ) as p,
            loaded(p, 5000) as (load, publisher),
        ):
            await replicated(p)
            publishing = asyncio.create_task(publisher.run())
            await wait_until(
                lambda: publisher.reached(publishing, 0.4),
                SETTLE_SECONDS,
                lambda: f"{publisher.published} published",
            )
            arrived = load.arrived()
            assert arrived < len(load.expected), "the node was killed after the load"
            leader = (await p.js.stream_info(DELIVERIES)).cluster
            assert leader is not None and leader.leader is not None
            await asyncio.to_thread(cluster.kill, leader.leader)
            notes = (
                f"{leader.leader} (DELIVERIES leader) killed at {publisher.published} "
                f"published, {arrived} arrived"
            )
            await settle(p, load, publishing)
            summary = await check_everything(p, load)
            report("cluster node killed", started, summary, publisher, notes)
    finally:
        await asyncio.to_thread(cluster.stop)
