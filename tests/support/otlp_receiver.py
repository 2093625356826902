"""A real OTLP/gRPC trace receiver for tests: what the processes under test export.

A sync gRPC server on a free loopback port, in its own threads (so it keeps receiving
whatever event loop the test runs), implementing the collector's
``opentelemetry.proto.collector.trace.v1.TraceService/Export``. Every span received is
kept as a ``ReceivedSpan`` with the ``service.name`` of its resource::

    with OtlpReceiver() as receiver:
        env |= receiver.environment()     # OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port>
        ...                               # the processes export to it
        spans = receiver.wait_for(lambda spans: ..., timeout=10)
        receiver.in_trace(trace_id)       # one trace's spans

``environment()`` also sets ``OTEL_BSP_SCHEDULE_DELAY`` (the BatchSpanProcessor exports
every 200 ms instead of every 5 s), so a test does not wait for the default schedule.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

SCHEDULE_DELAY_MS = 200

Value = Any  # str | bool | int | float | bytes | list[Value] | dict[str, Value] | None
Attributes = dict[str, Value]

KINDS = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: "UNSPECIFIED",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "INTERNAL",
    trace_pb2.Span.SPAN_KIND_SERVER: "SERVER",
    trace_pb2.Span.SPAN_KIND_CLIENT: "CLIENT",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "PRODUCER",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
STATUS_CODES = {
    trace_pb2.Status.STATUS_CODE_UNSET: "UNSET",
    trace_pb2.Status.STATUS_CODE_OK: "OK",
    trace_pb2.Status.STATUS_CODE_ERROR: "ERROR",
}


def any_value(value: AnyValue) -> Value:
    """An OTLP attribute value as the Python value it was set from."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None


def attributes(pairs: Any) -> Attributes:
    items: list[KeyValue] = list(pairs)
    return {pair.key: any_value(pair.value) for pair in items}


def strings(value: Value) -> Iterator[str]:
    """Every string inside an attribute value (bytes decoded leniently)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="replace")
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    attributes: Attributes


@dataclass(frozen=True)
class ReceivedLink:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    attributes: Attributes


@dataclass(frozen=True)
class ReceivedSpan:
    service: str  # the resource's service.name
    resource: Attributes
    scope: str  # the instrumentation scope (tracer) name
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # 16 hex digits, "" for a root span
    name: str
    kind: str  # "SERVER", "CLIENT", … (see KINDS)
    attributes: Attributes
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    status: str  # "UNSET", "OK", "ERROR"
    status_message: str
    start_ns: int
    end_ns: int
    trace_state: str = ""

    def said(self) -> Iterator[str]:
        """Every string the span carries: name, status, attributes, events, links, resource."""
        yield self.name
        yield self.status_message
        yield self.trace_state
        yield from strings(self.attributes)
        yield from strings(self.resource)
        for event in self.events:
            yield event.name
            yield from strings(event.attributes)
        for link in self.links:
            yield from strings(link.attributes)

    def describe(self) -> str:
        parent = self.parent_span_id or "root"
        return f"{self.service} {self.kind} {self.name!r} {self.span_id} <- {parent}"


def _span(service: str, resource: Attributes, scope: str, span: trace_pb2.Span) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        resource=resource,
        scope=scope,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=KINDS.get(span.kind, str(span.kind)),
        attributes=attributes(span.attributes),
        events=tuple(ReceivedEvent(e.name, attributes(e.attributes)) for e in span.events),
        links=tuple(
            ReceivedLink(link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes))
            for link in span.links
        ),
        status=STATUS_CODES.get(span.status.code, str(span.status.code)),
        status_message=span.status.message,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        trace_state=span.trace_state,
    )


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            service = str(resource.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                received += [_span(service, resource, scope, s) for s in scope_spans.spans]
        self.receiver._add(received)
        return trace_service_pb2.ExportTraceServiceResponse()


@dataclass
class OtlpReceiver:
    """Started by ``start()`` or ``with``; ``spans`` is everything received so far."""

    port: int = 0
    requests: int = 0  # Export calls answered
    _spans: list[ReceivedSpan] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(
        self,
        sampler: str = "always_on",
        sampler_arg: str | None = None,
        *,
        schedule_delay_ms: int = SCHEDULE_DELAY_MS,
    ) -> dict[str, str]:
        """The variables that make a process export its spans here, ``schedule_delay_ms``
        after they end (a long delay: only what a process flushes at shutdown arrives)."""
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": str(schedule_delay_ms),
            "OTEL_TRACES_SAMPLER": sampler,
        }
        if sampler_arg is not None:
            env["OTEL_TRACES_SAMPLER_ARG"] = sampler_arg
        return env

    def start(self) -> OtlpReceiver:
        assert self._server is None, "already started"
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), server
        )
        # Port 0: the OS picks a free one, and add_insecure_port says which.
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=1).wait()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._changed:
            self._spans += spans
            self.requests += 1
            self._changed.notify_all()

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            return list(self._spans)

    def in_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    def clear(self) -> None:
        with self._changed:
            self._spans.clear()

    def wait_for(
        self, done: Callable[[list[ReceivedSpan]], bool], timeout: float, what: str = "spans"
    ) -> list[ReceivedSpan]:
        """Blocks until ``done(spans)`` holds (then returns the spans); AssertionError after
        ``timeout`` s. Run it in a thread from async code (``asyncio.to_thread``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(list(self._spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    got = "\n".join(span.describe() for span in self._spans)
                    raise AssertionError(f"{what} not received in {timeout} s; got:\n{got}")
                self._changed.wait(min(left, 0.5))
            return list(self._spans)
