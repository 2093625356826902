"""``bench/e2e.py --quick`` runs from end to end (a smoke test of the benchmark itself: its
figures are measured and reported, not asserted; see bench/README.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NEEDED = (Path("/usr/sbin/nginx"), Path("/usr/bin/wrk"))  # the receiver and its check


@pytest.mark.skipif(
    not all(path.exists() for path in NEEDED), reason="needs nginx and wrk (apt install)"
)
@pytest.mark.timeout(240)
def test_e2e_benchmark_quick_run_delivers_everything(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "e2e.py"), "--quick", "--keep",
         str(tmp_path / "work"), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    written = re.search(r"written to (\S+)", run.stdout)
    assert written is not None, run.stdout[-2000:]
    report = json.loads(Path(written[1]).read_text())
    assert [row["fanout"] for row in report["throughput"]] == [1, 10]
    for row in report["throughput"]:
        assert row["complete"] and row["received"] == row["deliveries"], row
        assert row["deliveries_per_s"] > 0
    latency = report["latency"]
    assert latency["complete"] and latency["received"] == latency["sent"], latency
    assert 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert report["raw_loop"]["requests_per_s"] > 0
    assert "targets:" in run.stdout
