"""``bench/fairness.py --quick`` runs from end to end (a smoke test of the benchmark itself:
its figures are measured and reported, not asserted; tests/e2e/test_tenant_fairness.py
asserts on the same scenario)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(420)
def test_fairness_benchmark_quick_run_reports_every_scenario(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fairness.py"), "--quick", "--keep",
         str(tmp_path / "work"), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    written = re.search(r"written to (\S+)", run.stdout)
    assert written is not None, run.stdout[-2000:]
    report = json.loads(Path(written[1]).read_text())
    burst = report["scenarios"]["tenant-burst"]
    for key in ("quiet_alone", "quiet_with_noisy"):
        assert burst[key]["count"] > 0
        assert 0 < burst[key]["p50_ms"] <= burst[key]["p99_ms"], burst
    assert burst["noisy_drain_s"] > 0
    assert "with the noisy one" in run.stdout
