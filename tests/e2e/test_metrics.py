"""Metrics from the real processes (issue 14): every service on its own Prometheus endpoint,
scraped before and after 100 deliveries and 10 failures. The counters and histograms move
by exactly what happened (events in, jobs routed, attempts by outcome and class, the
latency and HTTP duration histograms, retries scheduled), a record set aside shows as a
dead letter, and the relay and projection lags come back to 0.

The names come from the catalogue (webhooks_telemetry.metrics), so a renamed metric fails
here as well as in the dashboard's check.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.platform_stack import (
    Platform,
    new_tenant,
    platform_event,
    rest,
    running_platform,
)
from tests.support.ports import free_port
from tests.support.receivers import HttpsReceiver, Reply
from tests.support.waiting import eventually
from webhooks_messaging import delivery_job_subject
from webhooks_telemetry import metrics

SERVICES = ("subscriptions", "router", "sender", "failures")
DELIVERED, FAILED = 100, 10
RETRY_INTERVAL = 600  # the failures' retries are scheduled, not due, while the test runs

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0: none yet)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


class Endpoints:
    def __init__(self, ports: Mapping[str, int]) -> None:
        self.ports = ports

    async def of(self, service: str) -> Samples:
        return await asyncio.to_thread(scrape, self.ports[service])


def series(entry: metrics.Instrument, suffix: str = "") -> str:
    names = entry.prometheus_series
    return next(n for n in names if n.endswith(suffix)) if suffix else names[0]


async def test_metrics_move_with_deliveries_failures_and_set_aside(tmp_path: Path) -> None:
    ports = {service: free_port() for service in SERVICES}
    env = {f"WEBHOOKS_{s.upper()}_METRICS_ADDR": f"127.0.0.1:{p}" for s, p in ports.items()}
    env["WEBHOOKS_RELAY_POLL_MS"] = "100"
    async with running_platform(tmp_path, env=env) as stack:
        receiver = await HttpsReceiver(stack.pki).start()
        try:
            await _deliveries_and_failures(stack, receiver, Endpoints(ports))
        finally:
            await receiver.stop()


async def _deliveries_and_failures(
    stack: Platform, receiver: HttpsReceiver, endpoints: Endpoints
) -> None:
    for service in SERVICES:  # each process says who it is
        info = await endpoints.of(service)
        assert total(info, series(metrics.SERVICE_INFO), service=service) == 1, service
        assert total(info, "target_info", service_name=f"webhooks-{service}") == 1
    good, bad = new_tenant("metrics-ok"), new_tenant("metrics-fail")
    receiver.reply("/fail", Reply(500, b"down"))
    await stack.create_subscription(good, rest("ok", receiver.url("/ok")))
    await stack.create_subscription(
        bad, rest("fails", receiver.url("/fail"), retries=1, interval=RETRY_INTERVAL)
    )
    router_before = await endpoints.of("router")
    sender_before = await endpoints.of("sender")

    await stack.publish([platform_event(good, "Object", "OnNew") for _ in range(DELIVERED)])
    await stack.publish([platform_event(bad, "Object", "OnNew") for _ in range(FAILED)])
    await receiver.wait_for(DELIVERED, "/ok", timeout=60)
    await receiver.wait_for(FAILED, "/fail", timeout=60)
    await stack.wait_idle()

    def moved(after: Samples, before: Samples, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    attempts = series(metrics.DELIVERY_ATTEMPTS)
    expected = {
        (attempts, (("outcome", "succeeded"), ("failure_class", ""), ("protocol", "rest"))): (
            DELIVERED
        ),
        (attempts, (("outcome", "failed"), ("failure_class", "http_status"))): FAILED,
        (attempts, ()): DELIVERED + FAILED,
        (series(metrics.DELIVERY_LATENCY, "_count"), ()): DELIVERED,
        (series(metrics.HTTP_CLIENT_DURATION, "_count"), ()): DELIVERED + FAILED,
        (
            series(metrics.HTTP_CLIENT_DURATION, "_count"),
            (("http_response_status_code", "500"), ("error_type", "http_status")),
        ): FAILED,
        (series(metrics.RETRIES_SCHEDULED), ()): FAILED,
        (series(metrics.RETRIES_DUE), ()): 0,
    }

    async def sender_moves() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        after = await endpoints.of("sender")
        return {key: moved(after, sender_before, key[0], **dict(key[1])) for key in expected}

    # The records are on ATTEMPTS once the sender is idle; the counters were moved before
    # each record was published, so they are exact now (and stay so: nothing else runs).
    assert await eventually(sender_moves, lambda got: got == expected, 10, "sender") == expected
    await asyncio.sleep(1)
    assert await sender_moves() == expected
    latency = await endpoints.of("sender")
    assert moved(
        latency, sender_before, series(metrics.DELIVERY_LATENCY, "_bucket"), le="+Inf"
    ) == (DELIVERED)

    router_after = await endpoints.of("router")
    standard = {"lane": "standard"}
    ingested = series(metrics.EVENTS_INGESTED)
    routed = series(metrics.JOBS_ROUTED)
    assert moved(router_after, router_before, ingested, **standard) == DELIVERED + FAILED
    assert moved(router_after, router_before, routed, **standard) == DELIVERED + FAILED
    assert moved(router_after, router_before, series(metrics.EVENTS_REJECTED)) == 0

    # The same events again: the broker's duplicate window refuses them, counted as such.
    again = [platform_event(good, "Object", "OnNew", event_id="dup-" + good)]
    await stack.publish(again)
    await stack.publish(again, require_accepted=False)
    router_dup = await endpoints.of("router")
    rejected = series(metrics.EVENTS_REJECTED)
    assert moved(router_dup, router_after, rejected, reason="duplicate") == 1

    await _set_aside_and_lags(stack, endpoints, good)


async def _set_aside_and_lags(stack: Platform, endpoints: Endpoints, tenant: str) -> None:
    letters = series(metrics.DEADLETTERS)
    before = total(await endpoints.of("sender"), letters, consumer="sender")
    await stack.js.publish(delivery_job_subject(tenant, "sub-forged"), b"\xff\xfe not a job")

    async def set_aside() -> float:
        return total(await endpoints.of("sender"), letters, consumer="sender") - before

    await eventually(set_aside, lambda n: n == 1, 15, "the dead letter in the sender's scrape")
    got = await endpoints.of("sender")
    assert total(got, letters, consumer="sender", reason="undecodable") >= 1

    lag, relay = series(metrics.PROJECTION_LAG), series(metrics.RELAY_LAG)

    async def lags() -> tuple[float, ...] | None:
        """(relay, listing, failures view); None until each gauge is there (refreshed)."""
        subscriptions = await endpoints.of("subscriptions")
        failures = await endpoints.of("failures")
        names = {name for name, _ in subscriptions} | {name for name, _ in failures}
        if not {relay, lag} <= names:
            return None
        return (
            total(subscriptions, relay),
            total(subscriptions, lag, projection="listing"),
            total(failures, lag, projection="failures_view"),
        )

    await eventually(lags, lambda got: got == (0, 0, 0), 20, "lags back to 0")
