"""How results are shown: aligned text tables and key/value blocks for people, JSON for
scripts (every field, proto field names, so the shape is stable)."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Sequence
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from webhooks_client.protos import message_dict
from webhooks_client.subscription_text import whole_numbers

# Proto JSON writes these as strings (JavaScript's numbers stop at 2**53); a script
# reading the CLI wants numbers, and Python's json writes any int exactly.
WIDE_INTEGERS = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
WIDE_WRAPPERS = frozenset({"google.protobuf.Int64Value", "google.protobuf.UInt64Value"})
# Struct numbers are floats: 300, not 300.0, as the tables show them.
STRUCT_TYPES = frozenset({"google.protobuf.Struct", "google.protobuf.Value"})
BASE64_SUFFIX = "_base64"  # a bytes field that is not UTF-8 text keeps base64 under this name


def json_data(message: Message) -> dict[str, Any]:
    """A message as the CLI's --json shows it: every field under its proto name, 64-bit
    integers as numbers, and bytes (payloads, request bodies, response snippets) as their
    text when it is UTF-8, else as base64 under ``<field>_base64``."""
    # The upb Descriptor the stubs also name has the same interface.
    return _message(cast(Descriptor, message.DESCRIPTOR), message_dict(message))


def _message(descriptor: Descriptor, data: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key)
        if field is None:  # not a field (an Any's @type): as proto JSON wrote it
            shown[key] = value
        elif _is_map(field):
            value_field = _message_type(field).fields_by_name["value"]
            items = list(value.items())
            texts = _texts(value_field, [item for _, item in items])
            if texts is None:
                shown[key + BASE64_SUFFIX] = value
            else:
                shown[key] = dict(zip((k for k, _ in items), texts, strict=True))
        else:
            repeated = field.is_repeated
            texts = _texts(field, value if repeated else [value])
            if texts is None:
                shown[key + BASE64_SUFFIX] = value
            else:
                shown[key] = texts if repeated else texts[0]
    return shown


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, field.full_name  # called for message fields only
    return field.message_type


def _texts(field: FieldDescriptor, values: list[Any]) -> list[Any] | None:
    """The values of one field as shown; None when they are bytes and one is not text."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        decoded = [_utf8(value) for value in values]
        return None if any(text is None for text in decoded) else decoded
    return [_value(field, value) for value in values]


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type in WIDE_INTEGERS:
        return int(value)
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return value
    name = _message_type(field).full_name
    if name in WIDE_WRAPPERS:
        return int(value)
    if name in STRUCT_TYPES or name == "google.protobuf.ListValue":
        return whole_numbers(value)
    if name.startswith("google.protobuf."):  # Timestamp, Duration, FieldMask: as written
        return value
    return _message(_message_type(field), value)


def _utf8(encoded: str) -> str | None:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _plain(value: Any) -> Any:
    """Messages anywhere in a dict or list as json_data shows them."""
    if isinstance(value, Message):
        return json_data(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def print_json(value: Message | dict[str, Any] | list[Any]) -> None:
    print(json.dumps(_plain(value), indent=2, sort_keys=True))


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
