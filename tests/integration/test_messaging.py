"""The JetStream streams as declared, schedules on DELIVERIES, deduplication, subjects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType

from tests.support import NatsServer
from webhooks_config import Settings, load_settings
from webhooks_messaging import (
    ATTEMPTS,
    DELIVERIES,
    EVENTS,
    STREAMS,
    SUBSCRIPTIONS,
    attempts_subject,
    certificate_subject,
    connect,
    declare_streams,
    delivery_job_subject,
    delivery_retry_subject,
    events_subject,
    is_valid_tenant,
    subscription_subject,
)


def settings_for(url: str, **env: str) -> Settings:
    return load_settings({"WEBHOOKS_NATS_URL": url, **env})


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await connect(settings_for(nats_url), "test-messaging")
    yield client
    await client.drain()


@pytest.fixture
async def js(nc: Client) -> JetStreamContext:
    js = nc.jetstream()
    await declare_streams(js, settings_for("nats://unused"))
    return js


async def test_declare_streams_twice_gives_the_declared_configs(js: JetStreamContext) -> None:
    settings = settings_for("nats://unused")
    await declare_streams(js, settings)
    await declare_streams(js, settings)

    names = {s.config.name for s in await js.streams_info()}
    assert set(STREAMS) <= names
    subs = (await js.stream_info(SUBSCRIPTIONS)).config
    assert subs.subjects == ["subscriptions.>"]
    assert subs.retention == RetentionPolicy.LIMITS
    assert (subs.max_age, subs.max_msgs, subs.max_bytes) == (0, -1, -1)
    events = (await js.stream_info(EVENTS)).config
    assert events.subjects == ["events.>", "events-bulk.>"]
    assert events.max_age == settings.events_max_age_seconds
    assert events.max_bytes == settings.events_max_bytes
    deliveries = (await js.stream_info(DELIVERIES)).config
    assert deliveries.subjects == ["deliveries.jobs.>", "deliveries.bulk.>", "deliveries.retry.>"]
    assert deliveries.retention == RetentionPolicy.WORK_QUEUE
    assert deliveries.allow_msg_schedules is True
    attempts = (await js.stream_info(ATTEMPTS)).config
    assert attempts.subjects == ["attempts.>"]
    assert attempts.max_age == settings.attempts_max_age_seconds
    for config in (subs, events, deliveries, attempts):
        assert config.storage == StorageType.FILE
        assert config.duplicate_window == settings.duplicate_window_seconds


async def test_declare_streams_applies_a_config_change(tmp_path: Path) -> None:
    # A private server: changing the shared streams would surprise other tests.
    server = NatsServer(tmp_path / "store")
    server.start()
    try:
        client = await nats.connect(server.url)
        js = client.jetstream()
        await declare_streams(js, settings_for(server.url))
        changed = settings_for(
            server.url,
            WEBHOOKS_EVENTS_MAX_AGE_SECONDS="3600",
            WEBHOOKS_DUPLICATE_WINDOW_SECONDS="30",
        )
        await declare_streams(js, changed)
        events = (await js.stream_info(EVENTS)).config
        assert events.max_age == 3600
        assert events.duplicate_window == 30
        await client.close()
    finally:
        server.stop()


async def test_a_schedule_on_deliveries_fires_onto_its_job_subject(js: JetStreamContext) -> None:
    tenant, key = f"t{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    target = delivery_job_subject(tenant, "s")
    due = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0) + timedelta(seconds=1)
    subscription = await js.pull_subscribe(target, stream=DELIVERIES)
    try:
        await js.publish(
            delivery_retry_subject(key),
            b"retry me",
            headers={
                "Nats-Schedule": f"@at {due.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                "Nats-Schedule-Target": target,
                "X-Attempt": "2",
            },
        )
        assert not await _fetch_now(subscription), "fired before its time"
        messages = await subscription.fetch(1, timeout=5)
        assert datetime.now(UTC) >= due - timedelta(milliseconds=50)
        assert messages[0].subject == target
        assert messages[0].data == b"retry me"
        assert (messages[0].headers or {}).get("X-Attempt") == "2"
        await messages[0].ack()
    finally:
        await subscription.unsubscribe()


async def _fetch_now(subscription: JetStreamContext.PullSubscription) -> list[object]:
    try:
        return list(await subscription.fetch(1, timeout=0.3))
    except (TimeoutError, nats.errors.TimeoutError):
        return []


async def test_a_republished_message_id_is_dropped(js: JetStreamContext) -> None:
    subject = events_subject(f"t{uuid.uuid4().hex[:8]}", "Object", "OnNew")
    headers = {"Nats-Msg-Id": f"event-{uuid.uuid4().hex}"}
    first = await js.publish(subject, b"{}", headers=headers)
    again = await js.publish(subject, b"{}", headers=headers)
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq


def test_subjects_have_their_documented_shape() -> None:
    assert subscription_subject("acme", "s1") == "subscriptions.acme.subscription.s1"
    assert certificate_subject("acme", "c1") == "subscriptions.acme.certificate.c1"
    assert events_subject("acme", "Object", "OnNew") == "events.acme.Object.OnNew"
    assert delivery_job_subject("acme", "s1") == "deliveries.jobs.acme.s1"
    assert delivery_retry_subject("d1") == "deliveries.retry.d1"
    assert attempts_subject("acme", "s1") == "attempts.acme.s1"


@pytest.mark.parametrize("bad", ["", "a.b", "*", ">", "a b", "a\r\nPUB x", "é"])
def test_subject_tokens_that_are_not_safe_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        events_subject("acme", bad, "OnNew")
    with pytest.raises(ValueError):
        delivery_job_subject(bad, "s1")


def test_tenant_ids() -> None:
    assert is_valid_tenant("acme")
    assert is_valid_tenant("A1_b-2")
    assert not is_valid_tenant("-acme")
    assert not is_valid_tenant("a" * 65)
    assert not is_valid_tenant("acme\n")


async def test_connect_needs_a_url() -> None:
    with pytest.raises(RuntimeError, match="WEBHOOKS_NATS_URL"):
        await connect(load_settings({}), "test")


async def test_a_connection_survives_a_broker_restart(
    nats_server: NatsServer, nc: Client, js: JetStreamContext
) -> None:
    subject = events_subject(f"t{uuid.uuid4().hex[:8]}", "Object", "OnNew")
    before = await js.publish(subject, b"1")
    nats_server.stop()
    nats_server.start()
    # A publish racing the restart can be written to the dead socket and lost, so the
    # publisher retries on timeout with the same Nats-Msg-Id; the broker keeps one copy.
    headers = {"Nats-Msg-Id": f"restart-{uuid.uuid4().hex}"}
    acks = []
    for _ in range(10):
        try:
            acks.append(await js.publish(subject, b"2", headers=headers, timeout=2))
            break
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
            continue
    assert acks, "no ack after the restart"
    assert acks[0].stream == EVENTS
    assert acks[0].seq == before.seq + 1
    assert nc.is_connected
