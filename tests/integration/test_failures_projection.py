"""The failures projector on a real ATTEMPTS stream (an own nats-server per test, so the
stream holds only the test's records) into SQLite and PostgreSQL views.

The rebuild test uses REBUILD_ATTEMPTS generated attempts (20,000: about 20 s on two
shared cores with publishing, the live projection, the replay and the dumps);
``bench/failures.py --rebuild 100000`` runs the same check at the issue's 100,000.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from tests.support import NatsServer
from tests.support.failures_history import Generator
from webhooks.v1 import messages_pb2
from webhooks_config import load_settings
from webhooks_failures.model import Filter
from webhooks_failures.projector import Projector
from webhooks_failures.rebuild import rebuild
from webhooks_failures.view import FailuresView, PostgresFailuresView, SQLiteFailuresView
from webhooks_messaging import ATTEMPTS, attempts_subject, declare_streams

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WAIT_SECONDS = 60.0
FAILED_OUTCOME = messages_pb2.ATTEMPT_OUTCOME_FAILED
REBUILD_ATTEMPTS = 20_000
PUBLISH_WINDOW = 2000  # publish_async acks awaited per this many


@pytest.fixture
async def js(tmp_path: Path) -> AsyncIterator[JetStreamContext]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    nc: Client = await nats.connect(server.url)
    try:
        stream = nc.jetstream()
        await declare_streams(stream, load_settings({"WEBHOOKS_NATS_URL": server.url}))
        yield stream
    finally:
        await nc.close()
        server.stop()


@pytest.fixture(params=STORES)
def make_view(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], FailuresView]]:
    """Factory of views of the parametrized store (distinct files / schemas by name)."""
    views: list[FailuresView] = []

    def make(name: str = "view") -> FailuresView:
        view: FailuresView
        if request.param == "sqlite":
            view = SQLiteFailuresView(tmp_path / f"{name}.db")
        else:
            url = request.getfixturevalue("postgres_url")
            schema = request.getfixturevalue("postgres_schema")(f"failures_{name}")
            view = PostgresFailuresView(url, schema)
        views.append(view)
        return view

    yield make
    for view in views:
        view.close()


async def publish(js: JetStreamContext, records: Sequence[messages_pb2.AttemptRecord]) -> None:
    """As the sender does: attempts.<tenant>.<subscription>, Nats-Msg-Id
    <delivery>:<series>:<attempt>; publish_async in windows of acks."""
    for start in range(0, len(records), PUBLISH_WINDOW):
        acks = [
            await js.publish_async(
                attempts_subject(r.tenant, r.subscription_id),
                r.SerializeToString(),
                stream=ATTEMPTS,
                headers={"Nats-Msg-Id": f"{r.delivery_id}:{r.series}:{r.attempt}"},
            )
            for r in records[start : start + PUBLISH_WINDOW]
        ]
        await asyncio.gather(*acks)


@contextlib.asynccontextmanager
async def running(projector: Projector, js: JetStreamContext) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(js, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_SECONDS)


async def caught_up(projector: Projector, js: JetStreamContext) -> None:
    assert await projector.caught_up(js, WAIT_SECONDS), (
        f"applied {projector.applied}, stream at {await projector.stream_end(js)}"
    )


def summary(view: FailuresView, tenant: str) -> dict[str, tuple[int, str, str, int]]:
    """delivery -> (state, error code, message, retry attempts), from the listing."""
    out: dict[str, tuple[int, str, str, int]] = {}
    token = ""
    while True:
        page = view.list_failed(tenant, Filter(), 500, token)
        for e in page.failed_events:
            out[e.delivery_id] = (e.state, e.error_code, e.error_message, e.retry_attempts)
        token = page.next_page_token
        if not token:
            return out


async def test_the_projector_applies_published_attempts(
    js: JetStreamContext, make_view: Callable[[str], FailuresView]
) -> None:
    history = Generator(seed=11).history(3000)
    view = make_view("live")
    projector = Projector(view)
    async with running(projector, js):
        await publish(js, history.records[:1000])
        await caught_up(projector, js)
        # Read-your-writes while the projector follows the stream.
        await publish(js, history.records[1000:])
        await caught_up(projector, js)
        assert projector.applied == len(history.records)
    assert projector.records_applied == len(history.records)
    for tenant in ("acme", "globex"):
        expected = {
            key[1]: (e.state, e.error_code, e.error_message, e.attempts - 1)
            for key, e in history.expected.items()
            if key[0] == tenant
        }
        assert summary(view, tenant) == expected


async def test_undecodable_messages_are_skipped_but_advance_the_position(
    js: JetStreamContext, make_view: Callable[[str], FailuresView]
) -> None:
    history = Generator(seed=12).history(50)
    await publish(js, history.records[:20])
    await js.publish("attempts.acme.sub-0", b"\xff\xff not a record")
    await js.publish("attempts.acme.sub-0", messages_pb2.AttemptRecord().SerializeToString())
    await publish(js, history.records[20:])
    await js.publish("attempts.acme.sub-0", b"\xff\xff trailing")
    view = make_view("live")
    projector = Projector(view)
    async with running(projector, js):
        await caught_up(projector, js)
    assert projector.skipped == {"undecodable": 2, "invalid": 1}
    assert view.position() == len(history.records) + 3
    assert len(summary(view, "acme")) + len(summary(view, "globex")) == len(history.expected)


async def test_a_record_the_view_refuses_is_set_aside_and_its_batch_is_kept(
    js: JetStreamContext, make_view: Callable[[str], FailuresView], request: pytest.FixtureRequest
) -> None:
    """A record that passes every check and still fails the batch's write (PostgreSQL
    takes no NUL character in text) costs only itself: the batch is applied record by
    record and that one is set aside."""
    history = Generator(seed=14).history(50)
    refused = messages_pb2.AttemptRecord()
    refused.CopyFrom(next(r for r in history.records if r.outcome == FAILED_OUTCOME))
    refused.delivery_id = "refused-delivery"
    refused.error_message = "nul \x00 inside"
    await publish(js, [*history.records[:20], refused, *history.records[20:]])
    view = make_view("live")
    projector = Projector(view)
    async with running(projector, js):
        await caught_up(projector, js)
    assert view.position() == len(history.records) + 1
    listed = {**summary(view, "acme"), **summary(view, "globex")}
    expected = {key[1] for key in history.expected}
    if "postgres" in request.node.callspec.id:
        assert projector.skipped == {"not-applied": 1}
        assert set(listed) == expected
    else:  # SQLite stores the NUL: nothing to set aside
        assert projector.skipped == {}
        assert set(listed) == expected | {"refused-delivery"}


async def test_a_projector_killed_mid_stream_resumes_to_the_same_view(
    js: JetStreamContext, make_view: Callable[[str], FailuresView]
) -> None:
    history = Generator(seed=13).history(6000)
    await publish(js, history.records)
    clean, killed = make_view("clean"), make_view("killed")
    clean_projector = Projector(clean)
    async with running(clean_projector, js):
        await caught_up(clean_projector, js)

    # Cancelled (not stopped) while batches are in flight, twice; small batches so the
    # cancellation lands mid-stream.
    for _ in range(2):
        victim = Projector(killed, batch_size=100)
        target = killed.position() + 500
        task = asyncio.create_task(victim.run(js, asyncio.Event()))
        await asyncio.wait_for(victim.reached(target), WAIT_SECONDS)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    partial = killed.position()
    assert 0 < partial < len(history.records)

    resumed = Projector(killed)
    async with running(resumed, js):
        await caught_up(resumed, js)
    # It read only what was left, and the result equals a single clean run.
    assert resumed.records_applied == len(history.records) - partial
    assert killed.dump() == clean.dump()


async def test_two_projectors_on_one_view_apply_each_batch_once(
    js: JetStreamContext, make_view: Callable[[str], FailuresView]
) -> None:
    history = Generator(seed=14).history(4000)
    shared, clean = make_view("shared"), make_view("clean")
    first, second = Projector(shared, batch_size=200), Projector(shared, batch_size=200)
    async with running(first, js), running(second, js):
        await publish(js, history.records)
        end = await first.stream_end(js)
        # The one that lost the last race reads the position it moved to.
        both = asyncio.gather(first.reached(end), second.reached(end))
        await asyncio.wait_for(both, WAIT_SECONDS)
        assert shared.position() == end
    # Each batch was written by one of them: the other found the position moved.
    assert first.records_applied + second.records_applied == len(history.records)
    clean_projector = Projector(clean)
    async with running(clean_projector, js):
        await caught_up(clean_projector, js)
    assert shared.dump() == clean.dump()


async def test_rebuild_equals_the_live_view(
    js: JetStreamContext, make_view: Callable[[str], FailuresView]
) -> None:
    history = Generator(seed=15, tenants=("acme", "globex", "initech")).history(REBUILD_ATTEMPTS)
    view = make_view("live")
    projector = Projector(view)
    more = Generator(seed=16, prefix="late").history(2000)
    async with running(projector, js) as task:
        await publish(js, history.records)
        await caught_up(projector, js)
        live = view.dump()
        assert len(live["events"]) == len(history.expected)

        # Attempts keep arriving during the rebuild; the live projector keeps going after.
        publishing = asyncio.create_task(publish(js, more.records))
        applied, failed_events = await rebuild(js, view, projector)
        await publishing
        await caught_up(projector, js)
        assert not task.done()

    assert applied >= len(history.records)
    assert failed_events >= len(history.expected)
    # The live view after the rebuild equals a clean projection of the whole stream.
    clean = make_view("clean")
    clean_projector = Projector(clean)
    async with running(clean_projector, js):
        await caught_up(clean_projector, js)
    rebuilt = view.dump()
    assert rebuilt == clean.dump()
    assert view.position() == clean.position()
    # And what the rebuild started from is in it unchanged, row for row.
    late = {(e.tenant, e.delivery_id) for e in more.expected.values()}
    assert [r for r in rebuilt["events"] if (r[0], r[1]) not in late] == live["events"]


async def test_rebuild_of_an_idle_view_swaps_in_an_equal_copy(
    js: JetStreamContext, make_view: Callable[[str], FailuresView]
) -> None:
    history = Generator(seed=17).history(3000)
    await publish(js, history.records)
    view = make_view("live")
    projector = Projector(view)
    async with running(projector, js):
        await caught_up(projector, js)
        before = view.dump()
        # Two rebuilds in a row: the second must not collide with the first's leftovers.
        assert await rebuild(js, view, projector) == (len(history.records), len(history.expected))
        assert await rebuild(js, view, projector) == (len(history.records), len(history.expected))
        assert view.dump() == before
        # The live projector still follows the stream into the swapped-in tables.
        extra = Generator(seed=18, prefix="x").history(500)
        await publish(js, extra.records)
        await caught_up(projector, js)
    assert len(view.dump()["events"]) == len(history.expected) + len(extra.expected)
