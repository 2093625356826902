"""The failures service run for real, next to the real sender: ``webhooks serve
subscriptions``, ``serve sender`` and ``serve failures`` as separate processes on a
nats-server of this module (``tests.support.platform_stack``, without a router),
delivering to HTTPS receivers under a test CA in this process (the sender trusts it through
WEBHOOKS_CA_BUNDLE and admits loopback through WEBHOOKS_OUTBOUND_ALLOW, as an operator
would).

Subscriptions are made through the subscriptions API; jobs are put on DELIVERIES as the
router would; the sender's attempts reach the failures view through ATTEMPTS, and every
assertion is about what the FailuresService answers (and what the receivers got).
Tenants A and B have tokens of their own (cross-tenant tests); other tests use the
platform token with a tenant of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Metadata,
    Platform,
    bearer,
    new_tenant,
    platform,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply, TestPki
from tests.support.rpc import rpc_error
from tests.support.service_process import ServiceProcess
from tests.support.waiting import eventually
from webhooks.v1 import (
    failures_pb2,
    failures_pb2_grpc,
    messages_pb2,
    subscriptions_pb2,
)
from webhooks_grpc import field_violations

TENANT_A = f"fa-{uuid.uuid4().hex[:8]}"
TENANT_B = f"fb-{uuid.uuid4().hex[:8]}"
TOKEN_A = "failures-test-a-" + uuid.uuid4().hex
TOKEN_B = "failures-test-b-" + uuid.uuid4().hex
FS = failures_pb2
RETRYING, FAILED = FS.FAILED_EVENT_STATE_RETRYING, FS.FAILED_EVENT_STATE_FAILED
RECOVERED = FS.FAILED_EVENT_STATE_RECOVERED
REDELIVERY_REQUESTED = messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED
SUCCEEDED = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
ATTEMPT_FAILED = messages_pb2.ATTEMPT_OUTCOME_FAILED
T = TypeVar("T")
A, B = bearer(TOKEN_A), bearer(TOKEN_B)


@dataclass
class Stack:
    """A ``Platform`` (no router: jobs go straight onto DELIVERIES) with what these tests
    ask of it."""

    platform: Platform

    @property
    def pki(self) -> TestPki:
        return self.platform.pki

    @property
    def failures(self) -> ServiceProcess:
        assert self.platform.failures_process is not None
        return self.platform.failures_process

    @property
    def api(self) -> failures_pb2_grpc.FailuresServiceStub:
        return self.platform.failures

    async def create(
        self, metadata: Metadata, url: str, *, retries: int = 1, name: str = ""
    ) -> subscriptions_pb2.Subscription:
        spec = rest(name or f"failing hook {uuid.uuid4().hex[:6]}", url, retries=retries)
        # The tenant comes from the metadata (a tenant's token, or the platform token's
        # x-webhooks-tenant); the platform stack waits until it is on SUBSCRIPTIONS.
        created = await self.platform.create_subscription("", spec, metadata=metadata)
        return created.subscription

    async def send(self, subscription: subscriptions_pb2.Subscription) -> messages_pb2.DeliveryJob:
        """One job on DELIVERIES as the router makes it (stored when this returns)."""
        job = self.platform.job(subscription)
        await self.platform.put_job(job)
        return job

    async def list_all(
        self, metadata: Metadata, filter: failures_pb2.FailedEventFilter | None = None
    ) -> list[failures_pb2.FailedEvent]:
        request = failures_pb2.ListFailedEventsRequest(filter=filter, page_size=2)
        found: list[failures_pb2.FailedEvent] = []
        while True:
            page = await self.api.ListFailedEvents(request, metadata=metadata, timeout=RPC_TIMEOUT)
            found.extend(page.failed_events)
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token

    async def details(
        self, metadata: Metadata, delivery_id: str
    ) -> failures_pb2.FailedEventDetails:
        got: failures_pb2.FailedEventDetails = await self.api.GetFailedEvent(
            failures_pb2.GetFailedEventRequest(delivery_id=delivery_id),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        return got


TOKENS = (
    {"name": "tenant-a-admin", "token": TOKEN_A, "tenant": TENANT_A},
    {"name": "tenant-b-admin", "token": TOKEN_B, "tenant": TENANT_B},
)


@contextlib.asynccontextmanager
async def running_stack(tmp: Path, **settings: Any) -> AsyncIterator[Stack]:
    async with running_platform(tmp, routers=0, tokens=TOKENS, **settings) as running:
        yield Stack(running)


async def invalid_field(call: Awaitable[Any]) -> str:
    """The one field an INVALID_ARGUMENT names (in its BadRequest and its message)."""
    error = await rpc_error(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    violations = field_violations(error)
    assert len(violations) == 1, violations
    field = violations[0][0]
    assert (error.details() or "").startswith(f"{field}: ")
    return field


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("failures")) as running:
        yield running


@pytest.fixture
async def receiver(stack: Stack) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


# ---- the main flow, on SQLite (the module's stack) and PostgreSQL (a stack of its own)


async def fail_then_recover(stack: Stack, receiver: HttpsReceiver, metadata: Metadata) -> None:
    """A failing endpoint (500) with one retry → a FAILED event with its trial history;
    fixed, then redelivered by id → the same webhook-id arrives again and the event is
    RECOVERED, its history showing who asked and the manual attempt."""
    receiver.reply("/flaky", Reply(500, b"upstream exploded"))
    subscription = await stack.create(metadata, receiver.url("/flaky"), retries=1)
    job = await stack.send(subscription)

    listed = await eventually(
        lambda: stack.list_all(metadata),
        lambda events: any(e.delivery_id == job.delivery_id and e.state == FAILED for e in events),
        what="the failed event in state FAILED",
    )
    (event,) = [e for e in listed if e.delivery_id == job.delivery_id]
    assert event.subscription_id == subscription.id
    assert event.subscription_name == subscription.name
    assert (event.entity, event.trigger) == ("Object", "OnNew")
    assert event.HasField("channel") and (event.channel, event.subchannel) == (7, "sales")
    assert (event.error_code, event.status_code) == ("500", 500)
    assert event.failure_class == messages_pb2.FAILURE_CLASS_HTTP_STATUS
    assert event.retry_attempts == 1
    assert event.event_id == job.event_id
    assert event.tenant == subscription.tenant
    assert len(receiver.at("/flaky")) == 2

    details = await stack.details(metadata, job.delivery_id)
    assert details.overview == event
    assert details.payload == job.payload_json
    assert details.payload_content_type.startswith("application/json")
    history = list(details.trial_history)
    assert [(r.series, r.attempt, r.outcome) for r in history] == [
        (0, 1, ATTEMPT_FAILED),
        (0, 2, ATTEMPT_FAILED),
    ]
    assert all(r.status_code == 500 and r.duration_ms >= 0 for r in history)
    assert history[0].response_snippet == b"upstream exploded"
    assert history[0].will_retry and not history[1].will_retry

    counts = await stack.api.CountFailures(
        failures_pb2.CountFailuresRequest(subscription_ids=[subscription.id]),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    assert [(c.subscription_id, c.failed_attempts, c.failed_events) for c in counts.counts] == [
        (subscription.id, 2, 1)
    ]
    by_code = await stack.list_all(
        metadata,
        failures_pb2.FailedEventFilter(subscription_ids=[subscription.id], error_codes=["500"]),
    )
    assert [e.delivery_id for e in by_code] == [job.delivery_id]

    receiver.reply("/flaky", Reply(204))
    done = await stack.api.RedeliverFailedEvents(
        failures_pb2.RedeliverFailedEventsRequest(delivery_id=job.delivery_id),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    assert (done.matched, done.redelivered, list(done.delivery_ids)) == (1, 1, [job.delivery_id])
    await receiver.wait_for(3, "/flaky", timeout=20)
    again = receiver.at("/flaky")[2]
    assert again.headers["webhook-id"] == job.delivery_id
    assert again.body == job.payload_json

    recovered = await eventually(
        lambda: stack.details(metadata, job.delivery_id),
        lambda d: d.overview.state == RECOVERED,
        what="the event RECOVERED",
    )
    history = list(recovered.trial_history)
    assert [(r.series, r.attempt, r.outcome) for r in history] == [
        (0, 1, ATTEMPT_FAILED),
        (0, 2, ATTEMPT_FAILED),
        (1, 0, REDELIVERY_REQUESTED),
        (1, 1, SUCCEEDED),
    ]
    marker, manual = history[2], history[3]
    assert marker.manual and marker.requested_by
    assert manual.manual and manual.status_code == 204
    # The overview still says what went wrong; the state says it is over.
    assert recovered.overview.error_code == "500"
    only_failed = await stack.list_all(
        metadata,
        failures_pb2.FailedEventFilter(subscription_ids=[subscription.id], states=[FAILED]),
    )
    assert only_failed == []
    # Resolved, it no longer counts: the ⚠ of the Webhooks list is gone.
    assert await failure_counts(stack, metadata, [subscription.id]) == [(subscription.id, 0, 0)]
    assert subscription.id not in {s for s, _, _ in await failure_counts(stack, metadata, [])}


async def failure_counts(
    stack: Stack, metadata: Metadata, subscription_ids: list[str]
) -> list[tuple[str, int, int]]:
    """CountFailures as (subscription id, failed attempts, failed events)."""
    got = await stack.api.CountFailures(
        failures_pb2.CountFailuresRequest(subscription_ids=subscription_ids),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    return [(c.subscription_id, c.failed_attempts, c.failed_events) for c in got.counts]


async def test_a_failing_endpoint_fails_then_a_redelivery_recovers_it(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    await fail_then_recover(stack, receiver, A)


@pytest.mark.postgres
async def test_the_same_on_postgresql(
    tmp_path: Path, postgres_url: str, postgres_schema: Callable[[str], str]
) -> None:
    async with (
        running_stack(
            tmp_path,
            store="postgres",
            postgres_url=postgres_url,
            postgres_schema=postgres_schema("failures"),
        ) as pg_stack,
        HttpsReceiver(pg_stack.pki) as pg_receiver,
    ):
        await fail_then_recover(pg_stack, pg_receiver, platform(new_tenant("pg")))
        assert "failures" in pg_stack.failures.log_text()


# ---- redelivery by filter


async def test_redelivery_by_filter_dry_run_counts_and_sends_nothing(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    metadata = platform(new_tenant("bulk"))
    receiver.reply("/down", Reply(503, b"maintenance"))
    failing = await stack.create(metadata, receiver.url("/down"), retries=0)
    other = await stack.create(metadata, receiver.url("/other-down"), retries=0)
    receiver.reply("/other-down", Reply(503))
    jobs = [await stack.send(failing) for _ in range(3)]
    await stack.send(other)
    await eventually(
        lambda: stack.list_all(metadata),
        lambda events: sum(e.state == FAILED for e in events) == 4,
        what="four FAILED events",
    )
    wanted = failures_pb2.FailedEventFilter(subscription_ids=[failing.id])

    dry = await stack.api.RedeliverFailedEvents(
        failures_pb2.RedeliverFailedEventsRequest(filter=wanted, dry_run=True),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    assert (dry.matched, dry.redelivered, list(dry.delivery_ids)) == (3, 0, [])
    await asyncio.sleep(2)  # what a published job would take to arrive, several times over
    assert len(receiver.at("/down")) == 3
    after_dry = await stack.list_all(metadata, wanted)
    assert {e.state for e in after_dry} == {FAILED}
    for job in jobs:
        details = await stack.details(metadata, job.delivery_id)
        assert [r.series for r in details.trial_history] == [0]

    sent = await stack.api.RedeliverFailedEvents(
        failures_pb2.RedeliverFailedEventsRequest(filter=wanted),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    assert (sent.matched, sent.redelivered) == (3, 3)
    assert sorted(sent.delivery_ids) == sorted(j.delivery_id for j in jobs)
    await receiver.wait_for(6, "/down", timeout=20)
    assert len(receiver.at("/other-down")) == 1
    assert sorted(r.headers["webhook-id"] for r in receiver.at("/down")[3:]) == sorted(
        j.delivery_id for j in jobs
    )
    # Still failing: each is FAILED again, with a second series in its history.
    for job in jobs:
        details = await eventually(
            lambda job=job: stack.details(metadata, job.delivery_id),  # type: ignore[misc]
            lambda d: (
                [(r.series, r.attempt) for r in d.trial_history] == [(0, 1), (1, 0), (1, 1)]
                and d.overview.state == FAILED
            ),
            what="the manual attempt recorded",
        )
        assert details.trial_history[2].manual
        assert details.overview.retry_attempts == 1
    # All three are FAILED again: a redelivery by the same filter would send them again.
    counted = await stack.api.RedeliverFailedEvents(
        failures_pb2.RedeliverFailedEventsRequest(filter=wanted, dry_run=True),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    assert counted.matched == 3


async def test_the_counts_are_of_unresolved_failures_and_drop_to_zero_once_all_recover(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    """Failed deliveries count (events and their failed attempts) until a redelivery to
    the fixed endpoint recovers them; a recovery lowers the count, the last one ends it."""
    metadata = platform(new_tenant("recover"))
    receiver.reply("/broken", Reply(500, b"broken"))
    subscription = await stack.create(metadata, receiver.url("/broken"), retries=1)
    jobs = [await stack.send(subscription) for _ in range(3)]
    await eventually(
        lambda: stack.list_all(metadata),
        lambda events: sum(e.state == FAILED for e in events) == 3,
        what="three FAILED events",
    )
    assert await failure_counts(stack, metadata, [subscription.id]) == [(subscription.id, 6, 3)]
    assert await failure_counts(stack, metadata, []) == [(subscription.id, 6, 3)]

    receiver.reply("/broken", Reply(204))

    async def redeliver(delivery_id: str) -> None:
        sent = await stack.api.RedeliverFailedEvents(
            failures_pb2.RedeliverFailedEventsRequest(delivery_id=delivery_id),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        assert sent.redelivered == 1
        await eventually(
            lambda: stack.details(metadata, delivery_id),
            lambda d: d.overview.state == RECOVERED,
            what="the redelivered event RECOVERED",
        )

    await redeliver(jobs[0].delivery_id)
    assert await failure_counts(stack, metadata, [subscription.id]) == [(subscription.id, 4, 2)]
    for job in jobs[1:]:
        await redeliver(job.delivery_id)
    assert await failure_counts(stack, metadata, [subscription.id]) == [(subscription.id, 0, 0)]
    assert await failure_counts(stack, metadata, []) == []
    # The failed events stay listed, RECOVERED, with what went wrong.
    listed = await stack.list_all(metadata)
    assert sorted(e.delivery_id for e in listed) == sorted(j.delivery_id for j in jobs)
    assert {e.state for e in listed} == {RECOVERED}


# ---- tenancy


async def test_another_tenant_sees_counts_and_redelivers_nothing_of_it(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    receiver.reply("/a-only", Reply(500))
    subscription = await stack.create(A, receiver.url("/a-only"), retries=0)
    job = await stack.send(subscription)
    await eventually(
        lambda: stack.list_all(A),
        lambda events: any(e.delivery_id == job.delivery_id for e in events),
        what="tenant A's failed event",
    )

    for metadata in (B, platform(TENANT_B)):
        assert await stack.list_all(metadata) == []
        assert (
            await stack.list_all(
                metadata, failures_pb2.FailedEventFilter(subscription_ids=[subscription.id])
            )
            == []
        )
        missing = await rpc_error(stack.details(metadata, job.delivery_id))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        counts = await stack.api.CountFailures(
            failures_pb2.CountFailuresRequest(subscription_ids=[subscription.id]),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        assert all(c.failed_attempts == 0 and c.failed_events == 0 for c in counts.counts)
        everything = await stack.api.CountFailures(
            failures_pb2.CountFailuresRequest(), metadata=metadata, timeout=RPC_TIMEOUT
        )
        assert all(c.subscription_id != subscription.id for c in everything.counts)
        refused = await rpc_error(
            stack.api.RedeliverFailedEvents(
                failures_pb2.RedeliverFailedEventsRequest(delivery_id=job.delivery_id),
                metadata=metadata,
                timeout=RPC_TIMEOUT,
            )
        )
        assert refused.code() == grpc.StatusCode.NOT_FOUND
        by_filter = await stack.api.RedeliverFailedEvents(
            failures_pb2.RedeliverFailedEventsRequest(
                filter=failures_pb2.FailedEventFilter(subscription_ids=[subscription.id])
            ),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        assert (by_filter.matched, by_filter.redelivered) == (0, 0)
        everything_failed = await stack.api.RedeliverFailedEvents(
            failures_pb2.RedeliverFailedEventsRequest(
                filter=failures_pb2.FailedEventFilter(states=[FAILED])
            ),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        assert job.delivery_id not in everything_failed.delivery_ids
    await asyncio.sleep(1)
    assert len(receiver.at("/a-only")) == 1
    # The owner still sees it, untouched.
    details = await stack.details(A, job.delivery_id)
    assert details.overview.state == FAILED and len(details.trial_history) == 1


async def test_rebuild_needs_a_platform_token_and_gives_the_same_view(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    metadata = platform(new_tenant("rebuild"))
    receiver.reply("/rebuild", Reply(502, b"bad gateway"))
    subscription = await stack.create(metadata, receiver.url("/rebuild"), retries=0)
    jobs = [await stack.send(subscription) for _ in range(3)]
    before = await eventually(
        lambda: stack.list_all(metadata),
        lambda events: len(events) == len(jobs),
        what="three failed events",
    )
    histories = [await stack.details(metadata, j.delivery_id) for j in jobs]

    for tenant_token in (A, B):
        denied = await rpc_error(
            stack.api.RebuildReadModel(
                failures_pb2.RebuildReadModelRequest(), metadata=tenant_token, timeout=RPC_TIMEOUT
            )
        )
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    rebuilt = await stack.api.RebuildReadModel(
        failures_pb2.RebuildReadModelRequest(), metadata=metadata, timeout=120
    )
    assert rebuilt.applied_attempts >= len(jobs)
    assert rebuilt.failed_events >= len(jobs)
    assert await stack.list_all(metadata) == before
    assert [await stack.details(metadata, j.delivery_id) for j in jobs] == histories
    # The projector follows ATTEMPTS again after the swap.
    late = await stack.send(subscription)
    await eventually(
        lambda: stack.list_all(metadata),
        lambda events: late.delivery_id in {e.delivery_id for e in events},
        what="a failure after the rebuild",
    )


# ---- validation


async def test_bad_filters_name_the_field(stack: Stack) -> None:
    def listing(
        page_size: int = 0, page_token: str = "", **fields: Any
    ) -> Awaitable[failures_pb2.ListFailedEventsResponse]:
        request = failures_pb2.ListFailedEventsRequest(
            filter=failures_pb2.FailedEventFilter(**fields),
            page_size=page_size,
            page_token=page_token,
        )
        return stack.api.ListFailedEvents(request, metadata=A, timeout=RPC_TIMEOUT)  # type: ignore[no-any-return]

    now = datetime.now(UTC).replace(microsecond=0)
    since, until = (stamp(now), stamp(now - timedelta(hours=1)))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"states": [99]}, "filter.states"),
        ({"since": since, "until": until}, "filter.until"),
        ({"since": since, "until": since}, "filter.until"),
        ({"error_codes": ["abc"]}, "filter.error_codes"),
        ({"error_codes": ["700"]}, "filter.error_codes"),
        ({"error_codes": ["http_status"]}, "filter.error_codes"),
        ({"channel": 999}, "filter.channel"),
        ({"entity": "Spaceship"}, "filter.entity"),
        ({"entity": "Object", "trigger": "OnLaunch"}, "filter.trigger"),
        ({"subscription_ids": [f"s{i}" for i in range(1001)]}, "filter.subscription_ids"),
        ({"message_contains": "x" * 1000}, "filter.message_contains"),
        ({"min_retry_attempts": -1}, "filter.min_retry_attempts"),
        ({"page_size": 501}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "not-a-token"}, "page_token"),
    ]
    for fields, field in cases:
        assert await invalid_field(listing(**fields)) == field, fields

    # The same rules on a redelivery's filter, and a target is required.
    redeliver = stack.api.RedeliverFailedEvents
    bad = failures_pb2.RedeliverFailedEventsRequest(
        filter=failures_pb2.FailedEventFilter(states=[42]),  # type: ignore[list-item]
        dry_run=True,
    )
    assert await invalid_field(redeliver(bad, metadata=A, timeout=RPC_TIMEOUT)) == "filter.states"
    inverted = failures_pb2.RedeliverFailedEventsRequest(
        filter=failures_pb2.FailedEventFilter(since=since, until=until)
    )
    assert await invalid_field(redeliver(inverted, metadata=A, timeout=RPC_TIMEOUT)) == (
        "filter.until"
    )
    blank = failures_pb2.RedeliverFailedEventsRequest(delivery_id="")
    assert await invalid_field(redeliver(blank, metadata=A, timeout=RPC_TIMEOUT)) == "delivery_id"
    none = failures_pb2.RedeliverFailedEventsRequest()
    assert await invalid_field(redeliver(none, metadata=A, timeout=RPC_TIMEOUT)) == "target"
    empty = failures_pb2.GetFailedEventRequest()
    assert await invalid_field(
        stack.api.GetFailedEvent(empty, metadata=A, timeout=RPC_TIMEOUT)
    ) == ("delivery_id")
    too_many = failures_pb2.CountFailuresRequest(subscription_ids=[f"s{i}" for i in range(1001)])
    assert await invalid_field(
        stack.api.CountFailures(too_many, metadata=A, timeout=RPC_TIMEOUT)
    ) == ("subscription_ids")

    # Accepted: case-insensitive names, failure classes, every state.
    fine = await listing(
        entity="object",
        trigger="onnew",
        error_codes=["503", "Timeout"],
        states=[RETRYING, FAILED, RECOVERED],
        page_size=500,
    )
    assert isinstance(fine, failures_pb2.ListFailedEventsResponse)


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result
