"""The sender's health gate (services/sender/webhooks_sender/health_gate.py) on a real
nats-server, as two sender replicas (two connections, two stores, two gates): one probe
across both, deferral by state, and what observing attempts stores and announces.

The buckets and EVENTS are the session server's: each test uses a tenant of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import nats
import pytest
from nats.js import JetStreamContext

from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_config import load_settings
from webhooks_health import Change, HealthStore
from webhooks_health.record import timestamp
from webhooks_messaging.streams import EVENTS, declare_stream, stream_configs
from webhooks_sender.delivery import AttemptResult
from webhooks_sender.health_gate import HealthGate

HS = common_pb2.HealthState
FC = messages_pb2.FailureClass
SETTINGS = load_settings({})


@pytest.fixture
async def gates(nats_url: str) -> AsyncIterator[tuple[HealthGate, HealthGate]]:
    """Two sender replicas' gates over the same buckets, each store watching."""
    connections = [await nats.connect(nats_url) for _ in range(2)]
    stores = [await HealthStore.open(nc.jetstream(), replicas=1) for nc in connections]
    stop = asyncio.Event()
    watches = [asyncio.create_task(store.run(stop)) for store in stores]
    try:
        for store in stores:
            await asyncio.wait_for(store.ready.wait(), 30)
        js = connections[0].jetstream()
        await events_declared(js)
        first, second = (
            HealthGate(nc.jetstream(), store, SETTINGS)
            for nc, store in zip(connections, stores, strict=True)
        )
        yield first, second
        await first.close()
        await second.close()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*watches), 30)
        for nc in connections:
            await nc.close()


async def events_declared(js: JetStreamContext) -> None:
    try:
        await js.stream_info(EVENTS)  # declared by an earlier test: left as it is
    except nats.js.errors.NotFoundError:
        (config,) = (c for c in stream_configs(SETTINGS) if c.name == EVENTS)
        await declare_stream(js, config)


def subscription() -> messages_pb2.SubscriptionState:
    return messages_pb2.SubscriptionState(
        id=str(uuid.uuid4()),
        tenant=f"t{uuid.uuid4().hex[:12]}",
        name="crm",
        entity="Object",
        webhook=common_pb2.Webhook(url="https://hooks.example/in"),
    )


def job_of(
    state: messages_pb2.SubscriptionState, entity: str = "Object"
) -> messages_pb2.DeliveryJob:
    return messages_pb2.DeliveryJob(
        tenant=state.tenant,
        subscription_id=state.id,
        delivery_id=str(uuid.uuid4()),
        event_id=str(uuid.uuid4()),
        entity=entity,
        trigger="OnNew",
        attempt=1,
        series=1,
    )


def result(status: int) -> AttemptResult:
    failure = FC.FAILURE_CLASS_UNSPECIFIED if status < 300 else FC.FAILURE_CLASS_HTTP_STATUS
    return AttemptResult(
        started_at=datetime.now(UTC),
        duration_ms=5,
        url="https://hooks.example/in",
        failure_class=failure,
        status_code=status,
        message="" if status < 300 else f"HTTP {status}",
        final=status == 410,
    )


async def stored(
    gate: HealthGate, state: messages_pb2.SubscriptionState, present: bool
) -> messages_pb2.EndpointHealth | None:
    async def probe() -> messages_pb2.EndpointHealth | None:
        return gate.store.cached(state.id)

    return await eventually(probe, lambda r: (r is not None) == present, 20, "the record")


async def put(gate: HealthGate, record: messages_pb2.EndpointHealth) -> None:
    change = Change(write=True, record=record, announcements=(), transitions=())
    await gate.store.change(record.tenant, record.subscription_id, lambda _: change)


def open_past_cool_down(state: messages_pb2.SubscriptionState) -> messages_pb2.EndpointHealth:
    now = datetime.now(UTC)
    return messages_pb2.EndpointHealth(
        tenant=state.tenant,
        subscription_id=state.id,
        health=common_pb2.Health(
            state=HS.HEALTH_STATE_CIRCUIT_OPEN, until=timestamp(now - timedelta(seconds=1))
        ),
        cooldown_seconds=30,
        circuit_opened_at=timestamp(now - timedelta(seconds=31)),
    )


async def test_past_the_cool_down_one_job_of_either_replica_is_the_probe(
    gates: tuple[HealthGate, HealthGate],
) -> None:
    first, second = gates
    state = subscription()
    now = datetime.now(UTC)
    await put(first, open_past_cool_down(state))
    await stored(second, state, present=True)

    admissions = await asyncio.gather(
        *(gate.admission(job_of(state)) for gate in (first, second) for _ in range(10))
    )
    assert sum(a.probe for a in admissions) == 1
    waiting = [a for a in admissions if not a.send]
    assert len(waiting) == 19
    assert all(a.reason == "circuit_open" and a.until is not None for a in waiting)
    assert all(a.until is not None and a.until > now for a in waiting)


async def test_a_probe_parked_before_its_attempt_is_given_back_at_once(
    gates: tuple[HealthGate, HealthGate],
) -> None:
    first, second = gates
    state = subscription()
    await put(first, open_past_cool_down(state))
    await stored(second, state, present=True)
    assert (await first.admission(job_of(state))).probe
    assert not (await second.admission(job_of(state))).send  # the probe is out

    first.probe_not_sent(job_of(state), probe=True)  # its endpoint's slots were busy

    async def probe_free() -> bool:
        record = second.store.cached(state.id)
        return record is not None and not record.HasField("probe_started_at")

    await eventually(probe_free, bool, 20, "the probe given back")
    assert (await second.admission(job_of(state))).probe


async def test_a_healthy_success_stores_nothing_and_a_failure_starts_a_streak(
    gates: tuple[HealthGate, HealthGate],
) -> None:
    first, second = gates
    state = subscription()
    first.observe(job_of(state), state, result(204), exhausted=False, probe=False)
    assert first.store.cached(state.id) is None  # the hot path: no update, nothing stored

    first.observe(job_of(state), state, result(500), exhausted=False, probe=False)
    record = await stored(second, state, present=True)
    assert record is not None
    assert record.health.consecutive_failures == 1
    assert record.health.last_error == "HTTP 500"

    first.observe(job_of(state), state, result(204), exhausted=False, probe=False)
    await stored(second, state, present=False)  # the success ended the streak


async def test_a_410_disables_and_announces_only_for_an_ordinary_events_attempt(
    gates: tuple[HealthGate, HealthGate], nats_url: str
) -> None:
    first, _ = gates
    quiet = subscription()  # gone while delivering an operator event: never announced
    loud = subscription()
    first.observe(job_of(quiet, "Webhook"), quiet, result(410), exhausted=True, probe=False)
    first.observe(job_of(loud), loud, result(410), exhausted=True, probe=False)
    for state in (quiet, loud):
        record = await stored(first, state, present=True)
        assert record is not None
        assert record.health.state == HS.HEALTH_STATE_DISABLED
        assert record.health.reason == "the endpoint answered 410 Gone"
        assert (await first.admission(job_of(state))).reason == "disabled"
    await first.close()  # the updates and their announcements are done

    nc = await nats.connect(nats_url)
    js = nc.jetstream()

    async def announced(state: messages_pb2.SubscriptionState) -> list[str]:
        reader = await js.subscribe(
            f"events.{state.tenant}.Webhook.>", stream=EVENTS, ordered_consumer=True
        )
        triggers: list[str] = []
        try:
            while True:
                try:
                    msg = await reader.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    return triggers
                triggers.append(messages_pb2.PlatformEvent.FromString(msg.data).trigger)
        finally:
            await reader.unsubscribe()

    try:
        assert await announced(quiet) == []
        assert "OnDisabled" in await announced(loud)
    finally:
        await nc.close()
