"""A message whose handling keeps failing is set aside, not retried for ever (issue 11;
webhooks_messaging.handling), on a real nats-server:

- the sender, run for real: a job whose data nests 700 levels deep (the router now refuses
  such events, webhooks_catalogue.event_data; a job stored before that rule, or from a bug
  upstream, is what remains) to a SOAP subscription makes the sender's envelope building
  fail (RecursionError) on every delivery. It is set aside as NOT_APPLIED after
  MAX_DELIVERIES deliveries, one log line for the lot, and the next job is delivered;
- the router's event consumer, built in-process as the service builds it, with a routing
  table (a real RoutingTable subclass passed through the constructor, as the composition
  root passes its table) that fails on chosen events: an event failing with a ValueError
  is set aside after MAX_DELIVERIES deliveries; one failing with a NATS timeout keeps
  coming back; the others are routed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.msg import Msg

from tests.support import NatsServer
from tests.support.receivers import HttpsReceiver
from tests.support.sender_stack import Stack, new_tenant, running_stack
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2
from webhooks_catalogue.shaping import shape_payload
from webhooks_config import load_settings
from webhooks_messaging import DEADLETTERS, EVENTS, declare_streams, events_subject
from webhooks_messaging.deadletters import NOT_APPLIED, letter_subject
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_messaging.handling import MAX_DELIVERIES
from webhooks_router.consumer import EventConsumer
from webhooks_router.deadletters import DeadLetters, table_dead_letters
from webhooks_router.routes import RouteEntry, RoutingTable

DEPTH = 700  # over what SOAP building recurses to (the router's bound is 64)


def deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"Level": value}
    return value


# ---- the sender


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("poison-sender")) as running:
        yield running


async def test_a_job_whose_soap_request_cannot_be_built_is_set_aside_after_five_deliveries(
    stack: Stack,
) -> None:
    tenant = new_tenant("poison")
    letters: list[messages_pb2.DeadLetter] = []

    async def on_letter(msg: Msg) -> None:
        letters.append(messages_pb2.DeadLetter.FromString(msg.data))

    listening = await stack.nc.subscribe("deadletters.sender.>", cb=on_letter)
    async with HttpsReceiver(stack.pki) as receiver:
        spec = subscriptions_pb2.SubscriptionSpec(
            name="soap hook",
            entity="Object",
            triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
            webhook=common_pb2.Webhook(
                type=common_pb2.WEBHOOK_TYPE_SOAP,
                url=receiver.url("/soap"),
                soap=common_pb2.SoapSettings(operation="Notify", namespace="urn:example:hooks"),
            ),
            retry_policy=common_pb2.RetryPolicy(retries=0, interval_seconds=1),
            include_complete_data=True,
        )
        created = (await stack.create(tenant, spec)).subscription
        poison = stack.job(created)
        # What the router made of an event whose data nests DEPTH levels deep, before it
        # refused such events.
        poison.payload_json = shape_payload(
            entity="Object",
            trigger="OnNew",
            tenant=tenant,
            event_id=poison.event_id,
            delivery_id=poison.delivery_id,
            subscription_name=created.name,
            occurred_at=datetime.now(UTC),
            data={"ObjectId": "o-1", "Custom": deep(DEPTH)},
            include_complete_data=True,
        )
        await stack.publish(poison)
        healthy = await stack.send(created)

        def set_aside() -> list[messages_pb2.DeliveryJob]:
            return [
                messages_pb2.DeliveryJob.FromString(letter.data)
                for letter in letters
                if letter.reason == NOT_APPLIED
            ]

        async def probe() -> list[messages_pb2.DeliveryJob]:
            return set_aside()

        await receiver.wait_for(1, "/soap", timeout=30)
        (job,) = await eventually(probe, bool, timeout=60, what="the poison job set aside")
        assert job.job_id == poison.job_id
        (letter,) = [x for x in letters if x.reason == NOT_APPLIED]
        assert letter.component == "sender" and letter.stream == "DELIVERIES"
        assert f"failed {MAX_DELIVERIES} times" in letter.detail
        assert "RecursionError" in letter.detail
        got = receiver.at("/soap")
        assert len(got) == 1 and healthy.delivery_id.encode() in got[0].body
    await listening.unsubscribe()
    log = stack.sender.log_text()
    repeated = [line for line in log.splitlines() if f"handling job {poison.job_id}" in line]
    assert len(repeated) == 1, log[-4000:]  # one line a minute for the kind, not per try
    assert "Traceback" not in log


# ---- the router, in-process


class FailingTable(RoutingTable):
    """Routes as the real table does, but routing the events named in ``failures`` raises
    what their factory makes (a bug, or the broker away)."""

    def __init__(self, failures: dict[str, Callable[[], BaseException]]) -> None:
        super().__init__()
        self.failures = failures
        self.calls: Counter[str] = Counter()

    def route(self, event: messages_pb2.PlatformEvent, *, about: str = "") -> list[RouteEntry]:
        self.calls[event.event_id] += 1
        failure = self.failures.get(event.event_id)
        if failure is not None:
            raise failure()
        return super().route(event, about=about)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(tmp_path / "nats" / "store")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def event(tenant: str, event_id: str) -> messages_pb2.PlatformEvent:
    platform_event = messages_pb2.PlatformEvent(
        event_id=event_id,
        tenant=tenant,
        entity="Satisfaction",
        trigger="OnSubmit",
        data_json=json.dumps({"ObjectId": "o-1", "Score": 5}).encode(),
    )
    platform_event.occurred_at.FromDatetime(datetime.now(UTC))
    return platform_event


async def test_an_event_whose_routing_keeps_failing_is_set_aside_and_a_broker_error_is_not(
    broker: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = load_settings(
        {"WEBHOOKS_DATA_DIR": str(tmp_path / "data"), "WEBHOOKS_NATS_URL": broker.url}
    )
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    await declare_streams(js, settings)
    failing = FailingTable(
        {
            "poison": lambda: ValueError("a value the job building did not foresee"),
            "broker": nats.errors.TimeoutError,
        }
    )
    # As webhooks_router.bootstrap builds it.
    table: RoutingTable = failing
    feed = SubscriptionFeed(table, dead=table_dead_letters(nc))
    dead = DeadLetters(nc)
    consumer = EventConsumer(table, feed, dead, nc)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(feed.run(js, stop)),
        asyncio.create_task(consumer.run(js, stop)),
    ]
    tenant = "poison-router"
    try:
        sequences = {}
        for event_id in ("poison", "broker", "fine"):
            published = event(tenant, event_id)
            ack = await js.publish(
                events_subject(tenant, "Satisfaction", "OnSubmit"),
                published.SerializeToString(),
                stream=EVENTS,
            )
            sequences[event_id] = ack.seq

        async def letter_of(event_id: str) -> messages_pb2.DeadLetter | None:
            origin = f"{EVENTS}-{sequences[event_id]}"
            subject = letter_subject("router", NOT_APPLIED, origin)
            try:
                msg = await js.get_last_msg(DEADLETTERS, subject)
            except nats.js.errors.NotFoundError:
                return None
            return messages_pb2.DeadLetter.FromString(msg.data or b"")

        async def poison_done() -> bool:
            # Set aside, or (today's code) delivered once more than it may be.
            if failing.calls["poison"] > MAX_DELIVERIES:
                return True
            return (await letter_of("poison")) is not None

        await eventually(poison_done, bool, timeout=90, what="the poison event settled")
        letter = await letter_of("poison")
        assert letter is not None, f"not set aside; routed {failing.calls['poison']} times"
        assert failing.calls["poison"] == MAX_DELIVERIES
        assert letter.component == "router" and letter.stream == EVENTS
        assert "ValueError: a value the job building did not foresee" in letter.detail
        assert messages_pb2.PlatformEvent.FromString(letter.data).event_id == "poison"

        async def broker_calls() -> int:
            return failing.calls["broker"]

        # A broker's error is the broker's: the event keeps coming back.
        await eventually(
            broker_calls,
            lambda calls: calls > MAX_DELIVERIES + 1,
            timeout=90,
            what="the event failing with a NATS error delivered again",
        )
        assert await letter_of("broker") is None
        assert failing.calls["fine"] == 1 and consumer.routed_events == 1
        lines = [r.getMessage() for r in caplog.records if r.name == "webhooks_messaging.handling"]
        assert sum("ValueError" in line for line in lines) == 1, lines
        assert sum("TimeoutError" in line for line in lines) == 1, lines
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await dead.close()
        await feed.dead.close()
        await nc.close()
