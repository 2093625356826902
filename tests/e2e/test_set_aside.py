"""No single record can stop a stream's producer or consumer (issue 11), played against the
platform as real processes on a real nats-server (with the platform's NATS users), on
SQLite and PostgreSQL:

- a change too large for NATS forced straight into the subscriptions event store is set
  aside by the outbox relay, and another tenant's deactivation made right after it is on
  SUBSCRIPTIONS, and stops routing, within 1 s;
- foreign messages on SUBSCRIPTIONS (no relay id, or a forged one) do not stop the relay,
  running or restarted, and are set aside by the routing table and the sender's directory;
- a poison attempt record (a timestamp of 2^62 s, undecodable bytes) is set aside by the
  failures projector and the next real failure is listed within 1 s;
- forged jobs (another tenant's subject) are set aside by the sender, never delivered;
- what was set aside is listed by ListDeadLetters / ``webhooks deadletters`` (platform
  token only).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import UUID

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from tests.support.platform_stack import (
    PLATFORM_TOKEN,
    RPC_TIMEOUT,
    Platform,
    bearer,
    new_tenant,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from tests.support.rpc import rpc_error
from tests.support.waiting import eventually
from webhooks.v1 import failures_pb2, messages_pb2, subscriptions_pb2
from webhooks_config import load_settings
from webhooks_messaging import (
    ATTEMPTS,
    SUBSCRIPTIONS,
    attempts_subject,
    delivery_job_subject,
    subscription_subject,
)
from webhooks_secrets import SecretBox
from webhooks_subscriptions.application import Policy, Subscriptions
from webhooks_subscriptions.bootstrap import persistence_env
from webhooks_subscriptions.domain.subscription import Subscription

TENANT_TOKEN = "set-aside-tenant-" + uuid.uuid4().hex
TENANT_OF_TOKEN = "set-aside-own"
TOKENS = ({"name": "tenant-admin", "token": TENANT_TOKEN, "tenant": TENANT_OF_TOKEN},)
WITHIN = 1.0  # the acceptance bound: seconds


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Platform]:
    store, url, schema = request.param, "", ""
    if store == "postgres":
        make_schema: Callable[[str], str] = request.getfixturevalue("postgres_schema")
        url, schema = request.getfixturevalue("postgres_url"), make_schema("setaside")
    async with running_platform(
        tmp_path,
        store=store,
        postgres_url=url,
        postgres_schema=schema,
        tokens=TOKENS,
        env={"WEBHOOKS_RELAY_POLL_MS": "100"},
    ) as running:
        yield running


@pytest.fixture
async def receiver(stack: Platform) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


async def dead_letters(
    stack: Platform, *, component: str = "", reason: str = "", limit: int = 1000
) -> list[failures_pb2.ListedDeadLetter]:
    response = await stack.failures.ListDeadLetters(
        failures_pb2.ListDeadLettersRequest(component=component, reason=reason, limit=limit),
        metadata=platform("operators"),
        timeout=RPC_TIMEOUT,
    )
    return list(response.dead_letters)


async def letter_where(
    stack: Platform, component: str, reason: str, found: Callable[[messages_pb2.DeadLetter], bool]
) -> messages_pb2.DeadLetter:
    listed = await eventually(
        lambda: dead_letters(stack, component=component, reason=reason),
        lambda letters: any(found(entry.letter) for entry in letters),
        timeout=20,
        what=f"a {component} letter ({reason})",
    )
    return next(entry.letter for entry in listed if found(entry.letter))


async def last_state(
    stack: Platform, tenant: str, subscription_id: str
) -> messages_pb2.SubscriptionState:
    msg = await stack.js.get_last_msg(SUBSCRIPTIONS, subscription_subject(tenant, subscription_id))
    return messages_pb2.SubscriptionDomainEvent.FromString(msg.data or b"").subscription


def force_oversized_rename(stack: Platform, subscription_id: str) -> None:
    """Renames the subscription to 1.5 MB straight in the event store, as a command past
    every API limit would (the relay cannot publish a state over NATS max_payload), and
    stores a subscription of an impossible tenant next to it."""
    settings = load_settings(stack.subscriptions.env)
    app = Subscriptions(
        env=persistence_env(settings),
        secrets=SecretBox.from_settings(settings),
        policy=Policy(),
    )
    try:
        subscription: Subscription = app.repository.get(UUID(subscription_id))
        # And a subscription of a tenant no subject can name: it cannot be addressed.
        unaddressable = Subscription(
            tenant="no/such tenant",
            name="unaddressable",
            entity=subscription.entity,
            triggers=subscription.triggers,
            include_complete_data=False,
            webhook=subscription.webhook,
            authentication=subscription.authentication,
            retry_policy=subscription.retry_policy,
            active=True,
            signing_secret=subscription.signing_secret,
            actor="attacker",
            trace={},
        )
        subscription.rename("x" * 1_500_000, "attacker", {})
        app.save(subscription)
        app.save(unaddressable)
    finally:
        app.close()


async def set_active(stack: Platform, tenant: str, subscription_id: str, active: bool) -> None:
    await stack.subs.SetSubscriptionActive(
        subscriptions_pb2.SetSubscriptionActiveRequest(id=subscription_id, active=active),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )


async def test_an_unpublishable_change_is_set_aside_and_other_tenants_changes_still_stop_routing(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    attacker, victim = new_tenant("huge"), new_tenant("victim")
    huge = await stack.create_subscription(attacker, rest("grows", receiver.url("/huge")))
    kept = await stack.create_subscription(victim, rest("kept", receiver.url("/victim")))
    await stack.publish([platform_event(victim, "Object", "OnNew")])
    await receiver.wait_for(1, "/victim", timeout=30)

    await asyncio.to_thread(force_oversized_rename, stack, huge.subscription.id)
    await set_active(stack, victim, kept.subscription.id, False)
    deactivated = time.monotonic()
    state = await eventually(
        lambda: last_state(stack, victim, kept.subscription.id),
        lambda s: not s.active,
        timeout=WITHIN,
        what="the deactivation on SUBSCRIPTIONS",
    )
    assert state.version == 2
    assert time.monotonic() - deactivated <= WITHIN + 0.3  # one more poll at most
    await stack.publish([platform_event(victim, "Object", "OnNew")])
    await stack.wait_idle()
    assert len(receiver.at("/victim")) == 1, "an event was routed past the deactivation"

    letter = await letter_where(
        stack, "relay", "too-large", lambda letter: huge.subscription.id in letter.subject
    )
    assert letter.notification_id > 0
    assert letter.data_size > 1_000_000 and len(letter.data) == 64 * 1024
    assert "max_payload" in letter.detail
    unaddressable = await letter_where(stack, "relay", "unpublishable", lambda letter: True)
    assert "tenant" in unaddressable.detail and unaddressable.notification_id > 0
    # Later changes of the same subscription carry its whole state: the next one that fits
    # supersedes the skipped one.
    await stack.subs.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=huge.subscription.id,
            subscription=subscriptions_pb2.SubscriptionSpec(name="fits again"),
            update_mask=FieldMask(paths=["name"]),
        ),
        metadata=platform(attacker),
        timeout=RPC_TIMEOUT,
    )
    state = await eventually(
        lambda: last_state(stack, attacker, huge.subscription.id),
        lambda s: s.name == "fits again",
        timeout=10,
        what="the next change of the skipped subscription",
    )
    assert state.version == 3
    log = stack.subscriptions.log_text()
    assert "outbox relay paused" not in log, stack.subscriptions.log_tail()
    # One line a minute per kind, not one per try.
    assert sum("relay set aside" in line for line in log.splitlines()) == 2, log


SQLITE_ONLY = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


@SQLITE_ONLY
async def test_foreign_messages_on_subscriptions_stop_neither_the_relay_nor_the_tables(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant, victim = new_tenant("foreign"), new_tenant("forged-victim")
    created = await stack.create_subscription(tenant, rest("first", receiver.url("/first")))
    target = await stack.create_subscription(victim, rest("target", receiver.url("/target")))
    # Garbage without a relay id, garbage with a forged one, and a forged change of the
    # victim's subscription published under another tenant's subject.
    await stack.js.publish(f"subscriptions.{tenant}.subscription.x", b"\xff\xfe garbage")
    await stack.js.publish(
        f"subscriptions.{tenant}.subscription.y",
        b"\x0a\x05junk",
        headers={"Nats-Msg-Id": "subscriptions:999999999"},
    )
    forged = messages_pb2.SubscriptionDomainEvent(
        notification_id=1,
        event_type="Subscription.EndpointChanged",
        subscription=messages_pb2.SubscriptionState(
            id=target.subscription.id,
            tenant=victim,
            name="forged",
            entity="Object",
            version=99,
            active=True,
        ),
    )
    forged.subscription.webhook.url = receiver.url("/forger")
    await stack.js.publish(
        subscription_subject(tenant, target.subscription.id), forged.SerializeToString()
    )

    # The running relay goes on: its next publish meets a stream that moved.
    await set_active(stack, tenant, created.subscription.id, False)
    await eventually(
        lambda: last_state(stack, tenant, created.subscription.id),
        lambda s: not s.active,
        timeout=WITHIN + 0.5,
        what="the deactivation past the foreign messages",
    )
    # A restarted one finds its position past them.
    await stack.subscriptions.stop()
    await stack.subscriptions.start()
    await set_active(stack, tenant, created.subscription.id, True)
    await eventually(
        lambda: last_state(stack, tenant, created.subscription.id),
        lambda s: s.active,
        timeout=10,
        what="a change after the restart",
    )
    assert "outbox relay paused" not in stack.subscriptions.log_text()

    # The forged change was set aside by both projections of SUBSCRIPTIONS, not applied.
    await stack.publish([platform_event(victim, "Object", "OnNew")])
    await receiver.wait_for(1, "/target", timeout=30)
    await stack.wait_idle()
    assert receiver.at("/forger") == []
    for component in ("router-table", "sender-directory"):
        letter = await letter_where(
            stack,
            component,
            "invalid",
            lambda letter: letter.subject == subscription_subject(tenant, target.subscription.id),
        )
        assert "tenant" in letter.detail and letter.stream == SUBSCRIPTIONS
        await letter_where(stack, component, "undecodable", lambda letter: True)


async def test_a_poison_attempt_record_is_set_aside_and_the_next_failure_is_listed_within_a_second(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("poison")
    receiver.reply("/down", Reply(500, b"down"))
    created = await stack.create_subscription(tenant, rest("down", receiver.url("/down")))
    subject = attempts_subject(tenant, created.subscription.id)
    poison = messages_pb2.AttemptRecord(
        delivery_id=str(uuid.uuid4()),
        tenant=tenant,
        subscription_id=created.subscription.id,
        outcome=messages_pb2.ATTEMPT_OUTCOME_FAILED,
        attempt=1,
    )
    poison.started_at.seconds = 2**62
    await stack.js.publish(subject, poison.SerializeToString(), stream=ATTEMPTS)
    await stack.js.publish(subject, b"\xff\xff not a record", stream=ATTEMPTS)

    attempts = await stack.attempts(tenant)
    job = stack.job(created.subscription)
    await stack.put_job(job)
    await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
    recorded = time.monotonic()

    async def listed() -> list[str]:
        page = await stack.failures.ListFailedEvents(
            failures_pb2.ListFailedEventsRequest(),
            metadata=platform(tenant),
            timeout=RPC_TIMEOUT,
        )
        return [event.delivery_id for event in page.failed_events]

    found = await eventually(
        listed, lambda ids: job.delivery_id in ids, timeout=WITHIN, what="the next failure"
    )
    assert found == [job.delivery_id]  # the poison record is not a failed event
    assert time.monotonic() - recorded <= WITHIN + 0.3

    letter = await letter_where(
        stack, "failures-projector", "invalid", lambda letter: letter.subject == subject
    )
    assert letter.detail.startswith("started_at: out of range"), letter.detail
    assert letter.stream == ATTEMPTS and letter.stream_sequence > 0
    await letter_where(stack, "failures-projector", "undecodable", lambda letter: True)
    # The projector never restarted (a poison record once made it fail every second).
    assert stack.failures_process is not None
    assert "failures projector failed" not in stack.failures_process.log_text()


@SQLITE_ONLY
async def test_forged_jobs_are_set_aside_and_never_delivered(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    victim, forger = new_tenant("job-victim"), new_tenant("job-forger")
    target = await stack.create_subscription(victim, rest("target", receiver.url("/job-target")))
    job = stack.job(target.subscription)
    # The victim's job, published under the forger's subject.
    await stack.js.publish(
        delivery_job_subject(forger, target.subscription.id), job.SerializeToString()
    )
    await stack.wait_idle()
    assert receiver.at("/job-target") == [], "a forged job was delivered"
    letter = await letter_where(stack, "sender", "invalid", lambda letter: forger in letter.subject)
    assert letter.detail.startswith("tenant:"), letter.detail


@SQLITE_ONLY
async def test_dead_letters_are_for_platform_tokens_and_named_filters(
    stack: Platform, tmp_path: Path
) -> None:
    subject = "subscriptions.acme.subscription.listed"
    for n in range(3):
        await stack.js.publish(subject, b"\xff" + bytes([n]))
    letters = await eventually(
        lambda: dead_letters(stack, component="router-table"),
        lambda found: len(found) >= 3,
        timeout=20,
        what="three router-table letters",
    )
    sequences = [entry.sequence for entry in letters]
    assert sequences == sorted(sequences, reverse=True)  # newest first
    assert {entry.letter.component for entry in letters} == {"router-table"}
    page = await stack.failures.ListDeadLetters(
        failures_pb2.ListDeadLettersRequest(component="router-table", limit=2),
        metadata=platform("operators"),
        timeout=RPC_TIMEOUT,
    )
    assert [entry.sequence for entry in page.dead_letters] == sequences[:2]
    assert page.next_page_token
    older = await stack.failures.ListDeadLetters(
        failures_pb2.ListDeadLettersRequest(
            component="router-table", limit=2, page_token=page.next_page_token
        ),
        metadata=platform("operators"),
        timeout=RPC_TIMEOUT,
    )
    assert older.dead_letters[0].sequence == sequences[2]

    denied = await rpc_error(
        stack.failures.ListDeadLetters(
            failures_pb2.ListDeadLettersRequest(), metadata=bearer(TENANT_TOKEN)
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    for request, field in [
        (failures_pb2.ListDeadLettersRequest(component="nope"), "component"),
        (failures_pb2.ListDeadLettersRequest(reason="nope"), "reason"),
        (failures_pb2.ListDeadLettersRequest(limit=1001), "limit"),
        (failures_pb2.ListDeadLettersRequest(page_token="x"), "page_token"),
    ]:
        error = await rpc_error(
            stack.failures.ListDeadLetters(request, metadata=platform("operators"))
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert (error.details() or "").startswith(f"{field}: "), error.details()

    # The CLI: --json for scripts; a tenant token's refusal is one line and exit 1.
    assert stack.failures_process is not None
    env = {
        **stack.env,
        "WEBHOOKS_FAILURES_ADDR": f"127.0.0.1:{stack.failures_process.port}",
        "WEBHOOKS_DATA_DIR": str(tmp_path / "cli"),
    }

    def cli(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "webhooks_cli", "deadletters", "--token", token, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = await asyncio.to_thread(
        cli, PLATFORM_TOKEN, "--component", "router-table", "--limit", "2", "--json"
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [int(e["sequence"]) for e in listed["dead_letters"]] == sequences[:2]
    assert listed["dead_letters"][0]["letter"]["reason"] == "undecodable"
    table = await asyncio.to_thread(cli, PLATFORM_TOKEN, "--reason", "undecodable")
    assert table.returncode == 0 and "router-table" in table.stdout, table.stderr
    refused = await asyncio.to_thread(cli, TENANT_TOKEN, "--tenant", "")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "PERMISSION_DENIED" in refused.stderr
