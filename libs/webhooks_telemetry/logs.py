"""Logging of the services and the CLI: one plain key=value line per record on stderr."""

from __future__ import annotations

import logging
import sys

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
