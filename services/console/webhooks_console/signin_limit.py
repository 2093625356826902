"""How many sign-in attempts a client address may make: a token bucket per address.

Each address may try ``per_minute`` times at once, then once every ``60 / per_minute``
seconds: guessing tokens from one address is slowed to that pace, while a person who
mistypes a few times is not held up. An IPv6 client is counted by its /64, the block one
host is usually given, so hopping through its own addresses gains nothing.

Memory is bounded: at most ``max_clients`` addresses are remembered, the least recently
seen forgotten first. A client sending from more addresses than that can at worst have an
address forgotten and tried afresh, which gains it no more than having that many addresses
already gives it; it cannot make the table grow.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000  # ~1 MB of addresses and buckets at most
IPV6_PREFIX = 64


def client_key(address: str) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]  # not an address (a test client, a Unix socket): as given
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


class SignInLimiter:
    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # attempts regained per second
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # left, at
        self._lock = threading.Lock()  # the console serves requests from several threads

    def __len__(self) -> int:
        return len(self._buckets)

    def attempt(self, address: str) -> int:
        """0 when ``address`` may try now (the attempt is counted), else the whole seconds
        until it may."""
        key, now = client_key(address), self.clock()
        with self._lock:
            left, at = self._buckets.pop(key, (self.capacity, now))
            left = min(self.capacity, left + (now - at) * self.rate)
            if left >= 1:
                left -= 1
                wait = 0
            else:
                wait = max(1, math.ceil((1 - left) / self.rate))
            self._buckets[key] = (left, now)  # most recently seen last
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait
