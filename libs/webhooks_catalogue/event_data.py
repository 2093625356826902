"""An event's data (``data_json``): the JSON object every payload is shaped from.

One set of rules wherever an event's data enters the platform (PublishEvents and events put
straight onto EVENTS, at the router; SendTestEvent, at the sender), so data that one entry
admits can be delivered from every other: valid UTF-8 JSON, an object, at most
``EVENT_DATA_BYTES``, no NaN or Infinity (Python's json reads them, receivers' parsers do
not), no number too large for a float (``1e400`` would be sent as ``Infinity``), at most
``EVENT_DATA_DEPTH`` levels of objects and arrays, no lone UTF-16 surrogate (it cannot be
sent as UTF-8). Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from webhooks_catalogue.limits import EVENT_DATA_BYTES, EVENT_DATA_DEPTH

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class EventDataError(ValueError):
    """Data that breaks a rule; the message completes "data_json ..." ("is not valid JSON")."""


def parse_event_data(raw: bytes) -> dict[str, Any]:
    """The data as a dict, or EventDataError saying which rule it breaks."""
    if not raw:
        _refuse("is required (a JSON object)")
    if len(raw) > EVENT_DATA_BYTES:
        _refuse(f"is {len(raw)} bytes; at most {EVENT_DATA_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        _refuse(f"is not valid UTF-8 (byte {error.start})")
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        _refuse(f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
    except ValueError as error:  # NaN, Infinity, a number beyond a float
        _refuse(f"is not valid JSON: {error}")
    except RecursionError:
        _refuse(f"is nested too deeply (at most {EVENT_DATA_DEPTH} levels)")
    if not isinstance(data, dict):
        _refuse(f"must be a JSON object, not {type(data).__name__}")
    # Fewer brackets than the bound cannot nest beyond it: counting them runs at C speed,
    # so the walk is paid only by data that has many.
    if text.count("{") + text.count("[") > EVENT_DATA_DEPTH and _depth(data) > EVENT_DATA_DEPTH:
        _refuse(f"is nested too deeply (at most {EVENT_DATA_DEPTH} levels)")
    if _SURROGATE_ESCAPE.search(text):
        _check_encodable(data)
    return data


def _refuse(reason: str) -> NoReturn:
    raise EventDataError(reason)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:32]} is too large for a float")
    return number


# Built once rather than per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _depth(data: Any) -> int:
    """Levels of objects and arrays, iteratively (the data may be deeper than the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > EVENT_DATA_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_encodable(data: dict[str, Any]) -> None:
    # Rare path (the text holds a \uD8xx-\uDFxx escape): paired surrogates decode to one
    # character and are fine; a lone one cannot be sent as UTF-8 and would fail shaping.
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        _refuse("contains a lone UTF-16 surrogate escape (not valid Unicode)")
