"""Times on the command line: RFC 3339, ``now``, or a relative "ago" form.

Accepted forms (``parse_time``):

- RFC 3339 with a zone: ``2024-05-01T09:30:00Z``, ``2024-05-01T11:30:00+02:00``,
  ``2024-05-01 09:30:00.250Z`` (a space for the ``T`` is read too);
- ``now``;
- a duration ago: ``90s``, ``30m``, ``2h``, ``1d``, ``1w``, ``1h30m``, optionally followed
  by ``ago`` (``"2h ago"``) — that long before now.

A time without a zone is refused rather than guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_RELATIVE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
TIME_HELP = "RFC 3339 (2024-05-01T09:30:00Z), 'now', or a duration ago: 90s, 30m, 2h, 1d, 1h30m"


class TimeSyntaxError(ValueError):
    """A time that cannot be read; the message says which forms are accepted."""


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> 1 h 30 min; units s, m, h, d, w."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or not _RELATIVE.fullmatch(compact):
        raise TimeSyntaxError(f"{text!r} is not a duration like 90s, 30m, 2h, 1d or 1h30m")
    seconds = sum(float(n) * UNITS[unit] for n, unit in _PART.findall(compact))
    return timedelta(seconds=seconds)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from one of the accepted forms (see the module docstring)."""
    now = now or datetime.now(UTC)
    given = text.strip()
    lowered = given.lower()
    if lowered == "now":
        return now
    relative = lowered.removesuffix("ago").strip()
    if relative and _RELATIVE.fullmatch(relative.replace(" ", "")):
        return now - parse_duration(relative)
    try:
        parsed = datetime.fromisoformat(given.replace("z", "Z"))
    except ValueError:
        raise TimeSyntaxError(f"{text!r} is not a time: {TIME_HELP}") from None
    if parsed.tzinfo is None:
        raise TimeSyntaxError(f"{text!r} has no time zone: add Z for UTC or an offset like +02:00")
    return parsed.astimezone(UTC)
