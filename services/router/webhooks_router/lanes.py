"""Which lane a tenant's event takes: standard within its rate, bulk beyond it.

Each tenant has a token bucket: ``burst`` events at once, refilled at ``rate`` events per
second. An event that finds a token takes the standard lane; one that finds none, the bulk
lane. A tenant publishing at an ordinary pace never leaves the standard lane; a tenant's
burst (a bulk import, a backfill) fills the bulk lane beyond its first ``burst`` events,
and keeps ``rate`` events per second on the standard lane while it lasts. The router and
the senders take the standard lane first (their consumers), so one tenant's backlog does
not sit in front of every other tenant's events.

The buckets are the router process's own: with several router replicas a tenant gets the
rate at each replica it reaches. Memory is bounded: at most ``max_tenants`` buckets are
kept, the least recently used forgotten first; a forgotten tenant starts again with a full
bucket, which gains it at most one more burst on the standard lane.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_TENANTS = 100_000  # buckets kept: a few tens of MB at most


class TenantLanes:
    """Token buckets by tenant; ``bulk(tenant)`` meters one event."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_tenants: int = MAX_TENANTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_tenants < 1:
            raise ValueError("rate, burst and max_tenants must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_tenants = max_tenants
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def __len__(self) -> int:
        return len(self._buckets)

    def bulk(self, tenant: str) -> bool:
        """Whether the tenant's next event goes on the bulk lane (it then took no token)."""
        now = self._clock()
        tokens, at = self._buckets.pop(tenant, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        over = tokens < 1.0
        if not over:
            tokens -= 1.0
        self._buckets[tenant] = (tokens, now)  # the most recently used last
        if len(self._buckets) > self.max_tenants:
            self._buckets.popitem(last=False)
        return over
