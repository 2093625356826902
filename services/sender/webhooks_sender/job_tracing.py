"""The trace context of a job's attempt: the parent of its span (``parent_context``, with
a fast path for a carrier of only a ``traceparent``), the headers of an attempt that makes
no span (``unsampled_headers``), the link to the previous attempt's span
(``previous_attempt``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags

from webhooks_sender.delivery import drops_unsampled, w3c_propagation_only
from webhooks_sender.retries import PREVIOUS_ATTEMPT_HEADER
from webhooks_telemetry import extract_context

__all__ = ["parent_context", "previous_attempt", "unsampled_headers"]

# A version-00 traceparent and nothing else, as the router sends it (W3C Trace Context).
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parent_context(carrier: Mapping[str, str]) -> Context:
    """The job's trace context, the parent of its attempt's span: what ``extract_context``
    returns, with a fast path for the common carrier.

    When the configured propagators are only the W3C ones (the default: trace context and
    baggage) and the carrier holds nothing but a well-formed version-00 ``traceparent``,
    the result is the one the SDK builds (its regex search, getters and composite loop
    cost a visible share of the sender's CPU, bench/README.md); anything else goes through
    the propagators.
    """
    if len(carrier) == 1 and w3c_propagation_only():
        value = carrier.get("traceparent")
        match = _TRACEPARENT.fullmatch(value) if value is not None else None
        if match is not None:
            trace_id, span_id = int(match[1], 16), int(match[2], 16)
            if trace_id and span_id:
                span_context = SpanContext(
                    trace_id,
                    span_id,
                    is_remote=True,
                    trace_flags=TraceFlags(int(match[3], 16)),
                )
                return trace.set_span_in_context(NonRecordingSpan(span_context), Context())
    return extract_context(carrier)


_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16


def unsampled_headers(carrier: Mapping[str, str]) -> dict[str, str] | None:
    """The trace headers of an attempt that makes no span, when the job's trace context
    says so without extracting it: W3C propagators only, a carrier of nothing but a
    well-formed version-00 ``traceparent`` whose sampled flag is off, and a sampler that
    drops spans under such a parent (``drops_unsampled``). They are the carrier's own, what
    the propagators would inject for that parent. None otherwise: the parent is extracted
    (``parent_context``) and the tracer decides.
    """
    if len(carrier) != 1 or not w3c_propagation_only():
        return None
    value = carrier.get("traceparent")
    match = _TRACEPARENT.fullmatch(value) if value is not None else None
    if (
        match is None
        or int(match[3], 16) & 1
        or match[1] == _NO_TRACE
        or match[2] == _NO_SPAN
        or not drops_unsampled(remote=True)
    ):
        return None
    return {"traceparent": match[0]}


def previous_attempt(msg: Msg) -> list[Link]:
    """A link to the span of the job's previous attempt, when its schedule carried one."""
    traceparent = (msg.headers or {}).get(PREVIOUS_ATTEMPT_HEADER)
    if not traceparent:
        return []
    context = trace.get_current_span(extract_context({"traceparent": traceparent}))
    span_context = context.get_span_context()
    return [Link(span_context)] if span_context.is_valid else []
