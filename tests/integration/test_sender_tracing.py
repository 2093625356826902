"""The span of one delivery attempt, in process: the real Deliverer (guarded aiohttp
transport trusting a test CA, SOAP envelopes, credentials) against an HTTPS receiver.

The spans go to an in-memory exporter of a tracer provider of this test: the Deliverer's
module tracer is pointed at that provider, so the test sees exactly its spans whatever
global provider other tests of the session installed (the first ``setup_tracing`` of a
process makes its provider the global one, and other tests rely on which that is).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode, get_current_span

from tests.support.ports import free_port
from tests.support.receivers import HttpsReceiver, Reply, TestPki
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_sender import delivery
from webhooks_sender.credentials import Credentials
from webhooks_sender.delivery import AttemptResult, Deliverer
from webhooks_sender.directory import Endpoint
from webhooks_sender.guard import OutboundGuard
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.transport import Outbound
from webhooks_telemetry import extract_context

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROUTING_SPAN = "00f067aa0ba902b7"  # the router's span the job was made under
PREVIOUS_ATTEMPT_SPAN = "b7ad6b7169203331"
PASSWORD = "pw-" + secrets.token_hex(8)
TOKEN = "tok-" + secrets.token_hex(8)
QUERY_SECRET = "qs-" + secrets.token_hex(8)
USERINFO_SECRET = "ui-" + secrets.token_hex(8)
SIGNING_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("tracing-pki"))


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(delivery, "tracer", provider.get_tracer("webhooks.sender"))
    yield spans
    provider.shutdown()


@pytest.fixture
async def deliverer(pki: TestPki) -> AsyncIterator[Deliverer]:
    guard = OutboundGuard(allow=("127.0.0.0/8",))
    async with Outbound(guard, ca_bundle=pki.ca_file, timeout=TIMEOUT, limit=16) as outbound:

        async def fetch(url: str) -> bytes:
            return await outbound.get(url, max_bytes=1024 * 1024)

        yield Deliverer(
            outbound, SoapEnvelopes(fetch), Credentials(outbound.httpx_client), timeout=TIMEOUT
        )


@pytest.fixture
async def receiver(pki: TestPki) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(pki) as running:
        yield running


def endpoint(url: str, authentication: common_pb2.Authentication | None = None) -> Endpoint:
    state = messages_pb2.SubscriptionState(
        id=str(uuid.uuid4()),
        tenant="acme",
        name="traced hook",
        entity="Object",
        webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST, url=url),
        active=True,
        version=3,
    )
    return Endpoint(
        subscription=state,
        authentication=authentication or common_pb2.Authentication(),
        signing_secrets=(SIGNING_SECRET,),
        client_certificate=None,
        origin="https://127.0.0.1",
    )


def job(subscription_id: str) -> messages_pb2.DeliveryJob:
    """The second attempt of a delivery, made under the router's span."""
    return messages_pb2.DeliveryJob(
        job_id=f"ev-1:{subscription_id}",
        delivery_id=str(uuid.uuid4()),
        event_id="ev-1",
        tenant="acme",
        subscription_id=subscription_id,
        subscription_version=3,
        payload_json=b'{"Event":{"Name":"OnNew"}}',
        attempt=2,
        trace_context={"traceparent": f"00-{TRACE_ID}-{ROUTING_SPAN}-01"},
    )


async def attempt(
    deliverer: Deliverer, exporter: InMemorySpanExporter, target: Endpoint
) -> tuple[AttemptResult, ReadableSpan]:
    """One attempt as the consumer makes it: parent from the job, link to the attempt
    before (the traceparent a retry carries); returns the result and its one span."""
    made = job(target.subscription.id)
    previous = {"traceparent": f"00-{TRACE_ID}-{PREVIOUS_ATTEMPT_SPAN}-01"}
    link = Link(get_current_span(extract_context(previous)).get_span_context())
    exporter.clear()
    result = await deliverer.attempt(
        target, made, parent=extract_context(dict(made.trace_context)), links=[link]
    )
    (span,) = exporter.get_finished_spans()
    return result, span


def everything_said(span: ReadableSpan) -> str:
    """Every string the span carries: name, attributes, status, events, links."""
    said = [span.name, str(dict(span.attributes or {})), span.status.description or ""]
    said += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    said += [str(dict(link.attributes or {})) for link in span.links]
    return "\n".join(said)


def assert_under_the_job_and_linked(span: ReadableSpan) -> None:
    assert span.name == "POST"
    assert span.kind == SpanKind.CLIENT
    assert span.context is not None and span.parent is not None
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == ROUTING_SPAN
    assert span.parent.trace_id == span.context.trace_id
    (link,) = span.links
    assert f"{link.context.trace_id:032x}" == TRACE_ID
    assert f"{link.context.span_id:016x}" == PREVIOUS_ATTEMPT_SPAN


async def test_a_delivered_attempt_is_a_client_span_under_the_job_linked_to_the_last(
    deliverer: Deliverer, exporter: InMemorySpanExporter, receiver: HttpsReceiver
) -> None:
    auth = common_pb2.Authentication(
        basic=common_pb2.BasicAuth(username="hook-user", password=PASSWORD)
    )
    target = endpoint(receiver.url(f"/traced?code={QUERY_SECRET}"), auth)
    result, span = await attempt(deliverer, exporter, target)

    assert result.succeeded
    assert_under_the_job_and_linked(span)
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["url.full"] == receiver.url("/traced")
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == receiver.port
    assert span.attributes["http.response.status_code"] == 204
    assert "error.type" not in span.attributes
    assert span.status.status_code == StatusCode.UNSET

    # The request carried this span as its trace context; the retry would link to it.
    assert span.context is not None
    traceparent = f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
    (got,) = receiver.at("/traced")
    assert got.headers["traceparent"] == traceparent
    assert result.span_context["traceparent"] == traceparent
    # What was sent had the secrets; the span has none of them.
    assert got.query == f"code={QUERY_SECRET}"
    assert got.headers["authorization"].startswith("Basic ")
    said = everything_said(span)
    basic = base64.b64encode(f"hook-user:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, QUERY_SECRET, SIGNING_SECRET, SIGNING_SECRET[6:]):
        assert secret not in said


async def test_a_refused_attempt_has_the_status_code_and_error_type(
    deliverer: Deliverer, exporter: InMemorySpanExporter, receiver: HttpsReceiver
) -> None:
    receiver.reply("/refuses", Reply(500, b"nope"))
    auth = common_pb2.Authentication(
        oauth2_access_token=common_pb2.OAuth2AccessToken(header_prefix="Bearer", access_token=TOKEN)
    )
    result, span = await attempt(deliverer, exporter, endpoint(receiver.url("/refuses"), auth))

    assert not result.succeeded and result.status_code == 500
    assert_under_the_job_and_linked(span)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "http_status"
    assert span.status.status_code == StatusCode.ERROR
    (got,) = receiver.at("/refuses")
    assert got.headers["authorization"] == f"Bearer {TOKEN}"
    said = everything_said(span)
    for secret in (TOKEN, SIGNING_SECRET, SIGNING_SECRET[6:]):
        assert secret not in said


async def test_an_attempt_without_a_response_has_the_failure_class_and_no_status(
    deliverer: Deliverer, exporter: InMemorySpanExporter
) -> None:
    port = free_port()  # nothing listens there
    url = f"https://hook-user:{USERINFO_SECRET}@127.0.0.1:{port}/down?code={QUERY_SECRET}"
    result, span = await attempt(deliverer, exporter, endpoint(url))

    assert not result.succeeded
    assert_under_the_job_and_linked(span)
    assert span.attributes is not None
    assert span.attributes["url.full"] == f"https://127.0.0.1:{port}/down"
    assert span.attributes["server.port"] == port
    assert span.attributes["error.type"] == "connect"
    assert "http.response.status_code" not in span.attributes
    assert span.status.status_code == StatusCode.ERROR
    said = everything_said(span)
    for secret in (USERINFO_SECRET, QUERY_SECRET, SIGNING_SECRET, SIGNING_SECRET[6:]):
        assert secret not in said
