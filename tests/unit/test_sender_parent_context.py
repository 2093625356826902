"""The fast path for a job's trace context (job_tracing.py) gives what the propagators give."""

from __future__ import annotations

import secrets

import pytest
from opentelemetry import trace

from webhooks_sender.job_tracing import parent_context
from webhooks_telemetry import extract_context


def _span_context(carrier: dict[str, str]) -> trace.SpanContext:
    return trace.get_current_span(parent_context(carrier)).get_span_context()


def _expected(carrier: dict[str, str]) -> trace.SpanContext:
    return trace.get_current_span(extract_context(carrier)).get_span_context()


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
        f"00-{'0' * 32}-{secrets.token_hex(8)}-01",  # invalid trace id
        f"00-{secrets.token_hex(16)}-{'0' * 16}-01",  # invalid span id
        f"00-{secrets.token_hex(16).upper()}-{secrets.token_hex(8)}-01",  # not lower-case
        f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01-extra",  # v00 takes no more
        f"01-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01-future",  # a later version
        f"ff-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        f" 00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01\t",
        "garbage",
        "",
    ],
)
def test_same_parent_as_the_propagators(traceparent: str) -> None:
    carrier = {"traceparent": traceparent}
    assert _span_context(carrier) == _expected(carrier)


def test_other_headers_go_through_the_propagators() -> None:
    carrier = {
        "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        "tracestate": "vendor=value",
        "baggage": "tenant=acme",
    }
    got = parent_context(carrier)
    assert trace.get_current_span(got).get_span_context() == _expected(carrier)
    assert trace.get_current_span(got).get_span_context().trace_state.get("vendor") == "value"
    assert parent_context({}) == extract_context({})
