"""A moment as the console shows it: a ``<time>`` element whose text is a readable UTC time
(what a page without scripts shows) that console.js rewrites in the viewer's local time; and
a moment a person types (the Failed Events From and To), read in the viewer's time when
console.js sent the offset from UTC along, else in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from markupsafe import Markup


def local_time(ts: Timestamp) -> Markup:
    """``<time class="local" datetime="2026-12-07T23:03:00Z">7 Dec 2026, 23:03 UTC</time>``;
    empty for an unset timestamp."""
    if ts.seconds == 0 and ts.nanos == 0:
        return Markup("")
    moment = ts.ToDatetime()
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"{moment.day} {moment:%b %Y, %H:%M} UTC"
    return Markup('<time class="local" datetime="{}">{}</time>').format(iso, text)


# The widest offsets from UTC any zone uses: UTC-14:00 to UTC+14:00, in minutes.
OFFSET_BOUND = 14 * 60
_OFFSET = re.compile(r"[+-]?[0-9]{1,4}")


def utc_offset(text: str) -> int | None:
    """An offset from UTC in minutes east (``"330"`` for UTC+05:30, what console.js sends
    with the Failed Events filters), None when it is not one from -840 to 840."""
    value = text.strip()
    if not _OFFSET.fullmatch(value) or abs(int(value)) > OFFSET_BOUND:
        return None
    return int(value)


def offset_text(minutes: int) -> str:
    """330 -> ``UTC+05:30``, -90 -> ``UTC-01:30``, 0 -> ``UTC``."""
    if minutes == 0:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{hours:02}:{rest:02}"


def moment_at(text: str, minutes: int) -> datetime:
    """A datetime-local value (``2026-12-08T05:30``) read at this offset from UTC, or an RFC
    3339 time with its own offset, as an aware UTC datetime. ValueError when it is not a
    date and time, or falls outside the years 1 to 9999 in UTC (what a Timestamp holds)."""
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone(timedelta(minutes=minutes)))
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1 to 9999") from None
