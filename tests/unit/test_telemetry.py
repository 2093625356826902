"""Trace context survives the trip through NATS headers and gRPC metadata."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from webhooks_telemetry import extract_context, inject_headers, metadata_with_context

tracer = TracerProvider().get_tracer("test")


def test_headers_round_trip_keeps_the_trace() -> None:
    with tracer.start_as_current_span("publish") as span:
        headers = inject_headers({"Nats-Msg-Id": "e1"})
    assert headers["Nats-Msg-Id"] == "e1"
    assert "traceparent" in headers
    carried = trace.get_current_span(extract_context(headers)).get_span_context()
    assert carried.trace_id == span.get_span_context().trace_id
    assert carried.span_id == span.get_span_context().span_id
    assert carried.is_remote


def test_an_explicit_context_is_injected() -> None:
    with tracer.start_as_current_span("earlier") as span:
        context = trace.set_span_in_context(span)
    headers = inject_headers({}, context)
    carried = trace.get_current_span(extract_context(headers)).get_span_context()
    assert carried.trace_id == span.get_span_context().trace_id


def test_no_headers_give_no_trace() -> None:
    assert not trace.get_current_span(extract_context(None)).get_span_context().is_valid
    assert not trace.get_current_span(extract_context({})).get_span_context().is_valid


def test_metadata_carries_the_trace_and_replaces_a_stale_one() -> None:
    stale = ("traceparent", "00-11111111111111111111111111111111-2222222222222222-01")
    with tracer.start_as_current_span("call") as span:
        metadata = metadata_with_context([("authorization", "Bearer x"), stale])
    assert ("authorization", "Bearer x") in metadata
    assert stale not in metadata
    carried = trace.get_current_span(extract_context(dict(metadata))).get_span_context()
    assert carried.trace_id == span.get_span_context().trace_id
