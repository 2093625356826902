"""Healing in seconds without duplicate sends, as real processes: the work a killed sender or
router held comes back within about the consumers' ack_wait (10 s,
``webhooks_messaging.heartbeats``), and a slow but healthy request is kept alive by
in-progress acknowledgements instead of going to a second sender mid-flight.

What is asserted comes from outside the services: what the HTTPS receiver got (by
``webhook-id``, and when), what ATTEMPTS holds, and the consumers' state on the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.platform_stack import platform_event, running_platform
from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.sender_stack import SUCCEEDED, Stack, new_tenant, rest, running_stack
from webhooks_messaging import DELIVERIES, EVENTS
from webhooks_messaging.subjects import events_subject

# Long enough for the 25 s request; the old ack_wait (3 x timeout + 15 s) grew with it.
SENDER_TIMEOUT_MS = 30_000
HEALED_WITHIN = 15.0  # seconds: the consumers' ack_wait (10 s) and a margin


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("healing")
    async with running_stack(tmp, WEBHOOKS_SENDER_TIMEOUT_MS=str(SENDER_TIMEOUT_MS)) as running:
        yield running


async def wait_until(
    done: Callable[[], bool] | Callable[[], Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 - a deadline for a condition, not a call
    what: str | Callable[[], str],
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = done()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not within {timeout} s")
        await asyncio.sleep(0.05)


async def test_a_killed_senders_jobs_are_sent_again_within_seconds(stack: Stack) -> None:
    """kill -9 of the sender while it holds requests in flight, restarted at once: every job
    is delivered, and the first request sent again (a webhook-id the receiver had before
    the kill) arrives within HEALED_WITHIN of the kill."""
    jobs_count, kill_at = 600, 150
    tenant = new_tenant("heal")
    attempts = await stack.attempts(tenant)
    armed = asyncio.Event()  # requests are held until the sender's start() has returned
    killed_at: list[float] = []  # time.time() of the kill
    # (arrival time, webhook-id) of every request, noted on arrival: the receiver lists a
    # request only once answered, and those in flight at the kill are the ones sent again.
    arrived: list[tuple[float, str]] = []

    async def kill_at_the_150th(request: Received) -> Reply:
        arrived.append((request.at, request.headers["webhook-id"]))
        await armed.wait()
        if len(receiver.received) >= kill_at and not killed_at:
            stack.sender.kill()  # SIGKILL: the requests in flight are never answered
            killed_at.append(time.time())
        return Reply(204, delay=0.2)

    async with HttpsReceiver(stack.pki) as receiver:
        subscriptions = []
        for n in range(4):
            receiver.reply(f"/heal-{n}", kill_at_the_150th)
            url = receiver.url(f"/heal-{n}")
            subscriptions.append((await stack.create(tenant, rest(f"heal {n}", url))).subscription)
        jobs = [stack.job(subscriptions[n % 4]) for n in range(jobs_count)]
        sent = {job.delivery_id for job in jobs}

        # A backlog when the sender starts: at the kill it holds jobs sent, waiting, parked.
        stack.sender.kill()
        for start in range(0, jobs_count, 50):
            await asyncio.gather(*(stack.publish(job) for job in jobs[start : start + 50]))
        await stack.sender.start()
        armed.set()
        await wait_until(lambda: bool(killed_at), 60, "the kill")
        before = {webhook_id for at, webhook_id in arrived if at <= killed_at[0]}
        assert len(before) < jobs_count, "the kill came after the last delivery"

        await stack.sender.start()  # as `webhooks up` restarts a child

        def ids() -> set[str]:
            return {r.headers["webhook-id"] for r in receiver.received}

        await wait_until(lambda: ids() >= sent, 90, lambda: f"{len(ids())} of {jobs_count}")
        await attempts.wait(lambda: attempts.succeeded() >= sent, 30, "every job SUCCEEDED")
        assert ids() == sent

        resent = [
            r.at
            for r in receiver.received
            if r.at > killed_at[0] and r.headers["webhook-id"] in before
        ]
        assert resent, "no request the killed sender had made was sent again"
        healed = min(resent) - killed_at[0]
        print(f"\nfirst request sent again {healed:.1f} s after the kill")
        assert healed < HEALED_WITHIN, f"{healed:.1f} s"


async def test_a_25_second_request_is_sent_once(stack: Stack) -> None:
    """A healthy request that takes 25 s, far beyond the consumer's ack_wait: heartbeats
    keep its job from a second sender, so the receiver gets it exactly once."""
    info = await stack.js.consumer_info(DELIVERIES, "sender")
    # The single send must come from the heartbeats, not from an ack_wait longer than it.
    assert info.config.ack_wait is not None and info.config.ack_wait < 25, info.config.ack_wait

    tenant = new_tenant("long")
    attempts = await stack.attempts(tenant)
    second = await stack.platform.add_replica("sender")  # one to take a redelivered job
    try:
        async with HttpsReceiver(stack.pki) as receiver:
            receiver.reply("/long", Reply(200, delay=25))
            created = await stack.create(tenant, rest("long", receiver.url("/long")))
            job = await stack.send(created.subscription)
            await attempts.wait(lambda: job.delivery_id in attempts.succeeded(), 60, "the attempt")
            got = [r for r in receiver.received if r.headers["webhook-id"] == job.delivery_id]
            assert len(got) == 1, f"sent {len(got)} times"
            records = attempts.of(job.delivery_id)
            assert [r.outcome for r in records] == [SUCCEEDED], records
            assert records[0].duration_ms >= 24_000
    finally:
        await second.stop()
        stack.platform.senders.remove(second)


async def test_a_killed_routers_events_are_routed_within_seconds_of_its_restart(
    tmp_path: Path,
) -> None:
    """kill -9 of the router while it routes a backlog of events (some taken, not
    acknowledged), restarted at once: every event is routed within HEALED_WITHIN of the
    restart. No sender: the jobs stay on DELIVERIES, one per event."""
    events_count = 5000
    async with running_platform(tmp_path, senders=0, failures=False) as p:
        router = p.routers[0]
        tenant = new_tenant("reroute")
        await p.create_subscription(tenant, rest("reroute", "https://127.0.0.1:9/hook"))
        router.kill()
        events = [platform_event(tenant, "Object", "OnNew") for _ in range(events_count)]
        subject = events_subject(tenant, "Object", "OnNew")
        for start in range(0, events_count, 100):
            await asyncio.gather(
                *(
                    p.js.publish(
                        subject, e.SerializeToString(), headers={"Nats-Msg-Id": e.event_id}
                    )
                    for e in events[start : start + 100]
                )
            )
        await router.start()

        async def routing() -> bool:
            info = await p.js.consumer_info(EVENTS, "router")
            return info.ack_floor.stream_seq > 0 and (info.num_ack_pending or 0) > 0

        await wait_until(routing, 60, "the router routing, with events taken")
        router.kill()
        info = await p.js.consumer_info(EVENTS, "router")
        held = info.num_ack_pending or 0
        # Held, not acknowledged: what must come back within ack_wait. (The router fetches
        # ahead, so under load it may have taken every event already: that still tests it.)
        assert held > 0, "killed after the last event was acknowledged"

        await router.start()
        restarted = time.monotonic()

        async def routed() -> bool:
            info = await p.js.consumer_info(EVENTS, "router")
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)

        await wait_until(routed, 90, "every event routed")
        took = time.monotonic() - restarted
        jobs = (await p.js.stream_info(DELIVERIES)).state.messages
        print(f"\n{held} events held at the kill; all routed {took:.1f} s after the restart")
        assert jobs == events_count
        assert took < HEALED_WITHIN, f"{took:.1f} s"
