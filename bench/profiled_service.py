"""The subscriptions service under cProfile in every thread (py-spy is not installed).

Each thread (the event loop and every worker thread) gets its own profiler timed by
``time.thread_time``, so the figures are CPU time, not time spent waiting for locks, the
GIL or I/O; at exit the profiles are merged into ``$BENCH_PROFILE_OUT.pstats`` and a text
report (cumulative and own time) into ``$BENCH_PROFILE_OUT``. cProfile slows Python calls
several times over: read the shares, not the absolute figures.

Used by ``python bench/subscriptions.py --profile DIR``.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import threading
import time
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_thread_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile(timer=time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()
    try:
        _thread_run(self)
    finally:
        profile.disable()


def _write(path: str) -> None:
    merged: pstats.Stats | None = None
    for profile in _profiles:
        profile.create_stats()
        stats: dict[Any, Any] = getattr(profile, "stats", {})
        if not stats:
            continue
        if merged is None:
            merged = pstats.Stats(profile)
        else:
            merged.add(profile)
    if merged is None:
        return
    merged.dump_stats(path + ".pstats")
    with open(path, "w") as out:
        report = pstats.Stats(path + ".pstats", stream=out)
        report.sort_stats("cumulative").print_stats(100)
        report.sort_stats("tottime").print_stats(60)


def main() -> int:
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    profile = cProfile.Profile(timer=time.thread_time)
    _profiles.append(profile)
    from webhooks_cli.main import main as webhooks

    profile.enable()
    try:
        return webhooks(["serve", "subscriptions"])
    finally:
        profile.disable()
        _write(os.environ["BENCH_PROFILE_OUT"])


if __name__ == "__main__":
    sys.exit(main())
