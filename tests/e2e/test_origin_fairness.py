"""Fairness between subscriptions that share an origin, against a real sender process and a
real HTTPS receiver (tests/support/origin_fairness.py): one subscription whose endpoint
answers in 10 s, with a backlog of 200, must not hold up another subscription (of another
tenant) on the same host:port (webhooks_sender.endpoint_slots: each subscription holds at
most its share of the origin's slots and waiting room).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.origin_fairness import origin_fairness, percentile
from tests.support.sender_stack import running_stack

SLOW_SECONDS = 10.0
P99_LIMIT = 3.0  # seconds; far below SLOW_SECONDS (before the shares: about 30 s)


async def test_a_slow_subscription_does_not_hold_up_another_on_the_same_origin(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, WEBHOOKS_SENDER_TIMEOUT_MS="15000") as stack:
        result = await origin_fairness(
            stack,
            slow_jobs=200,
            quiet_jobs=1000,
            rate=200.0,
            slow_seconds=SLOW_SECONDS,
            alone=False,
        )
    latencies = result.quiet_with_slow
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"\nquiet subscription next to a {SLOW_SECONDS:.0f} s one on the same origin: "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    assert len(latencies) == 1000
    assert p99 < P99_LIMIT, f"p99 {p99:.1f} s"
