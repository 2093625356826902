"""``webhooks status``'s report (webhooks_cli.status_report) and the backlog snapshot's
rules (webhooks_messaging.backlog), from made-up scrapes: no platform."""

from __future__ import annotations

import json

import pytest

from webhooks_cli.main import parse_args
from webhooks_cli.status_report import Probe, age_text, build_report, bytes_text, render
from webhooks_messaging.backlog import (
    STALE_AFTER_SECONDS,
    ConsumerBacklog,
    Snapshot,
    StreamBacklog,
    consumer_points,
    scheduled_retries,
    stream_points,
)

FAILURES_SCRAPE = """\
# TYPE webhooks_service_info gauge
webhooks_service_info{service="failures",version="1.2.3"} 1
# TYPE webhooks_stream_messages gauge
webhooks_stream_messages{stream="DELIVERIES"} 7
webhooks_stream_messages{stream="DEADLETTERS"} 2
webhooks_stream_messages{stream="EVENTS"} 40
# TYPE webhooks_stream_bytes gauge
webhooks_stream_bytes{stream="DELIVERIES"} 2048
webhooks_stream_bytes{stream="DEADLETTERS"} 100
webhooks_stream_bytes{stream="EVENTS"} 4096
# TYPE webhooks_consumer_pending gauge
webhooks_consumer_pending{consumer="sender",stream="DELIVERIES"} 3
webhooks_consumer_pending{consumer="sender-bulk",stream="DELIVERIES"} 0
webhooks_consumer_pending{consumer="router",stream="EVENTS"} 0
# TYPE webhooks_consumer_ack_pending gauge
webhooks_consumer_ack_pending{consumer="sender",stream="DELIVERIES"} 1
webhooks_consumer_ack_pending{consumer="sender-bulk",stream="DELIVERIES"} 0
webhooks_consumer_ack_pending{consumer="router",stream="EVENTS"} 0
# TYPE webhooks_consumer_oldest_age_seconds gauge
webhooks_consumer_oldest_age_seconds{consumer="sender",stream="DELIVERIES"} 12.5
webhooks_consumer_oldest_age_seconds{consumer="sender-bulk",stream="DELIVERIES"} 0
webhooks_consumer_oldest_age_seconds{consumer="router",stream="EVENTS"} 0
# TYPE webhooks_projection_lag gauge
webhooks_projection_lag{projection="failures_view"} 4
"""
SUBSCRIPTIONS_SCRAPE = """\
# TYPE webhooks_service_info gauge
webhooks_service_info{service="subscriptions",version="1.2.3"} 1
# TYPE webhooks_relay_lag gauge
webhooks_relay_lag 0
# TYPE webhooks_projection_lag gauge
webhooks_projection_lag{projection="listing"} 1
"""


def probe(service: str, text: str | None, health: str = "SERVING") -> Probe:
    return Probe(service, f"127.0.0.1:1{service[:1]}", health, "127.0.0.1:9", text, "refused")


def test_the_report_reads_every_number_from_the_scrapes() -> None:
    report = build_report(
        [
            probe("subscriptions", SUBSCRIPTIONS_SCRAPE),
            probe("router", "", "SERVING"),
            probe("failures", FAILURES_SCRAPE),
        ]
    )
    assert report["healthy"] is True
    assert [s["version"] for s in report["services"]] == ["1.2.3", "unknown", "1.2.3"]
    assert report["streams"][0] == {"stream": "DEADLETTERS", "messages": 2, "bytes": 100}
    sender = next(c for c in report["consumers"] if c["consumer"] == "sender")
    assert sender == {
        "stream": "DELIVERIES",
        "consumer": "sender",
        "pending": 3,
        "ack_pending": 1,
        "oldest_age_seconds": 12.5,
    }
    # DELIVERIES holds 7: 4 the sender's (3 pending, 1 unacknowledged), 3 schedules.
    assert report["retries_scheduled"] == 3
    assert report["dead_letters"] == 2
    assert report["relay_lag"] == 0
    assert report["projection_lag"] == {"failures_view": 4, "listing": 1}
    assert report["unavailable"] == {}
    json.dumps(report)  # JSON-ready as it is
    text = render(report)
    assert "DELIVERIES/sender" in text and "12.5s" in text and "every service is SERVING" in text


def test_what_cannot_be_had_is_null_with_its_reason_and_a_down_service_is_named() -> None:
    report = build_report(
        [probe("subscriptions", None), probe("failures", None, "unreachable (UNAVAILABLE)")]
    )
    assert report["healthy"] is False
    assert report["services"][1]["health"] == "unreachable (UNAVAILABLE)"
    assert report["services"][1]["metrics_error"] == "refused"
    for key in ("streams", "consumers", "retries_scheduled", "relay_lag", "dead_letters"):
        assert report[key] is None, key
    assert report["projection_lag"] == {"failures_view": None, "listing": None}
    assert report["unavailable"]["streams"] == "failures metrics: refused"
    assert report["unavailable"]["relay_lag"] == "subscriptions metrics: refused"
    text = render(report)
    assert "NOT SERVING: failures" in text
    assert "unavailable: relay_lag, projection_lag.listing: subscriptions metrics: refused" in text


def test_a_scrape_without_the_backlog_gauges_says_so() -> None:
    report = build_report([probe("failures", "# TYPE x gauge\nx 1\n")])
    assert report["streams"] is None
    assert "exports no webhooks_stream_messages" in report["unavailable"]["streams"]
    unreadable = build_report([probe("failures", "this is {not metrics")])
    assert "unreadable metrics" in unreadable["unavailable"]["streams"]


def test_ages_and_sizes_read_at_a_glance() -> None:
    assert [age_text(s) for s in (0, 4.25, 65, 7322)] == ["0s", "4.2s", "1m05s", "2h02m"]
    assert [bytes_text(n) for n in (10, 2048, 5 * 1024**3)] == ["10 B", "2.0 KiB", "5.0 GiB"]


def test_status_options() -> None:
    assert parse_args(["status"]).watch is None
    assert parse_args(["status", "--watch"]).watch == 2.0
    args = parse_args(["status", "--watch", "0.5", "--json"])
    assert (args.watch, args.json) == (0.5, True)
    with pytest.raises(SystemExit):
        parse_args(["status", "--watch", "0"])


# ---- the backlog snapshot's rules

NOW = 1_000_000.0


def snapshot(taken_at: float = NOW) -> Snapshot:
    return Snapshot(
        taken_at=taken_at,
        streams=(StreamBacklog("DELIVERIES", 10, 999), StreamBacklog("DEADLETTERS", 2, 50)),
        consumers=(
            ConsumerBacklog("DELIVERIES", "sender", 5, 2, NOW - 30),
            ConsumerBacklog("DELIVERIES", "sender-bulk", 0, 0, None),
        ),
    )


def test_retries_scheduled_are_what_no_consumer_holds() -> None:
    assert snapshot().retries_scheduled == 3
    assert snapshot().deadletters == 2
    assert scheduled_retries(1, [ConsumerBacklog("DELIVERIES", "sender", 2, 0, None)]) == 0
    assert Snapshot(taken_at=NOW).retries_scheduled is None


def test_the_oldest_age_grows_between_snapshots_and_stale_ones_are_not_exported() -> None:
    points = consumer_points(snapshot(), NOW + 5, "oldest_age")
    assert points == [
        (35.0, {"stream": "DELIVERIES", "consumer": "sender"}),
        (0.0, {"stream": "DELIVERIES", "consumer": "sender-bulk"}),
    ]
    assert consumer_points(snapshot(), NOW, "pending")[0][0] == 5.0
    assert stream_points(snapshot(), NOW, "bytes") == [
        (999.0, {"stream": "DELIVERIES"}),
        (50.0, {"stream": "DEADLETTERS"}),
    ]
    stale = NOW + STALE_AFTER_SECONDS + 1
    assert stream_points(snapshot(), stale, "messages") == []
    assert consumer_points(snapshot(), stale, "pending") == []
    assert stream_points(Snapshot(taken_at=0.0), NOW, "messages") == []
