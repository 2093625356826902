"""W3C trace context in NATS message headers and gRPC metadata.

Uses the global propagator (``OTEL_PROPAGATORS``, by default tracecontext and baggage), so
a trace follows one event across services and out to the customer's endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import propagate
from opentelemetry.context import Context


def inject_headers(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add the trace context (current, or ``context``) to ``headers`` and return them."""
    propagate.inject(headers, context=context)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context carried by message headers (empty context when none)."""
    return propagate.extract(dict(headers) if headers else {})


def metadata_with_context(
    metadata: Sequence[tuple[str, str]] = (), context: Context | None = None
) -> list[tuple[str, str]]:
    """gRPC call metadata plus the trace context (replacing any stale trace headers)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(k, v) for k, v in metadata if k.lower() not in carrier] + list(carrier.items())
