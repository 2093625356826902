"""webhooks_messaging.publisher on a real nats-server: each message's callback is called
exactly once, with stored, duplicate, the broker's refusal, no stream, no PubAck in time
or the publisher closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError

from tests.support import NatsServer
from webhooks_config import load_settings
from webhooks_messaging import DELIVERIES, EVENTS, connect, declare_streams
from webhooks_messaging import publisher as confirmed
from webhooks_messaging.publisher import (
    DUPLICATE,
    EXPECTED_STREAM,
    ConfirmedPublisher,
    PublisherClosed,
)

SUBJECT = "events.acme.Object.OnNew"


@pytest.fixture
async def nc(tmp_path: Path) -> AsyncIterator[Client]:
    server = NatsServer(tmp_path / "store")
    await asyncio.to_thread(server.start)
    settings = load_settings({"WEBHOOKS_NATS_URL": server.url})
    client = await connect(settings, "test-confirmed-publisher")
    try:
        await declare_streams(client.jetstream(), settings)
        yield client
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)


class Outcomes:
    """A callback that notes every call; ``arrived`` is set at the ``expected``-th."""

    def __init__(self, expected: int = 1) -> None:
        self.calls: list[BaseException | None] = []
        self.expected = expected
        self.arrived = asyncio.Event()

    def __call__(self, outcome: BaseException | None) -> None:
        self.calls.append(outcome)
        if len(self.calls) >= self.expected:
            self.arrived.set()

    async def wait(self) -> list[BaseException | None]:
        await asyncio.wait_for(self.arrived.wait(), 5)
        await asyncio.sleep(0.05)  # room for a second, wrong, call
        return self.calls


async def started(nc: Client, stream: str = EVENTS, **options: object) -> ConfirmedPublisher:
    publisher = ConfirmedPublisher(nc, stream, **options)  # type: ignore[arg-type]
    await publisher.start()
    return publisher


async def test_stored_then_duplicate_when_told(nc: Client) -> None:
    publisher = await started(nc, tell_duplicates=True)
    outcomes = Outcomes(3)
    headers = {"Nats-Msg-Id": "e1"}
    await publisher.publish(SUBJECT, b"a", headers, outcomes)
    assert headers[EXPECTED_STREAM] == EVENTS
    await publisher.publish(SUBJECT, b"b", {"Nats-Msg-Id": "e2"}, outcomes)
    await asyncio.sleep(0.1)  # e1 stored before it is sent again
    await publisher.publish(SUBJECT, b"a", {"Nats-Msg-Id": "e1"}, outcomes)
    assert await outcomes.wait() == [None, None, DUPLICATE]
    assert publisher.in_flight == 0
    info = await nc.jetstream().stream_info(EVENTS)
    assert info.state.messages == 2
    await publisher.close()


async def test_a_duplicate_is_stored_when_not_told(nc: Client) -> None:
    publisher = await started(nc)
    outcomes = Outcomes(2)
    for _ in range(2):
        await publisher.publish(SUBJECT, b"a", {"Nats-Msg-Id": "e1"}, outcomes)
        await asyncio.sleep(0.05)
    assert await outcomes.wait() == [None, None]
    await publisher.close()


async def test_another_streams_subject_is_refused_with_the_brokers_error(nc: Client) -> None:
    publisher = await started(nc)  # expects EVENTS; DELIVERIES stores the subject
    outcomes = Outcomes()
    await publisher.publish("deliveries.jobs.acme.s", b"x", {"Nats-Msg-Id": "j1"}, outcomes)
    (got,) = await outcomes.wait()
    assert isinstance(got, BadRequestError) and isinstance(got, APIError)
    assert got.err_code == 10060  # expected stream does not match
    info = await nc.jetstream().stream_info(DELIVERIES)
    assert info.state.messages == 0
    await publisher.close()


async def test_a_subject_no_stream_stores(nc: Client) -> None:
    publisher = await started(nc)
    outcomes = Outcomes()
    await publisher.publish("nowhere.at.all", b"x", {}, outcomes)
    (got,) = await outcomes.wait()
    assert isinstance(got, NoStreamResponseError)
    await publisher.close()


async def test_no_pub_ack_in_time(nc: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confirmed, "SWEEP_SECONDS", 0.05)
    publisher = await started(nc, confirm_timeout=0.2)
    await nc.jetstream().delete_stream(EVENTS)
    silent = await nc.subscribe("events.>")  # published, never acknowledged
    late = Outcomes()
    await publisher.publish(SUBJECT, b"x", {}, late)
    (got,) = await late.wait()
    assert isinstance(got, TimeoutError)
    assert publisher.in_flight == 0
    await silent.unsubscribe()
    await publisher.close()
    assert late.calls == [got]  # closing does not call it again


async def test_closing_tells_what_is_unanswered(nc: Client) -> None:
    publisher = await started(nc)
    await nc.jetstream().delete_stream(EVENTS)
    silent = await nc.subscribe("events.>")
    outcomes = Outcomes(2)
    await publisher.publish(SUBJECT, b"x", {}, outcomes)
    await publisher.publish(SUBJECT, b"y", {}, outcomes)
    await publisher.close()
    got = await outcomes.wait()
    assert len(got) == 2 and all(isinstance(error, PublisherClosed) for error in got)
    with pytest.raises(RuntimeError):
        await publisher.publish(SUBJECT, b"z", {}, outcomes)
    await silent.unsubscribe()


async def test_sending_waits_for_room_and_async_callbacks_are_awaited(nc: Client) -> None:
    publisher = await started(nc, max_in_flight=4)
    stored: list[int] = []

    async def then(outcome: BaseException | None) -> None:
        assert outcome is None
        stored.append(1)

    for number in range(40):
        await publisher.publish(SUBJECT, b"x", {"Nats-Msg-Id": f"e{number}"}, then)
        assert publisher.in_flight <= 4
    for _ in range(100):
        if len(stored) == 40:
            break
        await asyncio.sleep(0.02)
    assert len(stored) == 40
    await publisher.close()
