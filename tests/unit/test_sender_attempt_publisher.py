"""The attempt publisher calls each record's ``then`` exactly once: when the broker stored
it, with the broker's error, when no PubAck came in time, or when it closes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.js.errors import APIError, NoStreamResponseError

from webhooks.v1 import messages_pb2
from webhooks_messaging import publisher as confirmed
from webhooks_sender.attempts import EXPECTED_STREAM, AttemptPublisher


class FakeNats:
    """What the publisher uses of a NATS client; replies are handed in by the test."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, str, dict[str, str]]] = []
        self.callback: Callable[[Msg], Awaitable[None]] | None = None
        self.refuse = False

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Any:
        assert subject == "_INBOX.test.*"
        self.callback = cb

        class Subscription:
            async def unsubscribe(self) -> None:
                return None

        return Subscription()

    async def publish(
        self, subject: str, payload: bytes, *, reply: str, headers: dict[str, str]
    ) -> None:
        if self.refuse:
            raise ConnectionError("not connected")
        self.published.append((subject, payload, reply, headers))

    async def answer(self, index: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        assert self.callback is not None
        reply = self.published[index][2]
        await self.callback(Msg(self, subject=reply, data=data, headers=headers))  # type: ignore[arg-type]


def record(attempt: int = 1) -> messages_pb2.AttemptRecord:
    return messages_pb2.AttemptRecord(
        delivery_id="d-1", series=0, attempt=attempt, tenant="acme", subscription_id="s-1"
    )


class Outcomes:
    def __init__(self) -> None:
        self.calls: list[BaseException | None] = []

    async def __call__(self, error: BaseException | None) -> None:
        self.calls.append(error)


@pytest.fixture
async def publisher() -> tuple[AttemptPublisher, FakeNats]:
    nc = FakeNats()
    published = AttemptPublisher(nc, confirm_timeout=0.2)  # type: ignore[arg-type]
    await published.start()
    return published, nc


PUB_ACK = json.dumps({"stream": "ATTEMPTS", "seq": 7}).encode()


async def test_stored_once_on_its_pub_ack(publisher: tuple[AttemptPublisher, FakeNats]) -> None:
    published, nc = publisher
    then = Outcomes()
    await published.publish(record(), {"traceparent": "00-x"}, then)
    (subject, _, _, headers) = nc.published[0]
    assert subject.startswith("attempts.acme.")
    assert headers["Nats-Msg-Id"] == "d-1:0:1" and headers[EXPECTED_STREAM] == "ATTEMPTS"
    assert headers["traceparent"] == "00-x"
    assert then.calls == []
    await nc.answer(0, PUB_ACK)
    await nc.answer(0, PUB_ACK)  # a duplicate reply is ignored
    assert then.calls == [None]
    assert published.in_flight == 0
    await published.close()


@pytest.mark.parametrize(
    ("data", "headers", "error"),
    [
        (json.dumps({"error": {"code": 400, "err_code": 10060}}).encode(), None, APIError),
        (b"", {"Status": "503"}, NoStreamResponseError),
        (b"not json", None, APIError),
        (json.dumps({"seq": 1}).encode(), None, APIError),
    ],
    ids=["refused", "no-stream", "unreadable", "not-a-pub-ack"],
)
async def test_refusals_are_passed_on(
    publisher: tuple[AttemptPublisher, FakeNats],
    data: bytes,
    headers: dict[str, str] | None,
    error: type[Exception],
) -> None:
    published, nc = publisher
    then = Outcomes()
    await published.publish(record(), {}, then)
    await nc.answer(0, data, headers)
    (got,) = then.calls
    assert isinstance(got, error)
    await published.close()


async def test_no_pub_ack_in_time_is_a_failure(
    publisher: tuple[AttemptPublisher, FakeNats], monkeypatch: pytest.MonkeyPatch
) -> None:
    published, nc = publisher
    await published.close()  # restarted with a quicker sweep
    monkeypatch.setattr(confirmed, "SWEEP_SECONDS", 0.05)
    await published.start()
    late, answered = Outcomes(), Outcomes()
    await published.publish(record(1), {}, late)
    await published.publish(record(2), {}, answered)
    await nc.answer(1, PUB_ACK)
    await asyncio.sleep(0.4)
    assert len(late.calls) == 1 and isinstance(late.calls[0], TimeoutError)
    assert answered.calls == [None]
    await nc.answer(0, PUB_ACK)  # too late: already given up on
    assert len(late.calls) == 1
    await published.close()


async def test_closing_fails_what_is_still_waiting(
    publisher: tuple[AttemptPublisher, FakeNats],
) -> None:
    published, _ = publisher
    then = Outcomes()
    await published.publish(record(), {}, then)
    await published.close()
    (got,) = then.calls
    assert isinstance(got, ConnectionError)


async def test_a_record_not_sent_is_not_waited_for(
    publisher: tuple[AttemptPublisher, FakeNats],
) -> None:
    published, nc = publisher
    nc.refuse = True
    then = Outcomes()
    with pytest.raises(ConnectionError):
        await published.publish(record(), {}, then)
    assert published.in_flight == 0
    await published.close()
    assert then.calls == []


async def test_a_failing_then_does_not_stop_the_others(
    publisher: tuple[AttemptPublisher, FakeNats],
) -> None:
    published, nc = publisher

    async def broken(error: BaseException | None) -> None:
        raise RuntimeError("boom")

    after = Outcomes()
    await published.publish(record(1), {}, broken)
    await published.publish(record(2), {}, after)
    await nc.answer(0, PUB_ACK)
    await nc.answer(1, PUB_ACK)
    assert after.calls == [None]
    await published.close()
