"""An attempt whose job's trace is not sampled makes no span: the sampler would drop it.

The request and the attempt record then carry the job's own trace context (sampled flag
off), so the W3C context still travels; with a sampled parent, or a sampler that does not
follow the parent, the span is made as before.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_sender import delivery
from webhooks_sender.credentials import Credentials
from webhooks_sender.delivery import Deliverer, propagated
from webhooks_sender.directory import Endpoint
from webhooks_sender.job_tracing import parent_context, unsampled_headers
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.transport import HttpResponse
from webhooks_telemetry import extract_context, inject_headers

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class FakeOutbound:
    """Records the headers of every POST and answers 204."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, str]] = []

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], **_: Any
    ) -> HttpResponse:
        self.sent.append(dict(headers))
        return HttpResponse(status=204, headers={}, body=b"", duration_ms=1)


def no_http() -> httpx.AsyncClient:
    raise AssertionError("no token requests here")


async def no_fetch(url: str) -> bytes:
    raise AssertionError("no WSDL here")


@pytest.fixture
def outbound() -> FakeOutbound:
    return FakeOutbound()


@pytest.fixture
def deliverer(outbound: FakeOutbound) -> Deliverer:
    return Deliverer(outbound, SoapEnvelopes(no_fetch), Credentials(no_http), timeout=5.0)  # type: ignore[arg-type]


class Tracing:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.spans = InMemorySpanExporter()
        self.started = 0

    def use(self, sampler: Sampler) -> None:
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        tracer = provider.get_tracer("webhooks.sender")
        start_span = tracer.start_span

        def counted(*args: Any, **kwargs: Any) -> trace.Span:
            self.started += 1
            return start_span(*args, **kwargs)

        self._monkeypatch.setattr(tracer, "start_span", counted)
        self._monkeypatch.setattr(delivery, "tracer", tracer)


@pytest.fixture
def tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracing]:
    yield Tracing(monkeypatch)


def endpoint() -> Endpoint:
    state = messages_pb2.SubscriptionState(
        id=str(uuid.uuid4()),
        tenant="acme",
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url="https://hooks.example/in?key=x"
        ),
        active=True,
        version=1,
    )
    return Endpoint(
        subscription=state,
        authentication=common_pb2.Authentication(),
        signing_secrets=(SECRET,),
        client_certificate=None,
        origin="https://hooks.example:443",
    )


def job(traceparent: str) -> messages_pb2.DeliveryJob:
    return messages_pb2.DeliveryJob(
        job_id="ev-1:s",
        delivery_id=str(uuid.uuid4()),
        event_id="ev-1",
        tenant="acme",
        subscription_id="s",
        payload_json=b'{"a":1}',
        attempt=1,
        trace_context={"traceparent": traceparent},
    )


def traceparent(sampled: bool) -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{'01' if sampled else '00'}"


@pytest.mark.parametrize(
    "sampler",
    [ParentBased(ALWAYS_ON), ParentBased(ALWAYS_OFF), ALWAYS_OFF],
    ids=["parentbased_always_on", "parentbased_always_off", "always_off"],
)
async def test_an_unsampled_job_makes_no_span_and_passes_its_context_on(
    deliverer: Deliverer, outbound: FakeOutbound, tracing: Tracing, sampler: Sampler
) -> None:
    tracing.use(sampler)
    parent = traceparent(sampled=False)
    made = job(parent)
    result = await deliverer.attempt(
        endpoint(), made, parent=parent_context(dict(made.trace_context))
    )

    assert result.succeeded
    assert tracing.started == 0  # the tracer was not even asked
    assert tracing.spans.get_finished_spans() == ()
    (sent,) = outbound.sent
    assert sent["traceparent"] == parent
    assert dict(result.span_context) == {"traceparent": parent}  # the record's headers
    assert sent["webhook-signature"].startswith("v1,")


async def test_a_sampled_job_still_has_its_span(
    deliverer: Deliverer, outbound: FakeOutbound, tracing: Tracing
) -> None:
    tracing.use(ParentBased(ALWAYS_OFF))  # the root sampler is not asked with a parent
    parent = traceparent(sampled=True)
    made = job(parent)
    result = await deliverer.attempt(
        endpoint(), made, parent=parent_context(dict(made.trace_context))
    )

    (span,) = tracing.spans.get_finished_spans()
    assert span.context is not None and span.parent is not None
    assert f"{span.parent.span_id:016x}" == parent.split("-")[2]
    own = f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
    assert outbound.sent[0]["traceparent"] == own
    assert result.span_context["traceparent"] == own


async def test_a_sampler_that_ignores_the_parent_is_asked(
    deliverer: Deliverer, outbound: FakeOutbound, tracing: Tracing
) -> None:
    tracing.use(ALWAYS_ON)  # records whatever the parent says: the span is made
    made = job(traceparent(sampled=False))
    await deliverer.attempt(endpoint(), made, parent=parent_context(dict(made.trace_context)))

    assert tracing.started == 1
    (span,) = tracing.spans.get_finished_spans()
    assert span.context is not None
    assert outbound.sent[0]["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"


async def test_without_a_parent_the_sampler_decides(
    deliverer: Deliverer, outbound: FakeOutbound, tracing: Tracing
) -> None:
    tracing.use(ParentBased(ALWAYS_ON))
    made = job(traceparent(sampled=False))
    await deliverer.attempt(endpoint(), made, parent=None)

    assert tracing.started == 1
    assert len(tracing.spans.get_finished_spans()) == 1


def _context(flags: int, state: TraceState | None = None) -> Context:
    span = SpanContext(
        int(secrets.token_hex(16), 16),
        int(secrets.token_hex(8), 16),
        is_remote=True,
        trace_flags=TraceFlags(flags),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(span), Context())


@pytest.mark.parametrize(
    "context",
    [
        _context(0),
        _context(1),
        _context(2),
        _context(0, TraceState([("vendor", "value")])),
        baggage.set_baggage("tenant", "acme", _context(0)),
        Context(),
    ],
    ids=["unsampled", "sampled", "random-flag", "tracestate", "baggage", "empty"],
)
def test_propagated_is_what_the_propagators_inject(context: Context) -> None:
    span_context = trace.get_current_span(context).get_span_context()
    assert propagated(context, span_context) == inject_headers({}, context)


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": traceparent(sampled=False)},
        {"traceparent": traceparent(sampled=True)},
        {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-02"},
        {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-03"},
        {"traceparent": f"00-{'0' * 32}-{secrets.token_hex(8)}-00"},
        {"traceparent": f"00-{secrets.token_hex(16)}-{'0' * 16}-00"},
        {"traceparent": f"00-{secrets.token_hex(16).upper()}-{secrets.token_hex(8)}-00"},
        {"traceparent": f"01-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00-future"},
        {"traceparent": traceparent(sampled=False), "tracestate": "vendor=value"},
        {"traceparent": traceparent(sampled=False), "baggage": "tenant=acme"},
        {"traceparent": "garbage"},
        {},
    ],
)
@pytest.mark.parametrize(
    "sampler",
    [ParentBased(ALWAYS_ON), ALWAYS_ON],
    ids=["parentbased", "always_on"],
)
def test_the_consumers_shortcut_agrees_with_the_propagators(
    carrier: dict[str, str], sampler: Sampler, tracing: Tracing
) -> None:
    tracing.use(sampler)
    parent = extract_context(carrier)
    span = trace.get_current_span(parent).get_span_context()
    no_span = (
        span.is_valid
        and not span.trace_flags.sampled
        and isinstance(sampler, ParentBased)  # ALWAYS_ON records whatever the parent says
    )
    got = unsampled_headers(carrier)
    if got is not None:
        assert no_span
        assert got == inject_headers({}, parent)
    else:  # the slow path: always correct, and the one taken where a span is made
        plain = len(carrier) == 1 and re.fullmatch(
            r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[02]", carrier.get("traceparent", "")
        )
        assert not (no_span and plain), "the common case should take the shortcut"


async def test_an_untraced_attempt_sends_the_headers_it_is_given(
    deliverer: Deliverer, outbound: FakeOutbound, tracing: Tracing
) -> None:
    tracing.use(ParentBased(ALWAYS_ON))
    parent = traceparent(sampled=False)
    made = job(parent)
    untraced = unsampled_headers(dict(made.trace_context))
    assert untraced == {"traceparent": parent}
    result = await deliverer.attempt(endpoint(), made, untraced=untraced)

    assert tracing.started == 0 and tracing.spans.get_finished_spans() == ()
    assert outbound.sent[0]["traceparent"] == parent
    assert dict(result.span_context) == {"traceparent": parent}
