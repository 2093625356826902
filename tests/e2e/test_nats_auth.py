"""NATS admits only the platform's users, each to what it needs (issue 11).

Attacks from the position the README invites platform services into, a connection to NATS
that publishes events, against a real nats-server running the platform's own
configuration (webhooks_messaging.auth) and, for routing, the whole platform as processes
(tests.support.platform_stack): with no credential nothing connects; with the publisher's
credential, events go in and are delivered, while writing any other stream, managing
JetStream or reading anything is refused and stores nothing; a forged subscription change
(which used to redirect the victim's deliveries to the forger's URL) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from tests.e2e.conftest import Platform as UpPlatform
from tests.support.nats_server import NatsServer
from tests.support.platform_stack import (
    Platform,
    new_tenant,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver
from webhooks.v1 import messages_pb2
from webhooks_config import load_settings
from webhooks_messaging import (
    ATTEMPTS,
    DELIVERIES,
    EVENTS,
    SUBSCRIPTIONS,
    declare_streams,
    events_subject,
    subscription_subject,
)
from webhooks_messaging import auth as nats_auth
from webhooks_messaging.permissions import ADMIN_USER, PUBLISHER_USER, USERS, inbox_prefix

VIOLATION_SECONDS = 10.0  # for the server's -ERR to come back


class Connection:
    """A client that keeps every asynchronous error the server sends (permission
    violations come that way: the connection stays open)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def connect(self, url: str, seed: Path | None, inbox: str | None = None) -> Connection:
        async def on_error(error: Exception) -> None:
            self.errors.append(str(error))

        options = {"nkeys_seed": str(seed)} if seed is not None else {}
        if inbox is not None:  # a service's own inbox, as webhooks_messaging.connect sets it
            options["inbox_prefix"] = inbox
        self.nc = await nats.connect(
            url, error_cb=on_error, allow_reconnect=False, connect_timeout=5, **options
        )
        return self

    async def violation(self, what: str, subject: str) -> None:
        """Until the server has said that ``what`` (publish, subscription) to ``subject``
        is not permitted."""

        def said() -> bool:
            return any(
                "permissions violation" in e.lower()
                and what in e.lower()
                and subject.lower() in e.lower()
                for e in self.errors
            )

        deadline = time.monotonic() + VIOLATION_SECONDS
        while not said():
            assert time.monotonic() < deadline, f"no {what} violation on {subject}: {self.errors}"
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def connected(
    url: str, seed: Path | None, inbox: str | None = None
) -> AsyncIterator[Connection]:
    connection = await Connection().connect(url, seed, inbox)
    try:
        yield connection
    finally:
        assert connection.nc is not None
        await connection.nc.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, nats_auth.NatsAuth]]:
    """A nats-server with the platform's users and its streams, declared as the admin."""
    auth = nats_auth.prepare(tmp_path / "nats-auth")
    nats_server = NatsServer(tmp_path / "store", config_file=auth.server_config)
    await asyncio.to_thread(nats_server.start)
    try:
        async with connected(nats_server.url, auth.seed_file(ADMIN_USER)) as admin:
            assert admin.nc is not None
            await declare_streams(admin.nc.jetstream(), load_settings({}))
        yield nats_server, auth
    finally:
        await asyncio.to_thread(nats_server.stop)


async def test_a_connection_without_a_credential_is_refused(
    server: tuple[NatsServer, nats_auth.NatsAuth], tmp_path: Path
) -> None:
    nats_server, _ = server
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(nats_server.url, allow_reconnect=False, connect_timeout=5)
    # Nor does a key the server does not list get in.
    stranger = tmp_path / "stranger.nk"
    stranger.write_bytes(nats_auth.new_seed())
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(
            nats_server.url, allow_reconnect=False, connect_timeout=5, nkeys_seed=str(stranger)
        )


FORBIDDEN_PUBLISH = [
    # Another stream's messages: forged subscription changes, jobs, retries, attempts.
    ("subscriptions.acme.subscription.s1", SUBSCRIPTIONS),
    ("deliveries.jobs.acme.s1", DELIVERIES),
    ("deliveries.retry.d1", DELIVERIES),
    ("attempts.acme.s1", ATTEMPTS),
    # The platform's own events about webhooks (issue 15): a forged "your webhook is disabled".
    ("events.acme.Webhook.OnDisabled", EVENTS),
]
FORBIDDEN_API = [
    "$JS.API.STREAM.DELETE.EVENTS",
    f"$JS.API.STREAM.PURGE.{SUBSCRIPTIONS}",
    "$JS.API.STREAM.CREATE.MINE",
    f"$JS.API.STREAM.UPDATE.{EVENTS}",
    f"$JS.API.STREAM.INFO.{SUBSCRIPTIONS}",
    f"$JS.API.STREAM.MSG.GET.{SUBSCRIPTIONS}",
    f"$JS.API.STREAM.MSG.DELETE.{EVENTS}",
    f"$JS.API.CONSUMER.CREATE.{SUBSCRIPTIONS}",
    f"$JS.API.CONSUMER.DURABLE.CREATE.{DELIVERIES}.thief",
    f"$JS.API.CONSUMER.DELETE.{EVENTS}.router",
    f"$JS.API.DIRECT.GET.{ATTEMPTS}",
]


async def test_the_publisher_may_write_only_events(
    server: tuple[NatsServer, nats_auth.NatsAuth],
) -> None:
    nats_server, auth = server
    async with (
        connected(nats_server.url, auth.seed_file(PUBLISHER_USER)) as publisher,
        connected(nats_server.url, auth.seed_file(ADMIN_USER)) as admin,
    ):
        assert publisher.nc is not None and admin.nc is not None
        js, admin_js = publisher.nc.jetstream(), admin.nc.jetstream()
        # What it is for: an event, acknowledged by JetStream (on its _INBOX).
        ack = await js.publish(events_subject("acme", "Object", "OnNew"), b"x", timeout=10)
        assert ack.stream == EVENTS
        before = {
            s: (await admin_js.stream_info(s)).state.messages
            for s in (EVENTS, *{stream for _, stream in FORBIDDEN_PUBLISH})
        }
        for subject, _ in FORBIDDEN_PUBLISH:
            await publisher.nc.publish(subject, b"forged")
            await publisher.violation("publish", subject)
        for subject in FORBIDDEN_API:
            await publisher.nc.publish(subject, b"{}", reply=publisher.nc.new_inbox())
            await publisher.violation("publish", subject)
        # Reading: no stream's subjects, no service's replies.
        for subject in ("subscriptions.>", "deliveries.>", "attempts.>", "events.>", ">"):
            await publisher.nc.subscribe(subject)
            await publisher.violation("subscription", subject)
        for user in ("router", "sender", "subscriptions", "failures"):
            subject = f"{inbox_prefix(user)}.>"
            await publisher.nc.subscribe(subject)
            await publisher.violation("subscription", subject)
        await publisher.nc.flush()
        assert publisher.nc.is_connected  # refused, not disconnected: the events go on
        # Nothing forged was stored, nothing was removed, no consumer was made.
        after = {s: (await admin_js.stream_info(s)).state.messages for s in before}
        assert after == before
        assert (await admin_js.stream_info(SUBSCRIPTIONS)).state.consumer_count == 0
        with pytest.raises(NotFoundError):
            await admin_js.stream_info("MINE")


async def test_with_the_publisher_credential_events_are_delivered_and_forged_changes_ignored(
    tmp_path: Path,
) -> None:
    async with (
        running_platform(tmp_path, failures=False) as platform,
        HttpsReceiver(platform.pki) as victim_site,
        HttpsReceiver(platform.pki) as forger_site,
    ):
        await forged_change_is_ignored(platform, victim_site, forger_site)


async def forged_change_is_ignored(
    platform: Platform, victim_site: HttpsReceiver, forger_site: HttpsReceiver
) -> None:
    assert platform.auth is not None, "the platform runs with its NATS users"
    victim = new_tenant("victim")
    created = await platform.create_subscription(victim, rest("victim hook", victim_site.url()))
    subscription = created.subscription
    async with connected(platform.nats_url, platform.auth.seed_file(PUBLISHER_USER)) as forger:
        assert forger.nc is not None
        # The victim's own state, redirected to the forger's URL with a higher version: what
        # the routing table and the senders' directory would take as the latest change.
        stored = await platform.js.get_last_msg(
            SUBSCRIPTIONS, subscription_subject(victim, subscription.id)
        )
        forged = messages_pb2.SubscriptionDomainEvent.FromString(stored.data or b"")
        forged.subscription.webhook.url = forger_site.url()
        forged.subscription.version += 100
        subject = subscription_subject(victim, subscription.id)
        await forger.nc.publish(subject, forged.SerializeToString())
        await forger.violation("publish", subject)
        # An event of the victim, published by the same credential straight onto EVENTS.
        event = platform_event(victim, "Object", "OnNew")
        ack = await forger.nc.jetstream().publish(
            events_subject(victim, "Object", "OnNew"),
            event.SerializeToString(),
            headers={"Nats-Msg-Id": event.event_id},
            timeout=10,
        )
        assert ack.stream == EVENTS and not ack.duplicate
    await victim_site.wait_for(1, timeout=30)
    await platform.wait_idle()
    assert [r.path for r in victim_site.received] == ["/hook"]
    assert event.event_id.encode() in victim_site.received[0].body
    assert forger_site.received == []
    last = await platform.js.get_last_msg(
        SUBSCRIPTIONS, subscription_subject(victim, subscription.id)
    )
    assert last.seq == stored.seq, "the forged change is not on SUBSCRIPTIONS"


# -- webhooks up -----------------------------------------------------------------------


def printed(log: str, row: str) -> str:
    """The value of a row of ``up``'s last summary (``  nats publisher  /path``)."""
    found = re.findall(rf"^  {re.escape(row)}\s+(\S+)$", log, re.MULTILINE)
    assert found, f"no {row!r} in:\n{log}"
    return str(found[-1])


def modes(seed: Path) -> tuple[int, ...]:
    """Of the seed, its directory and the credentials directory."""
    return tuple(stat.S_IMODE(p.stat().st_mode) for p in (seed, seed.parent, seed.parent.parent))


def credentials(data_dir: Path) -> dict[str, bytes]:
    auth = nats_auth.NatsAuth(data_dir / "nats-auth")
    return {user: auth.seed_file(user).read_bytes() for user in USERS}


async def test_up_runs_nats_with_the_platform_users_and_keeps_them(tmp_path: Path) -> None:
    up = UpPlatform.create(tmp_path)
    await asyncio.to_thread(up.start)
    try:
        url = printed(up.log(), "nats")
        seed = Path(printed(up.log(), "nats publisher"))
        assert seed == nats_auth.NatsAuth(up.data_dir / "nats-auth").seed_file(PUBLISHER_USER)
        assert modes(seed) == (0o600, 0o700, 0o700), "owner only"
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=5)
        async with connected(url, seed) as publisher:
            assert publisher.nc is not None
            ack = await publisher.nc.jetstream().publish(
                events_subject("acme", "Object", "OnNew"), b"not an event", timeout=10
            )
            assert ack.stream == EVENTS
            await publisher.nc.publish("subscriptions.acme.subscription.s1", b"forged")
            await publisher.violation("publish", "subscriptions.acme.subscription.s1")
        seeds = credentials(up.data_dir)
    finally:
        assert await asyncio.to_thread(up.stop) == 0, up.log()
    # A second up keeps every credential (a publisher configured with it still gets in).
    await asyncio.to_thread(up.start)
    try:
        assert credentials(up.data_dir) == seeds
        async with connected(printed(up.log(), "nats"), seed) as publisher:
            assert publisher.nc is not None and publisher.nc.is_connected
    finally:
        assert await asyncio.to_thread(up.stop) == 0, up.log()
