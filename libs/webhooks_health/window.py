"""The circuit breaker's window: attempts and failures per webhook over the last N seconds.

Per sender replica, in memory: each replica judges the attempts it made (a webhook spread over
several replicas trips on each one's share, which is the same ratio). Counts go in buckets of
``window / BUCKETS`` seconds, so recording is a dict lookup and two additions, and a verdict
sums at most BUCKETS + 1 buckets. Bounded: a webhook idle for a whole window is forgotten at
the next sweep, and past ``max_tracked`` webhooks the least recently used goes first.
"""

from __future__ import annotations

from collections import OrderedDict

# Buckets per window: the window's edge is this fine (10 s of a 300 s window).
BUCKETS = 30
# Webhooks tracked at most per replica; the oldest in use go beyond it.
MAX_TRACKED = 200_000


class _Counts:
    __slots__ = ("buckets",)

    def __init__(self) -> None:
        # bucket index -> [failed, total]; indices only grow, so the oldest is first.
        self.buckets: dict[int, list[int]] = {}


class FailureWindow:
    """Failed and total attempts per subscription over the last ``window_seconds``."""

    def __init__(self, window_seconds: float, *, max_tracked: int = MAX_TRACKED) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds: must be positive")
        self._window = float(window_seconds)
        self._width = self._window / BUCKETS
        self._max = max_tracked
        self._tracked: OrderedDict[str, _Counts] = OrderedDict()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._tracked)

    def record(self, subscription_id: str, now: float, failed: bool) -> None:
        """Count one attempt made at ``now`` (epoch seconds)."""
        counts = self._tracked.get(subscription_id)
        if counts is None:
            counts = self._tracked[subscription_id] = _Counts()
            if len(self._tracked) > self._max:
                self._tracked.popitem(last=False)
        else:
            self._tracked.move_to_end(subscription_id)
        index = int(now // self._width)
        bucket = counts.buckets.get(index)
        if bucket is None:
            bucket = counts.buckets[index] = [0, 0]
            self._trim(counts, index)
        bucket[1] += 1
        if failed:
            bucket[0] += 1
        if now >= self._next_sweep:
            self._sweep(now)

    def verdict(self, subscription_id: str, now: float) -> tuple[int, int]:
        """(failed, total) of the attempts within the window before ``now``."""
        counts = self._tracked.get(subscription_id)
        if counts is None:
            return (0, 0)
        oldest = int((now - self._window) // self._width) + 1
        failed = total = 0
        for index, (bucket_failed, bucket_total) in counts.buckets.items():
            if index >= oldest:
                failed += bucket_failed
                total += bucket_total
        return (failed, total)

    def forget(self, subscription_id: str) -> None:
        """Start the webhook afresh (its circuit closed, or its endpoint changed): the failures
        that opened the circuit must not open it again at the next failure."""
        self._tracked.pop(subscription_id, None)

    def _trim(self, counts: _Counts, newest: int) -> None:
        oldest = newest - BUCKETS
        for index in [index for index in counts.buckets if index < oldest]:
            del counts.buckets[index]

    def _sweep(self, now: float) -> None:
        """Forget the webhooks with no attempt within the window (least recent first)."""
        self._next_sweep = now + self._window
        newest_idle = int((now - self._window) // self._width)
        while self._tracked:
            subscription_id, counts = next(iter(self._tracked.items()))
            if max(counts.buckets, default=newest_idle) > newest_idle:
                break
            del self._tracked[subscription_id]
