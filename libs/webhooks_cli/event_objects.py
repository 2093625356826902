"""Event objects (the ``events publish --file`` format, see args_events.py) to
PlatformEvents: the form only (types, catalogue names, times); whether an event fits its
trigger is the router's verdict."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webhooks.v1.common_pb2 import StatusChange
from webhooks.v1.messages_pb2 import PlatformEvent
from webhooks_catalogue import (
    parse_activity_type,
    parse_channel,
    parse_object_status,
    parse_whatsapp_status,
)
from webhooks_cli.errors import UsageError
from webhooks_cli.times import TimeSyntaxError, parse_time
from webhooks_client.protos import timestamp

FIELDS = (
    *("event_id", "tenant", "entity", "trigger", "occurred_at", "channel", "subchannel"),
    *("activity_type", "status_change", "whatsapp_channel", "whatsapp_status", "data"),
)


class EventSyntaxError(ValueError):
    """An event description that cannot be turned into a PlatformEvent."""


def text_field(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EventSyntaxError(f"{name}: expected a string, got {json.dumps(value)}")
    return value


def catalogue_id(name: str, value: Any, parse: Callable[[str | int], int]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EventSyntaxError(f"{name}: expected an id or a name, got {json.dumps(value)}")
    try:
        return parse(value)
    except ValueError as err:
        raise EventSyntaxError(f"{name}: {err}") from None


def parse_status_change(value: Any) -> StatusChange:
    """``"FROM>TO"``, ``">TO"``, ``"TO"`` (``->`` read too; from any/*/0 = any status) or
    ``{"from_status": .., "to_status": ..}`` (``from`` / ``to`` read too)."""
    if isinstance(value, Mapping):
        unknown = set(value) - {"from_status", "to_status", "from", "to"}
        if unknown:
            raise EventSyntaxError(f"status_change: unknown keys {', '.join(sorted(unknown))}")
        source = value.get("from_status", value.get("from", 0))
        target = value.get("to_status", value.get("to"))
        if target is None:
            raise EventSyntaxError("status_change: to_status is required")
    elif isinstance(value, str):
        source, arrow, target = value.replace("->", ">").rpartition(">")
        if not arrow:
            source, target = "", value
        if not target.strip():
            raise EventSyntaxError(f"status_change: {value!r} needs a target: FROM>TO or >TO")
    else:
        raise EventSyntaxError(f"status_change: expected 'FROM>TO', got {json.dumps(value)}")
    any_source = str(source).strip().casefold() in ("", "any", "*", "0")
    from_status = 0 if any_source else catalogue_id("status_change", source, parse_object_status)
    to_status = catalogue_id("status_change", target, parse_object_status)
    return StatusChange(from_status=from_status, to_status=to_status)


def whatsapp_status(value: Any) -> str:
    try:
        return parse_whatsapp_status(text_field("whatsapp_status", value))
    except ValueError as err:
        if isinstance(err, EventSyntaxError):
            raise
        raise EventSyntaxError(f"whatsapp_status: {err}") from None


def build_event(
    fields: Mapping[str, Any],
    *,
    now: datetime | None = None,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> PlatformEvent:
    """A PlatformEvent from an event object (the --file format; flags build one too).

    Only the form is checked here (types, catalogue names, times); whether the event fits
    its trigger is the router's verdict, returned per event.
    """
    unknown = [key for key in fields if key not in FIELDS]
    if unknown:
        raise EventSyntaxError(
            f"unknown field {unknown[0]!r}; fields: {', '.join(FIELDS)} (data is an object)"
        )
    event = PlatformEvent()
    event.event_id = text_field("event_id", fields.get("event_id") or new_id())
    for name in ("tenant", "entity", "trigger", "subchannel", "whatsapp_channel"):
        if fields.get(name) is not None:
            setattr(event, name, text_field(name, fields[name]))
    occurred = fields.get("occurred_at")
    try:
        when = parse_time(text_field("occurred_at", occurred), now) if occurred else None
    except TimeSyntaxError as err:
        raise EventSyntaxError(f"occurred_at: {err}") from None
    event.occurred_at.CopyFrom(timestamp(when or now or datetime.now(UTC)))
    if fields.get("channel") is not None:
        event.channel = catalogue_id("channel", fields["channel"], parse_channel)
    if fields.get("activity_type") is not None:
        event.activity_type = catalogue_id(
            "activity_type", fields["activity_type"], parse_activity_type
        )
    if fields.get("status_change") is not None:
        event.status_change.CopyFrom(parse_status_change(fields["status_change"]))
    if fields.get("whatsapp_status") is not None:
        event.whatsapp_status = whatsapp_status(fields["whatsapp_status"])
    data = fields.get("data", {})
    if not isinstance(data, dict):
        raise EventSyntaxError(f"data: must be a JSON object, not {type(data).__name__}")
    event.data_json = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return event


def parse_events_text(text: str) -> list[dict[str, Any]]:
    """The event objects of a --file: a JSON array, or JSON lines (blank lines skipped)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise EventSyntaxError(
                f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
            ) from None
        if not isinstance(items, list):
            raise EventSyntaxError("expected a JSON array of event objects")
        where = [f"event {n}" for n in range(1, len(items) + 1)]
    else:
        items, where = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise EventSyntaxError(
                    f"line {number}: not valid JSON: {err.msg} at column {err.colno}"
                ) from None
            where.append(f"line {number}")
    for item, place in zip(items, where, strict=True):
        if not isinstance(item, dict):
            raise EventSyntaxError(f"{place}: expected an event object, got {type(item).__name__}")
    if not items:
        raise EventSyntaxError("no events in it")
    return items


def read_events_file(path: str, *, now: datetime | None = None) -> list[PlatformEvent]:
    """Every event of a --file ('-': stdin), or UsageError naming the file and the event."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UsageError(f"--file {path}: {reason}") from None
    try:
        objects = parse_events_text(text)
    except EventSyntaxError as err:
        raise UsageError(f"--file {path}: {err}") from None
    is_array = text.lstrip().startswith("[")
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    events = []
    for index, fields in enumerate(objects):
        try:
            events.append(build_event(fields, now=now))
        except EventSyntaxError as err:
            place = f"event {index + 1}" if is_array else f"line {lines[index]}"
            raise UsageError(f"--file {path}: {place}: {err}") from None
    return events
