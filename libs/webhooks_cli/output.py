"""How results are shown: aligned text tables and key/value blocks for people, JSON for
scripts (every field, proto field names, so the shape is stable)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from webhooks_client.protos import message_dict


def print_json(value: Message | dict[str, Any] | list[Any]) -> None:
    data = message_dict(value) if isinstance(value, Message) else value
    print(json.dumps(data, indent=2, sort_keys=True))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table(headers, rows))


def print_fields(fields: Sequence[tuple[str, str]]) -> None:
    """A key/value block; a multi-line value continues indented under its key."""
    width = max((len(key) for key, _ in fields), default=0)
    for key, value in fields:
        first, *rest = value.split("\n") if value else [""]
        print(f"{key.ljust(width)}  {first}".rstrip())
        for more in rest:
            print(f"{' ' * width}  {more}")


def note(text: str) -> None:
    """Hints for a person (next page token, shown-once warnings) go to stderr, so stdout
    stays the result."""
    print(text, file=sys.stderr)
