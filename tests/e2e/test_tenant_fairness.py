"""Fairness between tenants under a burst (issue 13), on the platform as processes: while
tenant A's burst of 20,000 events drains, tenant B, publishing 50 events/s, keeps a p99
publish→receipt that is a small fraction of A's drain time. Before the two lanes (one
durable consumer per stream, in arrival order) B's events waited behind A's backlog at the
router and again at the sender: B's p99 was about half the drain time.

The assertion is a ratio, so it holds on a fast machine and a slow one alike. The
scenario itself is tests/support/tenant_burst.py (the benchmark bench/fairness.py runs it
too and prints the figures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.platform_stack import running_platform
from tests.support.tenant_burst import percentile, tenant_burst

BURST = 20_000
QUIET_RATE = 50.0
MOST_OF_DRAIN = 0.2  # B's p99 may be at most this share of A's drain time


@pytest.mark.timeout(900)
async def test_a_tenants_burst_does_not_hold_up_another_tenant(tmp_path: Path) -> None:
    async with running_platform(tmp_path, failures=False) as stack:
        result = await tenant_burst(
            stack, tmp_path, count=BURST, rate=QUIET_RATE, alone_seconds=3.0
        )
    during = result.quiet_during
    p50, p99 = percentile(during, 0.5), percentile(during, 0.99)
    figures = (
        f"A's {BURST} events drained in {result.drain_seconds:.1f} s; B during it "
        f"({len(during)} events): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; B alone "
        f"p99 {percentile(result.quiet_alone, 0.99) * 1000:.0f} ms"
    )
    print(figures)
    assert len(during) >= 20, figures  # B published all along the drain
    assert p99 < MOST_OF_DRAIN * result.drain_seconds, figures
