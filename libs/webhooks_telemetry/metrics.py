"""The platform's metrics: one catalogue of every instrument, and the meter provider.

The catalogue (``CATALOGUE``, one ``Instrument`` per metric) is the one home of each
metric's name, kind, unit, description and attribute keys, and gives the name Prometheus
sees (``Instrument.prometheus_name``, ``Instrument.prometheus_series``): dashboards, alert
rules and tests are checked against it. The table for operators is in docs/operations.md.

Using it (any process, any time; instruments made before ``setup_metrics`` start
recording once it has run, and record nothing in a process that never runs it)::

    from webhooks_telemetry import metrics

    INGESTED = metrics.counter(metrics.EVENTS_INGESTED)        # an OTel Counter
    LATENCY = metrics.histogram(metrics.DELIVERY_LATENCY)      # an OTel Histogram
    DUE = metrics.bound_counter(metrics.RETRIES_DUE, {})       # DUE.add(1)
    remove = metrics.observable_gauge(metrics.RELAY_LAG, lambda: [(lag, {})])

``counter``/``histogram`` return the same instrument for the same entry (make them once, at
import). ``bound_counter(entry, attributes)`` is a counter's hot-path form: one attribute
set counted by an integer addition, exported as the same counter (see ``BoundCounter``).
The SDK cleans and hashes a measurement's attributes at every call: pass ``None`` rather
than an empty dict, and prefer few attributes on what is recorded per delivery; pass
attribute dicts built once (module constants, or dicts cached per key), never a new dict
per call.

``observable_gauge(entry, callback)``: ``callback()`` returns an iterable of ``(value,
attributes)`` pairs read at each collection (a scrape, an OTLP export); it must be quick
and must not block (read a cached snapshot).

``setup_metrics(service, settings)`` (``webhooks_grpc.run_service`` and the console call it)
makes the process's MeterProvider the first time a Prometheus address
(``WEBHOOKS_<SERVICE>_METRICS_ADDR``) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is configured: a
Prometheus reader (served by prometheus-client's HTTP server on that address, with the
process and GC collectors of its default registry) and, with OTLP, a periodic OTLP
exporter. The resource names the service like the traces (``service.name`` =
``webhooks-<service>``). One provider per process: a test process running several services
shares it (``webhooks.service.info`` then lists each). Exemplars are off unless
``OTEL_METRICS_EXEMPLAR_FILTER`` asks for them: the Prometheus text format carries none and
offering them costs the hot path a few microseconds per measurement.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation

from webhooks_config import Settings

log = logging.getLogger(__name__)

Kind = Literal["counter", "histogram", "gauge"]
Attributes = Mapping[str, str | int | float | bool]
GaugeCallback = Callable[[], Iterable[tuple[float, Attributes]]]

METER_NAME = "webhooks"
TENANT_ATTRIBUTE = "webhooks.tenant"  # only with WEBHOOKS_METRICS_TENANT_LABEL=true

# Event occurred -> delivered: a healthy delivery takes milliseconds, a retried one up to
# hours; the last bound is where the retry schedule's long waits begin.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 1800.0, 3600.0,
)  # fmt: skip
# The semantic conventions' advice for http.client.request.duration (in seconds).
HTTP_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip

# UCUM units as the exporter maps them onto Prometheus suffixes; {annotations} add none.
_UNIT_SUFFIX = {"s": "seconds", "By": "bytes", "ms": "milliseconds"}


@dataclass(frozen=True)
class Instrument:
    name: str  # the OpenTelemetry name
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms: explicit bucket boundaries

    @property
    def prometheus_name(self) -> str:
        """The metric family's name in the scrape (what the Prometheus exporter writes)."""
        name = "".join(c if c.isalnum() else "_" for c in self.name)
        suffix = _UNIT_SUFFIX.get(self.unit, "")
        if suffix and not name.endswith("_" + suffix):
            name += "_" + suffix
        return name + "_total" if self.kind == "counter" else name

    @property
    def prometheus_series(self) -> tuple[str, ...]:
        """The sample names of the family (a histogram's ``_bucket``/``_sum``/``_count``)."""
        base = self.prometheus_name
        if self.kind == "histogram":
            return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
        return (base,)

    @property
    def prometheus_labels(self) -> tuple[str, ...]:
        return tuple("".join(c if c.isalnum() else "_" for c in a) for a in self.attributes)


def _entry(
    name: str, kind: Kind, unit: str, description: str, *attributes: str, **kw: Any
) -> Instrument:
    return Instrument(name, kind, unit, description, attributes, **kw)


EVENTS_INGESTED = _entry(
    "webhooks.events.ingested", "counter", "{event}", "Events accepted by the router", "lane"
)
EVENTS_REJECTED = _entry(
    "webhooks.events.rejected",
    "counter",
    "{event}",
    "Events the router refused (invalid, unauthorized, too_large, duplicate, unavailable)",
    "reason",
)
JOBS_ROUTED = _entry(
    "webhooks.jobs.routed", "counter", "{job}", "Delivery jobs the router published", "lane"
)
DELIVERY_ATTEMPTS = _entry(
    "webhooks.delivery.attempts",
    "counter",
    "{attempt}",
    "Delivery attempts by outcome, failure class and protocol",
    "outcome",
    "failure_class",
    "protocol",
)
DELIVERY_LATENCY = _entry(
    "webhooks.delivery.latency",
    "histogram",
    "s",
    "Event occurred to delivered, successful attempts only",
    buckets=LATENCY_BUCKETS,
)
HTTP_CLIENT_DURATION = _entry(
    "http.client.request.duration",
    "histogram",
    "s",
    "Duration of the sender's HTTP requests (one per attempt)",
    "http.request.method",
    "http.response.status_code",
    "error.type",
    buckets=HTTP_DURATION_BUCKETS,
)
RETRIES_SCHEDULED = _entry(
    "webhooks.retries.scheduled", "counter", "{retry}", "Retries the sender scheduled"
)
RETRIES_DUE = _entry(
    "webhooks.retries.due", "counter", "{retry}", "Retry jobs the sender took (now due)"
)
OAUTH_TOKEN_REQUESTS = _entry(
    "webhooks.oauth.token_requests",
    "counter",
    "{request}",
    "OAuth 2.0 token requests of the sender (ok, failed)",
    "outcome",
)
BREAKER_TRANSITIONS = _entry(
    "webhooks.sender.breaker_transitions",
    "counter",
    "{transition}",
    "Circuit breaker transitions of webhooks (open, half_open, closed)",
    "to",
)
DEFERRED_JOBS = _entry(
    "webhooks.sender.deferred_jobs",
    "counter",
    "{job}",
    "Jobs put back without an attempt (circuit_open, throttled, rate_limited, disabled)",
    "reason",
)
PLATFORM_DISABLES = _entry(
    "webhooks.sender.platform_disables",
    "counter",
    "{webhook}",
    "Webhooks the platform disabled (410 Gone, or failing for days)",
)
DEADLETTERS = _entry(
    "webhooks.deadletters",
    "counter",
    "{record}",
    "Records set aside as dead letters",
    "consumer",
    "reason",
)
STREAM_MESSAGES = _entry(
    "webhooks.stream.messages", "gauge", "{message}", "Messages in the stream", "stream"
)
STREAM_BYTES = _entry("webhooks.stream.bytes", "gauge", "By", "Bytes in the stream", "stream")
CONSUMER_PENDING = _entry(
    "webhooks.consumer.pending",
    "gauge",
    "{message}",
    "Messages not yet delivered to the durable consumer",
    "stream",
    "consumer",
)
CONSUMER_ACK_PENDING = _entry(
    "webhooks.consumer.ack_pending",
    "gauge",
    "{message}",
    "Messages delivered to the consumer and not yet acknowledged",
    "stream",
    "consumer",
)
CONSUMER_OLDEST_AGE = _entry(
    "webhooks.consumer.oldest_age",
    "gauge",
    "s",
    "Age of the oldest message the consumer has not acknowledged (0: none)",
    "stream",
    "consumer",
)
RELAY_LAG = _entry(
    "webhooks.relay.lag", "gauge", "{event}", "Stored domain events not yet on SUBSCRIPTIONS"
)
PROJECTION_LAG = _entry(
    "webhooks.projection.lag",
    "gauge",
    "{record}",
    "Records the projection has not applied yet (failures_view, listing)",
    "projection",
)
SUBSCRIPTIONS_HEALTH = _entry(
    "webhooks.subscriptions.health",
    "gauge",
    "{webhook}",
    "Webhooks per health state the platform found (failing, circuit_open, throttled, disabled)",
    "state",
)
SERVICE_INFO = _entry(
    "webhooks.service.info", "gauge", "1", "1 per running service", "service", "version"
)

CATALOGUE: tuple[Instrument, ...] = (
    EVENTS_INGESTED,
    EVENTS_REJECTED,
    JOBS_ROUTED,
    DELIVERY_ATTEMPTS,
    DELIVERY_LATENCY,
    HTTP_CLIENT_DURATION,
    RETRIES_SCHEDULED,
    RETRIES_DUE,
    OAUTH_TOKEN_REQUESTS,
    BREAKER_TRANSITIONS,
    DEFERRED_JOBS,
    PLATFORM_DISABLES,
    DEADLETTERS,
    STREAM_MESSAGES,
    STREAM_BYTES,
    CONSUMER_PENDING,
    CONSUMER_ACK_PENDING,
    CONSUMER_OLDEST_AGE,
    RELAY_LAG,
    PROJECTION_LAG,
    SUBSCRIPTIONS_HEALTH,
    SERVICE_INFO,
)
BY_NAME = {entry.name: entry for entry in CATALOGUE}


def meter() -> Meter:
    """The platform's meter (the global provider's; a proxy until ``setup_metrics``)."""
    return otel_metrics.get_meter(METER_NAME, _version())


_lock = threading.Lock()
_instruments: dict[str, Any] = {}


def counter(entry: Instrument) -> Counter:
    if entry.kind != "counter":
        raise ValueError(f"{entry.name} is a {entry.kind}")
    with _lock:
        made = _instruments.get(entry.name)
        if made is None:
            if entry.name in _bound:
                raise ValueError(f"{entry.name} is counted with bound_counter()")
            made = meter().create_counter(entry.name, entry.unit, entry.description)
            _instruments[entry.name] = made
    return made  # type: ignore[no-any-return]


class BoundCounter:
    """One attribute set of a counter, counted in the process: ``add`` is an integer
    addition, where the SDK's ``Counter.add`` cleans and hashes the attributes at every
    call. The entry's observable counter reports every bound set's total at each
    collection (the same counter in the scrape and over OTLP). For the hot path of one
    event loop: ``add`` takes no lock, so one thread adds to a given bound counter."""

    __slots__ = ("attributes", "value")

    def __init__(self, attributes: Attributes) -> None:
        self.attributes = dict(attributes)
        self.value = 0

    def add(self, amount: int = 1) -> None:
        self.value += amount


def bound_counter(entry: Instrument, attributes: Attributes) -> BoundCounter:
    """The bound counter of ``entry`` and ``attributes`` (the same object for the same
    set). An entry is counted either this way or with ``counter``, not both."""
    if entry.kind != "counter":
        raise ValueError(f"{entry.name} is a {entry.kind}")
    key = tuple(sorted(attributes.items()))
    with _lock:
        cells = _bound.get(entry.name)
        if cells is None:
            if entry.name in _instruments:
                raise ValueError(f"{entry.name} is counted with counter()")
            cells = _bound[entry.name] = {}

            def observe(options: CallbackOptions) -> Iterable[Observation]:
                return [Observation(c.value, c.attributes) for c in list(cells.values())]

            meter().create_observable_counter(entry.name, [observe], entry.unit, entry.description)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = BoundCounter(attributes)
    return cell


_bound: dict[str, dict[tuple[Any, ...], BoundCounter]] = {}


def histogram(entry: Instrument) -> Histogram:
    if entry.kind != "histogram":
        raise ValueError(f"{entry.name} is a {entry.kind}")
    with _lock:
        made = _instruments.get(entry.name)
        if made is None:
            made = meter().create_histogram(
                entry.name,
                entry.unit,
                entry.description,
                explicit_bucket_boundaries_advisory=list(entry.buckets) or None,
            )
            _instruments[entry.name] = made
    return made  # type: ignore[no-any-return]


def observable_gauge(entry: Instrument, callback: GaugeCallback) -> Callable[[], None]:
    """Observe ``entry`` with ``callback`` (see the module's docstring); returns what
    removes the callback again. A gauge observed in several places (callbacks) reports
    the points of each: one OTel instrument per entry, whatever the number of callbacks."""
    if entry.kind != "gauge":
        raise ValueError(f"{entry.name} is a {entry.kind}")
    with _lock:
        callbacks = _gauge_callbacks.get(entry.name)
        if callbacks is None:
            callbacks = _gauge_callbacks[entry.name] = []

            def observe(options: CallbackOptions) -> Iterable[Observation]:
                return _observe(entry, list(callbacks))

            meter().create_observable_gauge(entry.name, [observe], entry.unit, entry.description)
        callbacks.append(callback)

    def remove() -> None:
        with _lock, contextlib.suppress(ValueError):
            callbacks.remove(callback)

    return remove


_gauge_callbacks: dict[str, list[GaugeCallback]] = {}


def _observe(entry: Instrument, callbacks: list[GaugeCallback]) -> list[Observation]:
    observations = []
    for callback in callbacks:
        try:
            points = list(callback())
        except Exception:  # one broken callback must not hide the others' points
            log.exception("metrics: observing %s failed", entry.name)
            continue
        observations += [Observation(value, dict(attrs)) for value, attrs in points]
    return observations


def _version() -> str:
    try:
        return metadata.version("webhooks-platform")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# The process's provider and the services set up in it (service.info lists each).
_provider: Any = None
_services: list[str] = []


@dataclass
class MetricsEndpoint:
    """The Prometheus endpoint of one service (``stop`` at its shutdown)."""

    host: str
    port: int
    _server: Any = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        force_flush()


def setup_metrics(service: str, settings: Settings) -> MetricsEndpoint | None:
    """The provider (first call with metrics configured) and ``service``'s Prometheus
    endpoint when its address is set; None when there is no endpoint."""
    address = settings.metrics_addresses.get(service, "")
    if not address and not settings.otlp_endpoint:
        return None
    _ensure_provider(service, settings)
    with _lock:
        if service not in _services:
            _services.append(service)
    if not address:
        return None
    host, port = split_address(address, settings.metrics_host)
    from prometheus_client import REGISTRY, start_http_server

    try:
        server, _thread = start_http_server(port, host, REGISTRY)
    except OSError as error:  # the port taken: say which setting, not a bare traceback
        raise RuntimeError(
            f"{service}: cannot serve metrics on {host}:{port} "
            f"(WEBHOOKS_{service.upper()}_METRICS_ADDR): {error}"
        ) from error
    bound = server.server_address[1]
    log.info("%s: metrics on http://%s:%d/metrics", service, host, bound)
    return MetricsEndpoint(host, bound, server)


def split_address(address: str, default_host: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``port`` (the host then ``WEBHOOKS_METRICS_HOST``)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or default_host
    return host, int(port)


def _ensure_provider(service: str, settings: Settings) -> None:
    global _provider
    with _lock:
        if _provider is not None:
            return
        # Imported here: processes without metrics configured never load the SDK's parts.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOffExemplarFilter
        from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource

        from webhooks_telemetry.tracing import service_resource_name

        attributes = {SERVICE_NAME: service_resource_name(service)}
        if settings.service_name_suffix:
            attributes[SERVICE_INSTANCE_ID] = settings.service_name_suffix
        readers: list[MetricReader] = []
        if settings.metrics_addresses.get(service):
            readers.append(PrometheusMetricReader(scope_info_enabled=False))
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        options: dict[str, Any] = {}
        if not os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER"):
            options["exemplar_filter"] = AlwaysOffExemplarFilter()
        _provider = MeterProvider(
            resource=Resource.create(attributes), metric_readers=readers, **options
        )
        otel_metrics.set_meter_provider(_provider)
    observable_gauge(SERVICE_INFO, _service_info)


def _service_info() -> list[tuple[float, Attributes]]:
    version = _version()
    return [(1, {"service": name, "version": version}) for name in list(_services)]


def force_flush(timeout_millis: int = 5000) -> None:
    """Export what the OTLP reader holds now (at a service's shutdown)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)
