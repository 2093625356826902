"""Reading what a browser sends (query strings and forms): numbers, choices and dates that
cannot be used are a ``BadValue`` naming the input, which the console answers with a 400
page, never a 500.

Anything reaches these functions (a URL is typed, a form can be forged): a number has
ASCII digits only (``str.isdigit`` admits "²", which ``int`` refuses), and a bound that
fits the protobuf field it goes into (an int32 takes no 20-digit number).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime

INT32_MAX = 2**31 - 1
_WHOLE = re.compile(r"-?[0-9]{1,12}")


class BadValue(ValueError):
    """A value that cannot be used; the message names the input and what it must be."""


def whole_number(name: str, text: str, low: int = 0, high: int = INT32_MAX) -> int:
    """``text`` as an int from ``low`` to ``high``."""
    value = text.strip()
    if not _WHOLE.fullmatch(value) or not low <= int(value) <= high:
        raise BadValue(f"{name}: a whole number from {low} to {high}")
    return int(value)


def number_or(text: str | None, default: int, low: int = -INT32_MAX, high: int = INT32_MAX) -> int:
    """``text`` as an int within the bounds, else ``default``: for inputs the console's own
    pages fill (hidden counters, select options), where only a forged form differs."""
    value = (text or "").strip()
    if not _WHOLE.fullmatch(value) or not low <= int(value) <= high:
        return default
    return int(value)


def choice(name: str, text: str, choices: Collection[str]) -> str:
    if text not in choices:
        raise BadValue(f"{name}: one of {', '.join(choices)}")
    return text


def date_time(name: str, text: str) -> datetime | None:
    """A datetime-local value (read as UTC) or RFC 3339, within the years 1 to 9999 in UTC
    (what a protobuf Timestamp holds); None when empty."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadValue(f"{name}: a date and time from year 1 to 9999") from None
