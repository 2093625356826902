"""Logging of the services and the CLI: one plain key=value line per record on stderr."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable

from webhooks_config import Settings

FORMAT = "time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


def setup_logging(settings: Settings) -> None:
    """Configure the root logger from ``settings.log_level`` (idempotent)."""
    level = logging.getLevelName(settings.log_level)
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, "_webhooks", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._webhooks = True  # type: ignore[attr-defined]
        root.addHandler(handler)


LOG_EVERY_SECONDS = 60.0
MAX_KEYS = 1000  # kinds remembered at most: a hostile caller must not grow the table


class LogEvery:
    """At most one log line per kind (any hashable key) and ``seconds``, and how many
    were held back since the last one: a flood of the same bad input (garbage gRPC
    calls, poison messages) makes one line a minute, not one per occurrence.

    Pure bookkeeping (the caller logs), safe from any thread; ``clock`` is for tests.
    """

    def __init__(
        self,
        seconds: float = LOG_EVERY_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._logged_at: dict[Hashable, float] = {}
        self._held: Counter[Hashable] = Counter()

    def due(self, key: Hashable) -> int | None:
        """Counts one occurrence of ``key``: None when its line is held back, or, when a
        line is due now, how many were held back since the last one (0: none)."""
        now = self._clock()
        with self._lock:
            last = self._logged_at.get(key)
            if last is not None and now - last < self.seconds:
                self._held[key] += 1
                return None
            if last is None and len(self._logged_at) >= self._max_keys:
                # Forget kinds whose period is over: they would log at once anyway.
                for old in [k for k, t in self._logged_at.items() if now - t >= self.seconds]:
                    del self._logged_at[old]
                    self._held.pop(old, None)
                if len(self._logged_at) >= self._max_keys:
                    return None  # too many kinds at once: held back, not counted
            self._logged_at[key] = now
            return self._held.pop(key, 0)
