"""The router run for real: ``python -m webhooks_cli serve router`` as a separate process next
to ``serve subscriptions`` (also a process), both on a nats-server of this module.

Subscriptions are made through the subscriptions API; events go in over gRPC
(PublishEvents) or straight onto EVENTS; what comes out is read from DELIVERIES with a pull
consumer per test tenant (DELIVERIES is a work queue: consumers must not overlap, so each
one filters ``deliveries.jobs.<tenant>.>`` and the bulk lane's ``deliveries.bulk.<tenant>.>``
and is deleted afterwards). The expected jobs are
computed here, from the subscriptions created and the events sent, not by the router's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import nats
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from tests.support import NatsServer
from tests.support.service_process import ServiceProcess
from webhooks.v1 import (
    common_pb2,
    messages_pb2,
    router_pb2,
    router_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhooks_secrets import new_key

PLATFORM_TOKEN = "router-test-platform-" + uuid.uuid4().hex
ALPHA, BETA = "tenancy-alpha", "tenancy-beta"
TENANT_TOKENS = {ALPHA: "alpha-" + uuid.uuid4().hex, BETA: "beta-" + uuid.uuid4().hex}
EVENTS_MAX_AGE_SECONDS = 3600
RPC_TIMEOUT = 20.0
ROUTE_TIMEOUT = 45.0  # an event fetched by a killed router comes back after ack_wait (10 s)
SETTLE_SECONDS = 0.7  # after the expected jobs arrived: time for extra (wrong) ones to show
CHANGE_DEADLINE = 1.0  # a subscription change must affect routing within this
ACCEPTED = router_pb2.PUBLISH_STATUS_ACCEPTED
DUPLICATE = router_pb2.PUBLISH_STATUS_DUPLICATE
REJECTED = router_pb2.PUBLISH_STATUS_REJECTED
WHATSAPP, FACEBOOK, MAIL = 7, 1, 4
REMARK, STATUS_CHANGE = 1, 2
OPEN, RESOLVED, FORWARD = 1, 2, 3

Metadata = tuple[tuple[str, str], ...]


# ---- processes


def platform(tenant: str) -> Metadata:
    return (("authorization", f"Bearer {PLATFORM_TOKEN}"), ("x-webhooks-tenant", tenant))


def bound(tenant: str) -> Metadata:
    """A token bound to ``tenant`` (it acts for that tenant only)."""
    return (("authorization", f"Bearer {TENANT_TOKENS[tenant]}"),)


@dataclass
class Stack:
    nats: NatsServer
    subscriptions: ServiceProcess
    router: ServiceProcess
    nc: NATS
    js: JetStreamContext

    @property
    def subs(self) -> subscriptions_pb2_grpc.SubscriptionServiceStub:
        assert self.subscriptions.channel is not None
        return subscriptions_pb2_grpc.SubscriptionServiceStub(self.subscriptions.channel)

    @property
    def routes(self) -> router_pb2_grpc.RouterServiceStub:
        assert self.router.channel is not None
        return router_pb2_grpc.RouterServiceStub(self.router.channel)

    async def create(
        self,
        tenant: str,
        entity: str,
        *triggers: common_pb2.TriggerSpec,
        active: bool = True,
        wait: bool = True,
    ) -> subscriptions_pb2.Subscription:
        spec = subscriptions_pb2.SubscriptionSpec(
            name=f"router test {uuid.uuid4().hex[:10]}",
            entity=entity,
            triggers=list(triggers),
            webhook=common_pb2.Webhook(
                type=common_pb2.WEBHOOK_TYPE_REST, url="https://hooks.example.com/in"
            ),
        )
        request = subscriptions_pb2.CreateSubscriptionRequest(subscription=spec, active=active)
        response = await self.subs.CreateSubscription(
            request, metadata=platform(tenant), timeout=RPC_TIMEOUT
        )
        subscription: subscriptions_pb2.Subscription = response.subscription
        if wait:
            await self.on_stream(subscription)
        return subscription

    async def on_stream(self, subscription: subscriptions_pb2.Subscription) -> None:
        """Until the subscription's state (at least its version) is on SUBSCRIPTIONS."""
        subject = f"subscriptions.{subscription.tenant}.subscription.{subscription.id}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                msg = await self.js.get_last_msg("SUBSCRIPTIONS", subject)
                state = messages_pb2.SubscriptionDomainEvent.FromString(msg.data or b"")
                if state.subscription.version >= subscription.version:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{subscription.id} v{subscription.version} not on the stream")

    async def publish(
        self,
        events: Sequence[messages_pb2.PlatformEvent],
        metadata: Metadata,
        batch: int = 250,
    ) -> list[router_pb2.PublishResult]:
        results: list[router_pb2.PublishResult] = []
        for start in range(0, len(events), batch):
            request = router_pb2.PublishEventsRequest(events=events[start : start + batch])
            response = await self.routes.PublishEvents(
                request, metadata=metadata, timeout=RPC_TIMEOUT
            )
            results.extend(response.results)
        return results

    async def router_idle(self, within: float = ROUTE_TIMEOUT) -> None:
        """Until the router's consumer has nothing pending or unacknowledged."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                info = await self.js.consumer_info("EVENTS", "router")
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the router did not finish routing:\n{self.router.log_tail()}")


def base_env(tmp: Path, nats_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    tokens = [{"name": "platform", "token": PLATFORM_TOKEN, "tenant": "*"}]
    tokens += [{"name": t, "token": token, "tenant": t} for t, token in TENANT_TOKENS.items()]
    env.update(
        {
            "WEBHOOKS_DATA_DIR": str(tmp / "data"),
            "WEBHOOKS_NATS_URL": nats_url,
            "WEBHOOKS_TOKENS": json.dumps(tokens),
            "WEBHOOKS_SECRET_KEYS": new_key(),
            "WEBHOOKS_EVENTS_MAX_AGE_SECONDS": str(EVENTS_MAX_AGE_SECONDS),
            "WEBHOOKS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.asynccontextmanager
async def running_stack(tmp: Path, store_env: dict[str, str]) -> AsyncIterator[Stack]:
    server = NatsServer(tmp / "nats" / "store")
    await asyncio.to_thread(server.start)
    env = base_env(tmp, server.url)
    subscriptions = ServiceProcess("subscriptions", env | store_env, tmp / "subscriptions.log")
    router = ServiceProcess("router", env, tmp / "router.log")
    nc: NATS | None = None
    try:
        await subscriptions.start()
        await router.start()
        nc = await nats.connect(server.url)
        yield Stack(server, subscriptions, router, nc, nc.jetstream())
    finally:
        if nc is not None:
            await nc.close()
        await router.stop()
        await subscriptions.stop()
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("router"), {"WEBHOOKS_STORE": "sqlite"}) as s:
        yield s


# ---- events, subscriptions and the expected jobs


def trigger(name: str, **components: Any) -> common_pb2.TriggerSpec:
    changes = components.pop("status_changes", [])
    spec = common_pb2.TriggerSpec(trigger=name, **components)
    spec.status_changes.extend(
        common_pb2.StatusChange(from_status=f, to_status=t) for f, t in changes
    )
    return spec


def event(
    tenant: str,
    entity: str,
    trigger_name: str,
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    channel: int | None = None,
    activity: int | None = None,
    change: tuple[int, int] | None = None,
) -> messages_pb2.PlatformEvent:
    result = messages_pb2.PlatformEvent(
        event_id=event_id or f"ev-{uuid.uuid4().hex}",
        tenant=tenant,
        entity=entity,
        trigger=trigger_name,
        data_json=json.dumps({"Id": 1, "Message": "hello"}).encode(),
    )
    result.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    if channel is not None:
        result.channel = channel
    if activity is not None:
        result.activity_type = activity
    if change is not None:
        result.status_change.from_status, result.status_change.to_status = change
    return result


def mixed_events(tenant: str, count: int) -> list[messages_pb2.PlatformEvent]:
    """A deterministic mix over a few triggers, channels, activity types and changes."""
    kinds: list[Callable[[int], messages_pb2.PlatformEvent]] = [
        lambda i: event(tenant, "Object", "OnNew", channel=(WHATSAPP, FACEBOOK, MAIL)[i % 3]),
        lambda i: event(tenant, "Object", "OnNewActivity", channel=WHATSAPP, activity=REMARK),
        lambda i: event(
            tenant,
            "Object",
            "OnNewActivity",
            channel=FACEBOOK,
            activity=STATUS_CHANGE,
            change=(OPEN, (RESOLVED, FORWARD)[i % 2]),
        ),
        lambda i: event(tenant, "User", "OnNew", channel=(WHATSAPP, MAIL)[i % 2]),
        lambda i: event(tenant, "User", "OnUpdate", channel=MAIL),
        lambda i: event(tenant, "Tag", "OnAdd"),
    ]
    return [kinds[(i * 7 + i // 5) % len(kinds)](i) for i in range(count)]


@dataclass
class Routing:
    """Subscriptions of one tenant with, for each, when an event is for it (written
    independently of the router's matching)."""

    stack: Stack
    tenant: str
    rules: dict[str, Callable[[messages_pb2.PlatformEvent], bool]] = field(default_factory=dict)

    async def add(
        self,
        wants: Callable[[messages_pb2.PlatformEvent], bool],
        entity: str,
        *triggers: common_pb2.TriggerSpec,
        active: bool = True,
    ) -> str:
        subscription = await self.stack.create(self.tenant, entity, *triggers, active=active)
        self.rules[subscription.id] = wants
        return subscription.id

    def expected(self, events: Sequence[messages_pb2.PlatformEvent]) -> set[str]:
        return {
            f"{e.event_id}:{sid}" for e in events for sid, wants in self.rules.items() if wants(e)
        }


async def standard_subscriptions(stack: Stack, tenant: str) -> Routing:
    """Several subscriptions over different triggers and components (one inactive)."""
    r = Routing(stack, tenant)

    def on(entity: str, name: str) -> Callable[[messages_pb2.PlatformEvent], bool]:
        return lambda e: e.entity == entity and e.trigger == name

    await r.add(on("Object", "OnNew"), "Object", trigger("OnNew"))
    await r.add(
        lambda e: on("Object", "OnNew")(e) and e.channel == WHATSAPP,
        "Object",
        trigger("OnNew", channels=[WHATSAPP]),
    )
    await r.add(
        lambda e: (
            on("Object", "OnNewActivity")(e)
            and e.activity_type == STATUS_CHANGE
            and e.status_change.to_status == RESOLVED
        ),
        "Object",
        trigger("OnNewActivity", activity_types=[STATUS_CHANGE], status_changes=[(0, RESOLVED)]),
    )
    # Two triggers, both of which can match one event: still one job per event.
    await r.add(
        lambda e: (
            (on("Object", "OnNew")(e) or on("Object", "OnNewActivity")(e))
            and e.channel in (WHATSAPP, FACEBOOK)
        ),
        "Object",
        trigger("OnNew", channels=[WHATSAPP, FACEBOOK]),
        trigger("OnNewActivity", channels=[WHATSAPP, FACEBOOK]),
    )
    await r.add(on("User", "OnNew"), "User", trigger("OnNew"))
    await r.add(lambda e: False, "User", trigger("OnUpdate"), active=False)
    return r


# ---- reading DELIVERIES


@dataclass(frozen=True)
class Job:
    subject: str
    headers: dict[str, str]
    job: messages_pb2.DeliveryJob


class Jobs:
    """A pull consumer of one tenant's jobs (deleted at the end: DELIVERIES is a work queue)."""

    def __init__(self, js: JetStreamContext, tenant: str) -> None:
        self.js = js
        self.tenant = tenant
        self.durable = f"router-test-{uuid.uuid4().hex[:12]}"
        self.seen: list[Job] = []
        self._sub: Any = None

    async def __aenter__(self) -> Jobs:
        lanes = [f"deliveries.{lane}.{self.tenant}.>" for lane in ("jobs", "bulk")]
        self._sub = await self.js.pull_subscribe(
            "",
            durable=self.durable,
            stream="DELIVERIES",
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1, filter_subjects=lanes
            ),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
        await self.js.delete_consumer("DELIVERIES", self.durable)

    async def _fetch(self, wait: float) -> list[Job]:
        try:
            messages: list[Msg] = await self._sub.fetch(1000, timeout=wait)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        jobs = []
        for msg in messages:
            await msg.ack()
            jobs.append(
                Job(
                    msg.subject,
                    dict(msg.headers or {}),
                    messages_pb2.DeliveryJob.FromString(msg.data),
                )
            )
        self.seen.extend(jobs)
        return jobs

    async def collect(self, expected: int, within: float = ROUTE_TIMEOUT) -> list[Job]:
        """The jobs that arrive: at least ``expected`` (or ``within`` s passed), then whatever
        more shows up within SETTLE_SECONDS."""
        start = len(self.seen)
        deadline = time.monotonic() + within
        while len(self.seen) - start < expected and time.monotonic() < deadline:
            await self._fetch(0.5)
        quiet_until = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < quiet_until:
            if await self._fetch(0.2):
                quiet_until = time.monotonic() + SETTLE_SECONDS
        return self.seen[start:]


def assert_exactly(jobs: Sequence[Job], expected: set[str], tenant: str) -> None:
    ids = [j.job.job_id for j in jobs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{len(duplicates)} jobs more than once, e.g. {duplicates[:3]}"
    assert set(ids) == expected, (
        f"missing {len(expected - set(ids))} (e.g. {sorted(expected - set(ids))[:3]}), "
        f"unexpected {len(set(ids) - expected)} (e.g. {sorted(set(ids) - expected)[:3]})"
    )
    for j in jobs:
        assert j.headers.get("Nats-Msg-Id") == j.job.job_id
        assert j.subject == f"deliveries.jobs.{tenant}.{j.job.subscription_id}"
        assert not j.job.replay
        assert j.job.event_id == j.job.job_id.split(":")[0]


def new_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- the tests


async def test_a_thousand_events_become_exactly_the_expected_jobs(stack: Stack) -> None:
    tenant = new_tenant("thousand")
    routing = await standard_subscriptions(stack, tenant)
    events = mixed_events(tenant, 1000)
    expected = routing.expected(events)
    assert len(expected) > 1000  # a real fan-out
    async with Jobs(stack.js, tenant) as jobs:
        results = await stack.publish(events, platform(tenant))
        assert [r.status for r in results] == [ACCEPTED] * len(events)
        assert [r.event_id for r in results] == [e.event_id for e in events]
        assert_exactly(await jobs.collect(len(expected)), expected, tenant)
        # The same events again: duplicates, and not one more job.
        again = await stack.publish(events[:250], platform(tenant))
        assert {r.status for r in again} == {DUPLICATE}
        assert await jobs.collect(0) == []


async def test_a_router_killed_mid_stream_adds_no_duplicate_and_loses_nothing(
    stack: Stack,
) -> None:
    tenant = new_tenant("killed")
    routing = await standard_subscriptions(stack, tenant)
    events = mixed_events(tenant, 1000)
    expected = routing.expected(events)
    async with Jobs(stack.js, tenant) as jobs:
        await stack.publish(events[:500], platform(tenant))
        stack.router.kill()  # while it routes the first half
        before = len(await jobs.collect(0, within=0))
        await stack.router.start()
        # A client retrying the call the crash interrupted: nothing doubles.
        retried = await stack.publish(events[250:], platform(tenant))
        assert {r.status for r in retried[:250]} == {DUPLICATE}
        assert {r.status for r in retried[250:]} == {ACCEPTED}
        got = await jobs.collect(len(expected) - before)
        assert_exactly(jobs.seen, expected, tenant)
        assert len(got) + before == len(expected)


async def test_a_subscription_change_takes_effect_within_a_second(stack: Stack) -> None:
    tenant = new_tenant("change")
    stays = await stack.create(tenant, "User", trigger("OnNew"))
    goes = await stack.create(tenant, "User", trigger("OnNew"))
    edited = await stack.create(tenant, "User", trigger("OnNew"))
    async with Jobs(stack.js, tenant) as jobs:
        first = event(tenant, "User", "OnNew", channel=MAIL)
        await stack.publish([first], platform(tenant))
        assert {j.job.subscription_id for j in await jobs.collect(3)} == {
            stays.id,
            goes.id,
            edited.id,
        }

        await stack.subs.SetSubscriptionActive(
            subscriptions_pb2.SetSubscriptionActiveRequest(id=goes.id, active=False),
            metadata=platform(tenant),
            timeout=RPC_TIMEOUT,
        )
        await stack.subs.UpdateSubscription(
            subscriptions_pb2.UpdateSubscriptionRequest(
                id=edited.id,
                subscription=subscriptions_pb2.SubscriptionSpec(triggers=[trigger("OnUpdate")]),
                update_mask=FieldMask(paths=["triggers"]),
            ),
            metadata=platform(tenant),
            timeout=RPC_TIMEOUT,
        )
        changed = time.monotonic()
        await asyncio.sleep(CHANGE_DEADLINE)
        new = event(tenant, "User", "OnNew", channel=MAIL)
        update = event(tenant, "User", "OnUpdate", channel=MAIL)
        await stack.publish([new, update], platform(tenant))
        got = {j.job.job_id for j in await jobs.collect(2)}
        assert got == {f"{new.event_id}:{stays.id}", f"{update.event_id}:{edited.id}"}, (
            f"{time.monotonic() - changed:.2f} s after the changes"
        )


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    # (what, changes to a valid User OnNew event, rejected field)
    ("no entity", {"entity": ""}, "entity"),
    ("unknown entity", {"entity": "Nope"}, "entity"),
    ("unknown trigger", {"trigger": "OnExplode"}, "trigger"),
    ("no occurred_at", {"occurred_at": None}, "occurred_at"),
    ("event id with a space", {"event_id": "bad id"}, "event_id"),
    ("data not JSON", {"data_json": b"{nope"}, "data_json"),
    ("data an array", {"data_json": b"[1]"}, "data_json"),
    ("no data", {"data_json": b""}, "data_json"),
    ("unknown channel", {"channel": 999}, "channel"),
    ("activity type on OnNew", {"activity_type": REMARK}, "activity_type"),
    ("WhatsApp status on OnNew", {"whatsapp_status": "read"}, "whatsapp_status"),
    ("invalid tenant", {"tenant": "no spaces allowed"}, "tenant"),
]


def malformed(tenant: str, changes: dict[str, Any]) -> messages_pb2.PlatformEvent:
    bad = event(tenant, "User", "OnNew", channel=MAIL, event_id=f"bad-{uuid.uuid4().hex}")
    for name, value in changes.items():
        if value is None:
            bad.ClearField(name)
        else:
            setattr(bad, name, value)
    return bad


async def stored_event_ids(js: JetStreamContext) -> set[str]:
    """The Nats-Msg-Id of every message on EVENTS."""
    sub = await js.pull_subscribe(
        "events.>", stream="EVENTS", config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    ids: set[str] = set()
    try:
        while True:
            try:
                messages = await sub.fetch(1000, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                return ids
            ids.update((m.headers or {}).get("Nats-Msg-Id", "") for m in messages)
    finally:
        await sub.unsubscribe()


async def test_malformed_events_are_rejected_with_their_field_and_not_stored(
    stack: Stack,
) -> None:
    tenant = new_tenant("bad")
    subscription = await stack.create(tenant, "User", trigger("OnNew"))
    bad = [malformed(tenant, changes) for _, changes, _ in MALFORMED]
    good = event(tenant, "User", "OnNew", channel=MAIL)
    async with Jobs(stack.js, tenant) as jobs:
        results = await stack.publish([*bad, good], platform(tenant))
        assert len(results) == len(bad) + 1
        for (what, _, field_name), sent, result in zip(MALFORMED, bad, results, strict=False):
            assert (result.event_id, result.status, result.field) == (
                sent.event_id,
                REJECTED,
                field_name,
            ), what
            assert result.reason, what
        assert results[-1].status == ACCEPTED
        assert [j.job.job_id for j in await jobs.collect(1)] == [
            f"{good.event_id}:{subscription.id}"
        ]
    stored = await stored_event_ids(stack.js)
    assert good.event_id in stored
    assert not stored & {e.event_id for e in bad}


async def test_garbage_on_the_events_subject_is_dead_lettered_and_routing_goes_on(
    stack: Stack,
) -> None:
    tenant = new_tenant("garbage")
    subscription = await stack.create(tenant, "User", trigger("OnNew"))
    letters: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_letter(msg: Msg) -> None:
        await letters.put(msg)

    dead = await stack.nc.subscribe("deadletters.router.>", cb=on_letter)
    await stack.nc.flush()
    subject = f"events.{tenant}.User.OnNew"
    garbage = b"\xff\xfe\x00 definitely not a PlatformEvent \x07"
    invalid = malformed(tenant, {"data_json": b"not json"}).SerializeToString()
    try:
        async with Jobs(stack.js, tenant) as jobs:
            await stack.js.publish(subject, garbage, stream="EVENTS")
            await stack.js.publish(subject, invalid, stream="EVENTS")
            good = event(tenant, "User", "OnNew", channel=MAIL)
            await stack.publish([good], platform(tenant))
            assert [j.job.job_id for j in await jobs.collect(1)] == [
                f"{good.event_id}:{subscription.id}"
            ]
        found: dict[bytes, messages_pb2.DeadLetter] = {}
        deadline = time.monotonic() + 10
        while len(found) < 2 and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                msg = await asyncio.wait_for(letters.get(), 1)
                letter = messages_pb2.DeadLetter.FromString(msg.data)
                if letter.subject == subject:
                    found[letter.data] = letter
                    assert msg.subject.startswith("deadletters.router.")
        assert set(found) == {garbage, invalid}
        assert found[invalid].reason.startswith("invalid")
        assert found[garbage].reason
        await stack.router_idle()  # terminated, not waiting for a redelivery
    finally:
        await dead.unsubscribe()


def minutes_ago(now: datetime, minutes: float) -> datetime:
    return now - timedelta(minutes=minutes)


async def replay(
    stack: Stack,
    metadata: Metadata,
    subscription_id: str,
    since: datetime,
    until: datetime,
    *,
    dry_run: bool = False,
) -> list[router_pb2.ReplayProgress]:
    request = router_pb2.ReplayEventsRequest(subscription_id=subscription_id, dry_run=dry_run)
    request.since.FromDatetime(since)
    request.until.FromDatetime(until)
    call = stack.routes.ReplayEvents(request, metadata=metadata, timeout=RPC_TIMEOUT)
    return [progress async for progress in call]


async def test_replay_publishes_exactly_the_window_with_new_delivery_ids(stack: Stack) -> None:
    tenant = new_tenant("replay")
    now = datetime.now(UTC)
    live = await stack.create(tenant, "User", trigger("OnNew", channels=[MAIL]))
    # One event every 50 s over the last 50 minutes, half on a channel `live` ignores.
    events = [
        event(
            tenant,
            "User",
            "OnNew",
            occurred_at=now - timedelta(seconds=25 + 50 * i),
            channel=(MAIL, WHATSAPP)[i % 2],
        )
        for i in range(60)
    ]
    events += [event(tenant, "Object", "OnNew", channel=MAIL) for _ in range(5)]
    since, until = minutes_ago(now, 30), minutes_ago(now, 10)

    def in_window(e: messages_pb2.PlatformEvent) -> bool:
        return since <= e.occurred_at.ToDatetime(tzinfo=UTC) < until

    window_ids = {e.event_id for e in events if e.entity == "User" and in_window(e)}
    for_live = {e.event_id for e in events if e.event_id in window_ids and e.channel == MAIL}
    async with Jobs(stack.js, tenant) as jobs:
        await stack.publish(events, platform(tenant))
        originals = await jobs.collect(30)  # the live routing to `live`
        await stack.router_idle()
        original_ids = {j.job.delivery_id for j in originals}
        later = await stack.create(tenant, "User", trigger("OnNew"))  # after the events

        for subscription_id, wanted in ((later.id, window_ids), (live.id, for_live)):
            dry = await replay(stack, platform(tenant), subscription_id, since, until, dry_run=True)
            assert dry[-1].done and dry[-1].matched_events == len(wanted)
            assert dry[-1].published_jobs == 0
            assert await jobs.collect(0) == []
            real = await replay(stack, platform(tenant), subscription_id, since, until)
            final = real[-1]
            assert final.done and final.matched_events == len(wanted) == final.published_jobs
            replayed = await jobs.collect(len(wanted))
            assert sorted(j.job.event_id for j in replayed) == sorted(wanted)
            assert all(j.job.replay and j.job.subscription_id == subscription_id for j in replayed)
            # A replay is a burst: its jobs take the bulk lane.
            assert all(j.subject.startswith(f"deliveries.bulk.{tenant}.") for j in replayed)
            delivery_ids = {j.job.delivery_id for j in replayed}
            assert len(delivery_ids) == len(replayed)
            assert not delivery_ids & original_ids
            assert final.replay_id and all(final.replay_id in j.job.job_id for j in replayed)


async def test_a_window_before_retention_is_refused_naming_the_range(stack: Stack) -> None:
    tenant = new_tenant("retention")
    subscription = await stack.create(tenant, "User", trigger("OnNew"))
    now = datetime.now(UTC)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await replay(stack, platform(tenant), subscription.id, now - timedelta(hours=2), now)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = caught.value.details() or ""
    oldest = (now - timedelta(seconds=EVENTS_MAX_AGE_SECONDS)).strftime("%Y-%m-%dT%H:%M")
    assert oldest[:-1] in details and "since" in details, details


async def test_a_tenant_cannot_replay_or_publish_for_another(stack: Stack) -> None:
    theirs = await stack.create(BETA, "User", trigger("OnNew"))
    now = datetime.now(UTC)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await replay(stack, bound(ALPHA), theirs.id, now - timedelta(minutes=5), now)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Its owner can.
    done = await replay(
        stack, bound(BETA), theirs.id, now - timedelta(minutes=5), now, dry_run=True
    )
    assert done[-1].done
    results = await stack.publish(
        [event(BETA, "User", "OnNew", channel=MAIL), event("", "User", "OnNew", channel=MAIL)],
        bound(ALPHA),
    )
    assert (results[0].status, results[0].field) == (REJECTED, "tenant")
    assert results[1].status == ACCEPTED  # no tenant: the token's own


async def test_the_job_carries_the_trace_of_the_publish_call(stack: Stack) -> None:
    tenant = new_tenant("trace")
    subscription = await stack.create(tenant, "User", trigger("OnNew"))
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    sent = event(tenant, "User", "OnNew", channel=MAIL)
    async with Jobs(stack.js, tenant) as jobs:
        await stack.publish([sent], (*platform(tenant), ("traceparent", traceparent)))
        (job,) = await jobs.collect(1)
    assert job.job.job_id == f"{sent.event_id}:{subscription.id}"
    header = job.headers.get("traceparent", "")
    assert header.split("-")[1] == trace_id, header
    # A new span (the publish span), not the client's own.
    assert header.split("-")[2] != traceparent.split("-")[2]
    assert job.job.trace_context.get("traceparent") == header


@pytest.mark.postgres
async def test_routing_with_the_subscriptions_service_on_postgres(
    tmp_path: Path, postgres_url: str, postgres_schema: Callable[[str], str]
) -> None:
    store = {
        "WEBHOOKS_STORE": "postgres",
        "WEBHOOKS_POSTGRES_URL": postgres_url,
        "WEBHOOKS_POSTGRES_SCHEMA": postgres_schema("router"),
    }
    async with running_stack(tmp_path, store) as pg:
        tenant = new_tenant("pg")
        routing = await standard_subscriptions(pg, tenant)
        events = mixed_events(tenant, 300)
        expected = routing.expected(events)
        async with Jobs(pg.js, tenant) as jobs:
            await pg.publish(events, platform(tenant))
            assert_exactly(await jobs.collect(len(expected)), expected, tenant)
