"""What ``webhooks status`` shows, built from what it gathered: pure (no I/O), so the
report's shape and its text are tested without a platform.

The input is one ``Probe`` per service: its health answer and the text of its metrics
endpoint (or why there is none). The numbers come from the metrics contract's names
(webhooks_telemetry.metrics): the stream and consumer gauges and the failures view's
projection lag from the failures service (which alone watches the backlog), the relay lag
and the listing's projection lag from the subscriptions service, versions from each
service's ``webhooks.service.info``. What cannot be had is ``null`` in the report and its
reason is under ``unavailable`` (the key of the missing value), never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from webhooks_cli.output import table
from webhooks_messaging.backlog import ConsumerBacklog, scheduled_retries
from webhooks_messaging.streams import DEADLETTERS, DELIVERIES
from webhooks_telemetry import metrics

SERVING = "SERVING"
UNKNOWN_VERSION = "unknown"
BACKLOG_OWNER = "failures"  # the one process exporting the stream and consumer gauges
# Where each projection's lag is exported (its label -> the service).
PROJECTIONS = {"failures_view": "failures", "listing": "subscriptions"}
RELAY_OWNER = "subscriptions"

Labels = dict[str, str]
Samples = dict[str, list[tuple[Labels, float]]]  # sample name -> (labels, value) each


@dataclass(frozen=True)
class Probe:
    """What was asked of one service."""

    service: str
    address: str
    health: str  # SERVING, NOT_SERVING, ... or why it could not be asked
    metrics_address: str
    metrics_text: str | None  # the scrape; None when there is none
    metrics_problem: str = ""  # why there is none

    @property
    def serving(self) -> bool:
        return self.health == SERVING


def parse_samples(text: str) -> Samples:
    """A Prometheus text exposition as samples by name (ValueError when unparseable)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


class Scrapes:
    """Every service's parsed scrape, and why a value from one of them is missing."""

    def __init__(self, probes: Sequence[Probe]) -> None:
        self.by_service: dict[str, Samples] = {}
        self.problems: dict[str, str] = {}
        for probe in probes:
            if probe.metrics_text is None:
                self.problems[probe.service] = probe.metrics_problem or "no metrics endpoint"
                continue
            try:
                self.by_service[probe.service] = parse_samples(probe.metrics_text)
            except ValueError as err:
                self.problems[probe.service] = f"unreadable metrics: {err}"

    def samples(self, service: str, entry: metrics.Instrument) -> list[tuple[Labels, float]]:
        return self.by_service.get(service, {}).get(entry.prometheus_name, [])

    def why_missing(self, service: str, entry: metrics.Instrument) -> str:
        if service in self.problems:
            return f"{service} metrics: {self.problems[service]}"
        if service not in self.by_service:
            return f"{service} was not asked"
        return f"{service} exports no {entry.prometheus_name} (yet)"

    def one(self, service: str, entry: metrics.Instrument, **labels: str) -> float | None:
        for found, value in self.samples(service, entry):
            if all(found.get(k) == v for k, v in labels.items()):
                return value
        return None


def _version(scrapes: Scrapes, service: str) -> str:
    for labels, _ in scrapes.samples(service, metrics.SERVICE_INFO):
        if labels.get("service") == service and labels.get("version"):
            return labels["version"]
    return UNKNOWN_VERSION


def _services(probes: Sequence[Probe], scrapes: Scrapes) -> list[dict[str, Any]]:
    return [
        {
            "service": p.service,
            "address": p.address,
            "health": p.health,
            "version": _version(scrapes, p.service),
            "metrics_address": p.metrics_address or None,
            "metrics_error": scrapes.problems.get(p.service),
        }
        for p in probes
    ]


def _backlog(scrapes: Scrapes, report: dict[str, Any], unavailable: dict[str, str]) -> None:
    """Streams, consumers, dead letters and retries scheduled, from the backlog gauges."""
    owner = BACKLOG_OWNER
    sizes = {
        labels.get("stream", ""): value
        for labels, value in scrapes.samples(owner, metrics.STREAM_MESSAGES)
    }
    if not sizes:
        why = scrapes.why_missing(owner, metrics.STREAM_MESSAGES)
        for key in ("streams", "consumers", "dead_letters", "retries_scheduled"):
            unavailable[key] = why
        return
    report["streams"] = [
        {
            "stream": stream,
            "messages": int(messages),
            "bytes": int(scrapes.one(owner, metrics.STREAM_BYTES, stream=stream) or 0),
        }
        for stream, messages in sorted(sizes.items())
    ]
    consumers = _consumers(scrapes)
    report["consumers"] = [
        {
            "stream": c.stream,
            "consumer": c.consumer,
            "pending": c.pending,
            "ack_pending": c.ack_pending,
            "oldest_age_seconds": round(age, 3),
        }
        for c, age in consumers
    ]
    if DEADLETTERS in sizes:
        report["dead_letters"] = int(sizes[DEADLETTERS])
    else:
        unavailable["dead_letters"] = f"no {DEADLETTERS} stream in the failures metrics"
    if DELIVERIES in sizes:
        held = [c for c, _ in consumers if c.stream == DELIVERIES]
        report["retries_scheduled"] = scheduled_retries(int(sizes[DELIVERIES]), held)
    else:
        unavailable["retries_scheduled"] = f"no {DELIVERIES} stream in the failures metrics"


def _consumers(scrapes: Scrapes) -> list[tuple[ConsumerBacklog, float]]:
    found = []
    for labels, pending in scrapes.samples(BACKLOG_OWNER, metrics.CONSUMER_PENDING):
        key = {"stream": labels.get("stream", ""), "consumer": labels.get("consumer", "")}
        unacked = scrapes.one(BACKLOG_OWNER, metrics.CONSUMER_ACK_PENDING, **key) or 0
        age = scrapes.one(BACKLOG_OWNER, metrics.CONSUMER_OLDEST_AGE, **key) or 0.0
        backlog = ConsumerBacklog(key["stream"], key["consumer"], int(pending), int(unacked), None)
        found.append((backlog, age))
    return sorted(found, key=lambda pair: (pair[0].stream, pair[0].consumer))


def _lags(scrapes: Scrapes, report: dict[str, Any], unavailable: dict[str, str]) -> None:
    relay = scrapes.one(RELAY_OWNER, metrics.RELAY_LAG)
    if relay is None:
        unavailable["relay_lag"] = scrapes.why_missing(RELAY_OWNER, metrics.RELAY_LAG)
    else:
        report["relay_lag"] = int(relay)
    for projection, owner in PROJECTIONS.items():
        lag = scrapes.one(owner, metrics.PROJECTION_LAG, projection=projection)
        if lag is None:
            why = scrapes.why_missing(owner, metrics.PROJECTION_LAG)
            unavailable[f"projection_lag.{projection}"] = why
        else:
            report["projection_lag"][projection] = int(lag)


def build_report(probes: Sequence[Probe]) -> dict[str, Any]:
    """The status as JSON-ready data; its keys are documented in docs/operations.md."""
    scrapes = Scrapes(probes)
    unavailable: dict[str, str] = {}
    report: dict[str, Any] = {
        "healthy": all(p.serving for p in probes),
        "services": _services(probes, scrapes),
        "streams": None,
        "consumers": None,
        "retries_scheduled": None,
        "relay_lag": None,
        "projection_lag": dict.fromkeys(PROJECTIONS),
        "dead_letters": None,
        "unavailable": unavailable,
    }
    _backlog(scrapes, report, unavailable)
    _lags(scrapes, report, unavailable)
    return report


# ---- text for people


def age_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds else "0s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def bytes_text(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _metrics_text(service: dict[str, Any]) -> str:
    if service["metrics_error"]:
        return f"unavailable: {service['metrics_error']}"
    return str(service["metrics_address"] or "-")


def _value(report: dict[str, Any], key: str) -> str:
    value = report[key]
    return "unavailable" if value is None else str(value)


def render(report: dict[str, Any]) -> str:
    """The report as one screen of text."""
    services = table(
        ("SERVICE", "HEALTH", "VERSION", "ADDRESS", "METRICS"),
        [
            (
                s["service"],
                s["health"],
                s["version"],
                s["address"],
                _metrics_text(s),
            )
            for s in report["services"]
        ],
    )
    parts = [services]
    rows: list[tuple[str, ...]]
    if report["streams"] is not None:
        rows = [
            (s["stream"], str(s["messages"]), bytes_text(s["bytes"])) for s in report["streams"]
        ]
        parts.append(table(("STREAM", "MESSAGES", "SIZE"), rows))
    if report["consumers"] is not None:
        rows = [
            (
                f"{c['stream']}/{c['consumer']}",
                str(c["pending"]),
                str(c["ack_pending"]),
                age_text(c["oldest_age_seconds"]),
            )
            for c in report["consumers"]
        ]
        parts.append(table(("CONSUMER", "PENDING", "UNACKED", "OLDEST"), rows))
    parts.append(_summary(report))
    return "\n\n".join(parts)


def _summary(report: dict[str, Any]) -> str:
    lags = ", ".join(
        f"{name} {'unavailable' if lag is None else lag}"
        for name, lag in report["projection_lag"].items()
    )
    rows = [
        ("retries scheduled", _value(report, "retries_scheduled")),
        ("relay lag", _value(report, "relay_lag")),
        ("projection lag", lags),
        ("dead letters", _value(report, "dead_letters")),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    reasons: dict[str, list[str]] = {}  # one line per reason, naming what it hides
    for key, why in report["unavailable"].items():
        reasons.setdefault(why, []).append(key)
    lines.extend(f"unavailable: {', '.join(keys)}: {why}" for why, keys in reasons.items())
    down = [s["service"] for s in report["services"] if s["health"] != SERVING]
    lines.append(f"NOT SERVING: {', '.join(down)}" if down else "every service is SERVING")
    return "\n".join(lines)
