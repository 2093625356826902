"""Issue 17: the failures view's consumer is not sent first attempts that succeeded.

The sender's own AttemptPublisher records attempts on a real nats-server: a delivery whose
first attempt succeeds goes on ``attempts.<tenant>.<subscription>.ok``, which the failures
projector's consumer does not take, while a failed attempt, the retry that succeeded after
it and a manual redelivery's success stay on ``attempts.<tenant>.<subscription>`` and still
resolve their failed events. Read-your-writes and the lag gauge end at the last record the
view reads, not at the stream's last (a first success).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from tests.support import NatsServer
from webhooks.v1 import messages_pb2
from webhooks_config import load_settings
from webhooks_failures.lag import ProjectionLag
from webhooks_failures.model import RECOVERED, Filter
from webhooks_failures.projector import Projector
from webhooks_failures.view import SQLiteFailuresView
from webhooks_messaging import ATTEMPTS, attempts_subject, declare_streams
from webhooks_sender.attempts import AttemptPublisher

pytestmark = pytest.mark.timeout(180)

WAIT_SECONDS = 30.0
SUCCEEDED = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
FAILED = messages_pb2.ATTEMPT_OUTCOME_FAILED
TENANT, SUBSCRIPTION = "acme", "sub-1"


@pytest.fixture
async def nc(tmp_path: Path) -> AsyncIterator[Client]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    client: Client = await nats.connect(server.url)
    try:
        await declare_streams(client.jetstream(), load_settings({"WEBHOOKS_NATS_URL": server.url}))
        yield client
    finally:
        await client.close()
        server.stop()


def attempt(
    delivery: str,
    attempt: int,
    outcome: int,
    *,
    series: int = 0,
    will_retry: bool = False,
    manual: bool = False,
) -> messages_pb2.AttemptRecord:
    made = messages_pb2.AttemptRecord(
        delivery_id=delivery,
        series=series,
        attempt=attempt,
        tenant=TENANT,
        subscription_id=SUBSCRIPTION,
        event_id=f"event-{delivery}",
        entity="Object",
        trigger="OnNew",
        outcome=outcome,  # type: ignore[arg-type]
        status_code=200 if outcome == SUCCEEDED else 500,
        will_retry=will_retry,
        manual=manual,
        max_attempts=2,
    )
    made.started_at.seconds = 1_800_000_000 + 10 * series + attempt
    return made


async def record_as_the_sender(nc: Client, records: Sequence[messages_pb2.AttemptRecord]) -> None:
    """Each record through the sender's publisher, every one stored (PubAck) before return."""
    publisher = AttemptPublisher(nc)
    await publisher.start()
    stored: list[BaseException | None] = []
    all_stored = asyncio.Event()

    async def then(error: BaseException | None) -> None:
        stored.append(error)
        if len(stored) == len(records):
            all_stored.set()

    try:
        for record in records:
            await publisher.publish(record, {}, then)
        await asyncio.wait_for(all_stored.wait(), WAIT_SECONDS)
    finally:
        await publisher.close()
    assert stored == [None] * len(records)


async def stored_subjects(nc: Client) -> list[tuple[str, str, int, int]]:
    """(subject, delivery, series, attempt) of every record on ATTEMPTS, in stream order."""
    js = nc.jetstream()
    info = await js.stream_info(ATTEMPTS)
    found = []
    for seq in range(1, info.state.last_seq + 1):
        msg = await js.get_msg(ATTEMPTS, seq)
        assert msg.subject is not None and msg.data is not None
        record = messages_pb2.AttemptRecord.FromString(msg.data)
        found.append((msg.subject, record.delivery_id, record.series, record.attempt))
    return found


async def test_a_first_success_is_not_sent_to_the_failures_view(nc: Client, tmp_path: Path) -> None:
    js = nc.jetstream()
    view = SQLiteFailuresView(tmp_path / "view.db")
    projector = Projector(view)
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(js, stop))
    try:
        # "ok": delivered at once. "retried": fails, its retry succeeds. "redelivered":
        # fails for good, a manual redelivery (marker, then attempt 1 of series 1) succeeds.
        await record_as_the_sender(
            nc,
            [
                attempt("ok", 1, SUCCEEDED),
                attempt("retried", 1, FAILED, will_retry=True),
                attempt("retried", 2, SUCCEEDED),
                attempt("redelivered", 1, FAILED),
            ],
        )
        marker = attempt("redelivered", 0, messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED)
        marker.series = 1
        await js.publish(
            attempts_subject(TENANT, SUBSCRIPTION), marker.SerializeToString(), stream=ATTEMPTS
        )
        await record_as_the_sender(
            nc,
            [
                attempt("redelivered", 1, SUCCEEDED, series=1, manual=True),
                attempt("ok-too", 1, SUCCEEDED),  # the stream ends on a first success
            ],
        )
        # Read-your-writes ends at the last record the view reads: a prompt True, though the
        # stream's last record (sequence 7) never reaches the projector.
        assert await projector.caught_up(js, WAIT_SECONDS), projector.applied
        assert projector.applied == 6
        assert await projector.stream_end(js) == 6
        lag = ProjectionLag(js, projector)
        await lag.refresh()
        assert [value for value, _ in lag.points()] == [0]
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_SECONDS)

    plain, first = attempts_subject(TENANT, SUBSCRIPTION), f"attempts.{TENANT}.{SUBSCRIPTION}.ok"
    assert await stored_subjects(nc) == [
        (first, "ok", 0, 1),
        (plain, "retried", 0, 1),
        (plain, "retried", 0, 2),
        (plain, "redelivered", 0, 1),
        (plain, "redelivered", 1, 0),
        (plain, "redelivered", 1, 1),
        (first, "ok-too", 0, 1),
    ]
    # The consumer was sent the five others only, and set nothing aside.
    assert projector.records_applied == 5
    assert projector.skipped == {}
    found = {f.delivery_id: f for f in view.list_failed(TENANT, Filter(), 50, "").failed_events}
    assert set(found) == {"retried", "redelivered"}
    assert found["retried"].state == RECOVERED
    assert found["redelivered"].state == RECOVERED
    view.close()
