"""The cyclic garbage collector of a long-running service's hot path.

A service's steady work (routing events, delivering jobs) makes almost no cyclic garbage:
what it allocates is freed by reference counting. With CPython's defaults (a young
collection every 700 net allocations) the collector still traverses the in-flight work's
young objects thousands of times, and in every full collection the ~60,000-80,000 objects
of the start-up (modules, descriptors, tables): a large share of the sender's CPU, and
full collections in the router that every event in flight waits out (figures:
bench/README.md).
"""

from __future__ import annotations

import gc

# The first threshold while serving (CPython's default: 700).
GC_THRESHOLD = 50_000
_tuned = False


def collect_less_often() -> None:
    """Freezes what the process has built so far and raises the collector's first
    threshold, once per process (call it once the start-up is done).

    Frozen objects are never collected (nothing of the start-up is cyclic garbage later)
    nor traversed again; cyclic garbage still is collected, after 50,000 more objects.
    """
    global _tuned
    if not _tuned:
        _tuned = True
        gc.freeze()
        _, second, third = gc.get_threshold()
        gc.set_threshold(GC_THRESHOLD, second, third)
