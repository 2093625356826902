"""Protobuf values as the clients show and send them: a message as plain data (every field,
proto field names, so the shape is stable), a Timestamp as text, a datetime as a Timestamp."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp


def message_dict(message: Message) -> dict[str, Any]:
    # Fields at their default value are printed too: a script reading "active" must see
    # false, not a missing key.
    return MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def timestamp_text(ts: Timestamp) -> str:
    if ts.seconds == 0 and ts.nanos == 0:
        return ""
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
