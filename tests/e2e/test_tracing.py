"""Tracing across the whole platform: every service a separate process (as compose runs
them) exporting over OTLP/gRPC to a receiver started by this test (``OtlpReceiver``).

One event published through PublishEvents to a subscription whose endpoint fails once and
then succeeds (one retry, 1 s apart) is one trace::

    router    SERVER   /webhooks.v1.RouterService/PublishEvents      (root: the caller sent none)
    router    INTERNAL   route event
    router    PRODUCER     publish DELIVERIES
    sender    CLIENT         POST   http.response.status_code 500
    failures  CONSUMER         apply attempt   FAILED
    sender    CLIENT         POST   200, linked to the POST before
    failures  CONSUMER         apply attempt   SUCCEEDED

joined across NATS (EVENTS, DELIVERIES, the retry's schedule, ATTEMPTS) by the W3C trace
context. No string any process exported (span names, attributes, events, links, status,
resources) contains a secret of the test: the Basic password, an OAuth client secret or
access token, the signing secrets, the secret key, the platform token.

With ``parentbased_traceidratio`` at 0 the same flow exports no span at all, while an event
whose caller sent a sampled ``traceparent`` is still traced end to end (every service
follows the caller's decision).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.platform_stack import (
    FAILED,
    PLATFORM_TOKEN,
    SUCCEEDED,
    Platform,
    new_tenant,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.token_server import TokenServer
from webhooks.v1 import common_pb2, failures_pb2, messages_pb2, router_pb2

pytestmark = pytest.mark.timeout(120)

PUBLISH_EVENTS = "/webhooks.v1.RouterService/PublishEvents"
CREATE_SUBSCRIPTION = "/webhooks.v1.SubscriptionService/CreateSubscription"
RELAY = "publish SUBSCRIPTIONS"
ROUTE = "route event"
PUBLISH_JOB = "publish DELIVERIES"
ATTEMPT = "POST"
APPLY = "apply attempt"
ROUTER, SENDER, FAILURES = "webhooks-router", "webhooks-sender", "webhooks-failures"
SUBSCRIPTIONS = "webhooks-subscriptions"
WAIT = 30.0

BASIC_USER = "hook-user"
BASIC_PASSWORD = "basic-pw-" + secrets.token_hex(12)
CLIENT_ID = "tracing-client"
CLIENT_SECRET = "client-secret-" + secrets.token_hex(12)


def fails_once() -> Callable[[Received], Reply]:
    """500 to the first request, 200 to every later one."""
    answered = 0

    def answer(_: Received) -> Reply:
        nonlocal answered
        answered += 1
        return Reply(500, b"not yet") if answered == 1 else Reply(200, b"ok")

    return answer


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name == name]


def one(spans: list[ReceivedSpan], name: str, service: str) -> ReceivedSpan:
    found = [span for span in spans if span.name == name and span.service == service]
    assert len(found) == 1, f"{len(found)} {service} spans {name!r}: {found}"
    return found[0]


def tree(spans: list[ReceivedSpan]) -> str:
    """The trace drawn as an indented tree (for failure messages)."""
    children: dict[str, list[ReceivedSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_ns):
        children.setdefault(span.parent_span_id, []).append(span)
    ids = {span.span_id for span in spans}
    lines: list[str] = []

    def draw(span: ReceivedSpan, depth: int) -> None:
        lines.append("  " * depth + span.describe())
        for child in children.get(span.span_id, []):
            draw(child, depth + 1)

    for span in sorted(spans, key=lambda s: s.start_ns):
        if span.parent_span_id not in ids:
            draw(span, 0)
    return "\n".join(lines)


async def publish_traced_flow(
    p: Platform, receiver: HttpsReceiver, tenant: str, traceparent: str | None = None
) -> tuple[str, str, str]:
    """A subscription (Basic authentication, one retry after 1 s) whose endpoint fails once,
    one event for it (with ``traceparent`` in the call's metadata when given); returns the
    event id, the signing secret and the delivery id, once both attempts are on ATTEMPTS."""
    path = f"/traced/{uuid.uuid4().hex[:8]}"
    receiver.reply(path, fails_once())
    basic = common_pb2.Authentication(
        basic=common_pb2.BasicAuth(username=BASIC_USER, password=BASIC_PASSWORD)
    )
    created = await p.create_subscription(
        tenant,
        rest(f"traced {path}", receiver.url(path), retries=1, interval=1, authentication=basic),
    )
    attempts = await p.attempts(tenant)
    event = platform_event(tenant, "Object", "OnNew")
    metadata = platform(tenant)
    if traceparent is not None:
        metadata = (*metadata, ("traceparent", traceparent))
    (result,) = await p.publish([event], metadata=metadata)
    assert result.status == router_pb2.PUBLISH_STATUS_ACCEPTED

    def mine() -> list[messages_pb2.AttemptRecord]:
        return [r for r in attempts.records if r.subscription_id == created.subscription.id]

    def both_attempts() -> bool:
        return [r.outcome for r in mine()] == [FAILED, SUCCEEDED]

    await attempts.wait(both_attempts, WAIT, "a failed attempt and a successful retry")
    # Read-your-writes: answered once the failures view has applied both.
    await p.failures.CountFailures(
        failures_pb2.CountFailuresRequest(), metadata=platform(tenant), timeout=WAIT
    )
    (first, second) = receiver.at(path)
    assert first.headers["authorization"] == second.headers["authorization"]
    return event.event_id, created.signing_secret, mine()[0].delivery_id


async def test_one_event_is_one_trace_across_router_sender_and_failures(
    otlp: OtlpReceiver, tmp_path: Path
) -> None:
    tenant = new_tenant("traced")
    async with (
        running_platform(tmp_path, env=otlp.environment("always_on")) as p,
        HttpsReceiver(p.pki) as receiver,
        TokenServer(p.pki, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as tokens,
    ):
        event_id, signing_secret, delivery_id = await publish_traced_flow(p, receiver, tenant)

        # A second subscription on OAuth 2.0 client credentials, so an issued token and
        # the client secret have been through the sender too.
        receiver.reply("/oauth", tokens.protected())
        oauth = common_pb2.Authentication(
            oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
                token_url=tokens.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
            )
        )
        other = await p.create_subscription(
            tenant,
            rest(
                "oauth",
                receiver.url("/oauth"),
                authentication=oauth,
                entity="Tag",
                triggers=[common_pb2.TriggerSpec(trigger="OnAdd")],
            ),
        )
        await p.publish([platform_event(tenant, "Tag", "OnAdd")])
        await receiver.wait_for(1, "/oauth", timeout=WAIT)
        assert receiver.at("/oauth")[0].headers["authorization"] == f"Bearer {tokens.issued[0]}"

        def whole_trace(spans: list[ReceivedSpan]) -> bool:
            routed = [
                s
                for s in spans
                if s.name == ROUTE and s.attributes["webhooks.event_id"] == event_id
            ]
            if not routed:
                return False
            trace = [s for s in spans if s.trace_id == routed[0].trace_id]
            return len(by_name(trace, ATTEMPT)) >= 2 and len(by_name(trace, APPLY)) >= 2

        await asyncio.to_thread(otlp.wait_for, whole_trace, WAIT, "the event's whole trace")
        secret_key = p.env["WEBHOOKS_SECRET_KEYS"]
    # Every process stopped (SIGTERM): what they flushed at shutdown has arrived too.

    everything = otlp.spans
    (routed,) = [
        s for s in by_name(everything, ROUTE) if s.attributes["webhooks.event_id"] == event_id
    ]
    trace = otlp.in_trace(routed.trace_id)
    drawn = tree(trace)

    # -- the shape: one root, every other span's parent in the trace
    ids = {span.span_id for span in trace}
    assert len(ids) == len(trace), f"a span exported twice:\n{drawn}"
    roots = [span for span in trace if span.parent_span_id not in ids]
    assert len(roots) == 1, f"more than one root:\n{drawn}"
    (root,) = roots
    assert root.parent_span_id == "", drawn
    assert {span.service for span in trace} == {ROUTER, SENDER, FAILURES}, drawn

    # -- router: the gRPC server span, the routing span under it, the job's publish span
    assert (root.service, root.kind, root.name) == (ROUTER, "SERVER", PUBLISH_EVENTS), drawn
    assert root.attributes["rpc.method"] == "PublishEvents"
    assert routed.service == ROUTER and routed.parent_span_id == root.span_id, drawn
    assert routed.attributes["webhooks.jobs"] == 1
    published = one(trace, PUBLISH_JOB, ROUTER)
    assert published.kind == "PRODUCER" and published.parent_span_id == routed.span_id, drawn
    assert published.attributes["webhooks.delivery_id"] == delivery_id

    # -- sender: one CLIENT span per attempt, both under the job's publish span (joined
    # across DELIVERIES and the retry's schedule); the retry links to the first attempt
    posts = sorted(by_name(trace, ATTEMPT), key=lambda s: s.start_ns)
    assert len(posts) == 2, drawn
    failed, retried = posts
    for post in posts:
        assert (post.service, post.kind) == (SENDER, "CLIENT"), drawn
        assert post.parent_span_id == published.span_id, drawn
        assert post.attributes["http.request.method"] == "POST"
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.status == "ERROR" and failed.attributes["error.type"] == "http_status"
    assert failed.links == ()
    assert retried.attributes["http.response.status_code"] == 200
    assert retried.status == "UNSET" and "error.type" not in retried.attributes
    (link,) = retried.links
    assert (link.trace_id, link.span_id) == (failed.trace_id, failed.span_id), drawn

    # -- failures: each attempt applied to the view under the attempt's span
    applied = by_name(trace, APPLY)
    assert len(applied) == 2, drawn
    under = {span.parent_span_id: span for span in applied}
    assert set(under) == {failed.span_id, retried.span_id}, drawn
    for post, outcome, number in ((failed, "FAILED", 1), (retried, "SUCCEEDED", 2)):
        span = under[post.span_id]
        assert (span.service, span.kind) == (FAILURES, "CONSUMER"), drawn
        assert span.attributes["webhooks.delivery_id"] == delivery_id
        assert span.attributes["webhooks.attempt"] == number
        assert span.attributes["webhooks.outcome"] == f"ATTEMPT_OUTCOME_{outcome}"
    assert len(trace) == 7, drawn

    # -- the subscriptions' outbox relay publishes under the creation's trace
    created = by_name(everything, CREATE_SUBSCRIPTION)
    relayed = by_name(everything, RELAY)
    assert len(created) == len(relayed) == 2
    assert {(s.trace_id, s.span_id) for s in created} == {
        (s.trace_id, s.parent_span_id) for s in relayed
    }
    assert {s.service for s in created + relayed} == {SUBSCRIPTIONS}

    # -- no secret in anything any process exported
    basic = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    assert tokens.issued, "no access token was issued"
    secrets_used = {
        "Basic password": BASIC_PASSWORD,
        "Basic credentials": basic,
        "OAuth client secret": CLIENT_SECRET,
        "platform token": PLATFORM_TOKEN,
        "signing secret": signing_secret,
        "signing secret (key part)": signing_secret.removeprefix("whsec_"),
        "other signing secret": other.signing_secret,
        **{f"access token {i}": token for i, token in enumerate(tokens.issued)},
        **{f"secret key {i}": key for i, key in enumerate(secret_key.split(","))},
    }
    assert all(len(secret) >= 16 for secret in secrets_used.values()), secrets_used
    said = [(span, text) for span in everything for text in span.said()]
    # The scan reads attribute values: the delivery id is there, as an attribute.
    assert any(delivery_id in text for _, text in said)
    leaks = [
        f"{what} in {span.describe()}: {text!r}"
        for span, text in said
        for what, secret in secrets_used.items()
        if secret in text
    ]
    assert not leaks, "\n".join(leaks)


async def test_a_zero_ratio_exports_nothing_but_follows_a_sampled_caller(
    otlp: OtlpReceiver, tmp_path: Path
) -> None:
    # Exported only when the processes flush at shutdown: no schedule comes first.
    environment = otlp.environment("parentbased_traceidratio", "0", schedule_delay_ms=600_000)
    async with running_platform(tmp_path, env=environment) as p, HttpsReceiver(p.pki) as receiver:
        await publish_traced_flow(p, receiver, new_tenant("unsampled"))

        # A caller that sampled its trace: every service follows its decision. (Another
        # tenant: the event matches only its own subscription.)
        trace_id = secrets.token_hex(16)
        caller_span = secrets.token_hex(8)
        event_id, _, _ = await publish_traced_flow(
            p, receiver, new_tenant("sampled"), traceparent=f"00-{trace_id}-{caller_span}-01"
        )
        assert otlp.spans == [], "exported before the shutdown"
        processes = p.processes
    for process in processes:
        assert "trace sampler ParentBased{root:TraceIdRatioBased{0.0}" in process.log_text()

    # Every process flushed what it held at its shutdown: the caller's whole trace.
    followed = otlp.in_trace(trace_id)
    drawn = tree(followed)
    assert {s.service for s in followed} == {ROUTER, SENDER, FAILURES}, drawn
    assert sorted(s.name for s in followed) == sorted(
        [PUBLISH_EVENTS, ROUTE, PUBLISH_JOB, ATTEMPT, ATTEMPT, APPLY, APPLY]
    ), drawn
    ids = {s.span_id for s in followed}
    (root,) = [s for s in followed if s.parent_span_id not in ids]
    assert (root.name, root.parent_span_id) == (PUBLISH_EVENTS, caller_span), drawn
    (routed,) = by_name(followed, ROUTE)
    assert routed.attributes["webhooks.event_id"] == event_id
    # Nothing else was exported: not the other event's routing, delivery or projection,
    # nor the subscriptions' creation.
    others = [span.describe() for span in otlp.spans if span.trace_id != trace_id]
    assert not others, "\n".join(others)
