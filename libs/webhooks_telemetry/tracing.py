"""Tracer providers of the services: resource, exporters, sampling, flush.

``webhooks up`` may run several services in one process, so there is one provider per
service name (each span says which service made it); the first one also becomes the
global provider, which library instrumentation without an explicit provider uses.

Sampling is the OpenTelemetry SDK's, configured by ``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG``. Unset, it is ``parentbased_always_on``: every trace recorded,
which costs the router much of its routing throughput (bench/README.md). In production use
``parentbased_traceidratio`` with a ratio (e.g. ``0.01``): a trace is sampled or not once,
where it starts, and every service follows the caller's decision (the ``traceparent``
flags), so a sampled trace is complete and the others cost little. A span that is not
sampled is still created (far cheaper than a recorded one: no attributes kept, nothing
exported); the router creates no per-job publish span under one.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler

from webhooks_config import Settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_providers: dict[str, TracerProvider] = {}
_exporters: dict[str, list[SpanExporter]] = {}
_global_set = False


def service_resource_name(service_name: str) -> str:
    return f"webhooks-{service_name}"


def setup_tracing(
    service_name: str, settings: Settings, *, extra_exporter: SpanExporter | None = None
) -> TracerProvider:
    """The tracer provider of ``service_name``, created on the first call.

    The sampler comes from ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (the SDK
    reads them; see the module's docstring), the OTLP exporter reads the other
    ``OTEL_EXPORTER_OTLP_*`` variables itself. Calling again
    returns the same provider; ``extra_exporter`` (tests: an ``InMemorySpanExporter``) is
    attached with a synchronous processor so its spans are visible at once.
    """
    global _global_set
    with _lock:
        provider = _providers.get(service_name)
        if provider is None:
            attributes: dict[str, str] = {SERVICE_NAME: service_resource_name(service_name)}
            if settings.service_name_suffix:
                attributes[SERVICE_INSTANCE_ID] = settings.service_name_suffix
            provider = TracerProvider(resource=Resource.create(attributes))
            log.info("%s: trace sampler %s", service_name, provider.sampler.get_description())
            if settings.otlp_endpoint:
                # Imported here: the exporter pulls in grpc channels nobody needs otherwise.
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter,
                )

                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            _providers[service_name] = provider
            if not _global_set:
                trace.set_tracer_provider(provider)
                _global_set = True
        attached = _exporters.setdefault(service_name, [])
        if extra_exporter is not None and not any(e is extra_exporter for e in attached):
            provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
            attached.append(extra_exporter)
        return provider


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export every finished span now (at a service's shutdown)."""
    with _lock:
        providers = list(_providers.values())
    for provider in providers:
        provider.force_flush(timeout_millis)


def shutdown_tracing() -> None:
    """Flush and close every provider (at process exit)."""
    with _lock:
        providers = list(_providers.values())
        _providers.clear()
        _exporters.clear()
    for provider in providers:
        provider.shutdown()


_sampler_verdict: tuple[object, object, bool, bool] = (None, None, False, False)


def drops_unsampled_spans(tracer: trace.Tracer, *, remote: bool) -> bool:
    """Whether ``tracer`` would make a non-recording span under a parent that is not
    sampled (remote, or local): its SDK sampler is ``always_off``, or parent-based with
    ``always_off`` for such parents (what every ``parentbased_*`` setting is). Anything
    else (another sampler, no SDK) answers False: the span is then asked for as usual.

    Asked per job on the sender's hot path: the answer is kept until the tracer or its
    sampler changes. The SDK has no public way to ask a sampler this, hence the private
    attributes, read here only.
    """
    global _sampler_verdict
    real = tracer._tracer if isinstance(tracer, trace.ProxyTracer) else tracer
    sampler = getattr(real, "sampler", None)
    known_tracer, known_sampler, drops_remote, drops_local = _sampler_verdict
    if real is not known_tracer or sampler is not known_sampler:
        drops_remote = drops_local = _always_off(sampler)
        if isinstance(sampler, ParentBased):
            drops_remote = _always_off(getattr(sampler, "_remote_parent_not_sampled", None))
            drops_local = _always_off(getattr(sampler, "_local_parent_not_sampled", None))
        _sampler_verdict = (real, sampler, drops_remote, drops_local)
    return drops_remote if remote else drops_local


def _always_off(sampler: object) -> bool:
    return isinstance(sampler, StaticSampler) and (
        getattr(sampler, "_decision", None) is Decision.DROP
    )
