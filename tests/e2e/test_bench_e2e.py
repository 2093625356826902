"""``bench/e2e.py --quick --soak 0.25`` runs from end to end (a smoke test of the benchmark
itself: its figures are measured and reported, never asserted; see bench/README.md). What is
asserted is the report's structure: every case, every issue 17 goal with a figure and met /
missed, and that the short soak lost and duplicated nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NEEDED = (Path("/usr/sbin/nginx"), Path("/usr/bin/wrk"))  # the receiver and its check
GOALS = {
    "throughput_to_raw",
    "cpu_to_raw",
    "half_load_p99_ms",
    "half_load_p50_ms",
    "single_event_p99_ms",
    "soak_lost",
    "soak_duplicates",
    "soak_rss_growth_pct",
    "soak_pending_growth",
}
PLATFORM = ("nats", "router", "sender", "failures", "subscriptions")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("bench-e2e")
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "e2e.py"), "--quick", "--soak", "0.25",
         "--keep", str(tmp / "work"), "--results", str(tmp)],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    written = re.search(r"written to (\S+)", run.stdout)
    assert written is not None, run.stdout[-2000:]
    return run.stdout, json.loads(Path(written[1]).read_text())


pytestmark = [
    pytest.mark.skipif(
        not all(path.exists() for path in NEEDED), reason="needs nginx and wrk (apt install)"
    ),
    pytest.mark.timeout(300),
]


def test_every_case_delivers_everything(quick_run: tuple[str, dict[str, Any]]) -> None:
    _, report = quick_run
    assert [row["fanout"] for row in report["throughput"]] == [1, 10]
    for row in report["throughput"]:
        assert row["complete"] and row["received"] == row["deliveries"], row
    for key in ("latency", "half_load", "single_event"):
        case = report[key]
        assert case["complete"] and case["received"] == case["sent"] > 0, case
        assert 0 < case["p50_ms"] <= case["p99_ms"], case
        assert set(case["stages_ms"]) == {"ingest", "route", "sender", "https"}, case
    assert report["single_event"]["events_per_call"] == 1
    capacity = report["capacity_events_per_s"]
    assert capacity == report["throughput"][0]["events_per_s"]
    assert report["half_load"]["offered_events_per_s"] == pytest.approx(capacity / 2, abs=0.1)
    assert report["single_event"]["offered_events_per_s"] == pytest.approx(capacity / 4, abs=0.1)


def test_cpu_per_delivery_by_process_and_as_a_ratio_to_the_raw_loop(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _, report = quick_run
    assert report["raw_loop"]["cpu_us_per_request"] > 0
    fan1 = report["throughput"][0]
    per = fan1["cpu_us_per_delivery"]
    assert set(PLATFORM) | {"platform"} <= set(per), per
    assert per["platform"] == pytest.approx(sum(per[role] for role in PLATFORM), abs=1)
    assert isinstance(fan1["cpu_to_raw"], float)
    assert set(PLATFORM) <= set(fan1["cpu_to_raw_by_role"])


def test_the_short_soak_loses_and_duplicates_nothing(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _, report = quick_run
    soak = report["soak"]
    assert soak["sent"] > 0 and soak["complete"], soak
    assert soak["lost"] == 0 and soak["duplicates"] == 0, soak
    assert report["duplicates_at_receiver"] == 0
    assert len(soak["samples"]) >= 2
    processes = {name.rsplit("-", 1)[0] for name in soak["rss_mb"]}
    assert set(PLATFORM) <= processes, soak["rss_mb"]
    assert len(soak["pending"]["totals"]) == len(soak["samples"])


def test_every_goal_has_a_figure_a_bound_and_a_verdict(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    stdout, report = quick_run
    goals = {row["goal"]: row for row in report["goals"]}
    assert set(goals) == GOALS
    table = stdout[stdout.index("goal (issue 17)") :]
    for row in goals.values():
        assert isinstance(row["figure"], int | float), row
        assert row["bound"] and row["status"] in ("met", "missed"), row
        line = next(line for line in table.splitlines() if line.startswith(row["label"]))
        assert line.rstrip().endswith(row["status"]), line
    assert goals["soak_lost"]["status"] == "met" and goals["soak_duplicates"]["status"] == "met"
