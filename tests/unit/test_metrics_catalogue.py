"""The catalogue's Prometheus names are the ones the exporter writes: every instrument is
made on a provider of its own with a Prometheus reader, recorded once with its attributes,
and the scrape's sample names and labels are compared with what the catalogue says."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from webhooks_config import load_settings
from webhooks_telemetry import metrics


def observing(attributes: dict[str, str]) -> Callable[[CallbackOptions], list[Observation]]:
    return lambda options: [Observation(1, attributes)]


def test_prometheus_names_are_the_exporters() -> None:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    meter = MeterProvider(metric_readers=[reader]).get_meter("catalogue")
    for entry in metrics.CATALOGUE:
        attributes = {key: "x" for key in entry.attributes}
        if entry.kind == "counter":
            meter.create_counter(entry.name, entry.unit).add(1, attributes)
        elif entry.kind == "histogram":
            meter.create_histogram(entry.name, entry.unit).record(1, attributes)
        else:
            meter.create_observable_gauge(entry.name, [observing(attributes)], entry.unit)
    text = generate_latest(registry).decode()
    samples = {
        sample.name: set(sample.labels) - {"le"}
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for entry in metrics.CATALOGUE:
        for name in entry.prometheus_series:
            assert name in samples, f"{entry.name}: {name} not in {sorted(samples)}"
            assert samples[name] == set(entry.prometheus_labels), name


def test_names_are_unique_and_the_contracts() -> None:
    names = [entry.name for entry in metrics.CATALOGUE]
    assert len(names) == len(set(names))
    assert metrics.DELIVERY_LATENCY.prometheus_series == (
        "webhooks_delivery_latency_seconds_bucket",
        "webhooks_delivery_latency_seconds_sum",
        "webhooks_delivery_latency_seconds_count",
    )
    assert metrics.DEADLETTERS.prometheus_name == "webhooks_deadletters_total"
    assert metrics.STREAM_BYTES.prometheus_name == "webhooks_stream_bytes"
    assert metrics.CONSUMER_OLDEST_AGE.prometheus_name == "webhooks_consumer_oldest_age_seconds"


def test_no_endpoint_and_no_provider_without_configuration() -> None:
    assert metrics.setup_metrics("router", load_settings({})) is None


def test_metrics_addresses_are_per_service() -> None:
    settings = load_settings(
        {"WEBHOOKS_SENDER_METRICS_ADDR": ":9453", "WEBHOOKS_ROUTER_METRICS_ADDR": ""}
    )
    assert settings.metrics_addresses == {"sender": ":9453"}
    assert metrics.split_address(":9453", settings.metrics_host) == ("127.0.0.1", 9453)
    assert metrics.split_address("0.0.0.0:9452", "127.0.0.1") == ("0.0.0.0", 9452)


def test_a_bound_counter_is_one_per_attribute_set_and_one_way_per_entry() -> None:
    entry = metrics.Instrument("webhooks.test.bound", "counter", "{x}", "test", ("k",))
    first = metrics.bound_counter(entry, {"k": "a"})
    assert metrics.bound_counter(entry, {"k": "a"}) is first
    assert metrics.bound_counter(entry, {"k": "b"}) is not first
    first.add()
    first.add(2)
    assert first.value == 3
    with pytest.raises(ValueError, match="bound_counter"):
        metrics.counter(entry)
    with pytest.raises(ValueError, match="histogram"):
        metrics.bound_counter(metrics.DELIVERY_LATENCY, {})
