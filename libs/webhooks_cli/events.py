"""``webhooks events publish``: platform events into the router (PublishEvents).

One event from flags, or many from ``--file`` (a JSON array, or JSON lines, of event
objects). The object's fields are PlatformEvent's in snake_case, with ``data`` a JSON
object instead of ``data_json`` bytes::

    {"event_id": "e-1", "entity": "Object", "trigger": "OnNewActivity",
     "occurred_at": "2024-05-01T09:30:00Z", "channel": "WhatsApp", "subchannel": "1205",
     "activity_type": "StatusChange", "status_change": "Open>Resolved",
     "data": {"Id": 48213377}}

``event_id`` defaults to a new UUID, ``occurred_at`` to now, ``tenant`` to the caller's
(the token's or --tenant); channel, activity type and statuses are ids or catalogue names;
``status_change`` is ``"FROM>TO"`` / ``">TO"`` or ``{"from_status": .., "to_status": ..}``.
Events go in calls of at most --batch-size (1,000) events and under the gRPC message limit.
The router validates each and answers per event; the exit code is 1 when any was rejected.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from webhooks.v1.common_pb2 import StatusChange
from webhooks.v1.messages_pb2 import PlatformEvent
from webhooks.v1.router_pb2 import (
    PUBLISH_STATUS_ACCEPTED,
    PUBLISH_STATUS_DUPLICATE,
    PUBLISH_STATUS_REJECTED,
    PublishEventsRequest,
    PublishResult,
)
from webhooks_catalogue import (
    parse_activity_type,
    parse_channel,
    parse_object_status,
    parse_whatsapp_status,
)
from webhooks_catalogue.samples import sample_event
from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.output import note, print_json, print_table
from webhooks_cli.router_client import RouterClient
from webhooks_cli.times import TIME_HELP, TimeSyntaxError, parse_time
from webhooks_client.protos import message_dict, timestamp

MAX_BATCH = 1000
# Room for the request's own framing next to the events in one gRPC message.
MESSAGE_MARGIN_BYTES = 64 * 1024
FIELDS = (
    *("event_id", "tenant", "entity", "trigger", "occurred_at", "channel", "subchannel"),
    *("activity_type", "status_change", "whatsapp_channel", "whatsapp_status", "data"),
)
STATUS_NAMES = {
    PUBLISH_STATUS_ACCEPTED: "accepted",
    PUBLISH_STATUS_DUPLICATE: "duplicate",
    PUBLISH_STATUS_REJECTED: "rejected",
}
RESULT_HEADERS = ("EVENT ID", "STATUS", "FIELD", "REASON")
# Flags that describe one event: not allowed together with --file.
EVENT_FLAGS = (
    *("entity", "trigger", "event_id", "occurred_at", "channel", "subchannel"),
    *("activity_type", "status_change", "whatsapp_channel", "whatsapp_status"),
    *("data", "data_file", "sample"),
)


class EventSyntaxError(ValueError):
    """An event description that cannot be turned into a PlatformEvent."""


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EventSyntaxError(f"{name}: expected a string, got {json.dumps(value)}")
    return value


def _catalogue_id(name: str, value: Any, parse: Callable[[str | int], int]) -> int:
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
    from_status = 0 if any_source else _catalogue_id("status_change", source, parse_object_status)
    to_status = _catalogue_id("status_change", target, parse_object_status)
    return StatusChange(from_status=from_status, to_status=to_status)


def _whatsapp_status(value: Any) -> str:
    try:
        return parse_whatsapp_status(_text("whatsapp_status", value))
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
    event.event_id = _text("event_id", fields.get("event_id") or new_id())
    for name in ("tenant", "entity", "trigger", "subchannel", "whatsapp_channel"):
        if fields.get(name) is not None:
            setattr(event, name, _text(name, fields[name]))
    occurred = fields.get("occurred_at")
    try:
        when = parse_time(_text("occurred_at", occurred), now) if occurred else None
    except TimeSyntaxError as err:
        raise EventSyntaxError(f"occurred_at: {err}") from None
    event.occurred_at.CopyFrom(timestamp(when or now or datetime.now(UTC)))
    if fields.get("channel") is not None:
        event.channel = _catalogue_id("channel", fields["channel"], parse_channel)
    if fields.get("activity_type") is not None:
        event.activity_type = _catalogue_id(
            "activity_type", fields["activity_type"], parse_activity_type
        )
    if fields.get("status_change") is not None:
        event.status_change.CopyFrom(parse_status_change(fields["status_change"]))
    if fields.get("whatsapp_status") is not None:
        event.whatsapp_status = _whatsapp_status(fields["whatsapp_status"])
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


def _read_data(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.data is not None:
        raw, source = args.data, "--data"
    elif args.data_file is not None:
        source = f"--data-file {args.data_file}"
        try:
            raw = (
                sys.stdin.read()
                if args.data_file == "-"
                else Path(args.data_file).read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise UsageError(f"{source}: {reason}") from None
    else:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UsageError(f"{source}: not valid JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: must be a JSON object, not {type(data).__name__}")
    return data


_T = TypeVar("_T")


def _sample_fields(entity: str, trigger: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The event fields and data of the catalogue's sample event of this trigger, made to
    follow the event fields given (a "read" status, another activity type, a channel)."""
    try:
        sample = sample_event(
            entity,
            trigger,
            channel=_given("channel", given, lambda v: _catalogue_id("channel", v, parse_channel)),
            activity_type=_given(
                "activity_type",
                given,
                lambda v: _catalogue_id("activity_type", v, parse_activity_type),
            ),
            status_change=_given("status_change", given, parse_status_change),
            whatsapp_channel=given.get("whatsapp_channel"),
            whatsapp_status=_given("whatsapp_status", given, _whatsapp_status),
        )
    except EventSyntaxError as err:
        raise UsageError(f"events publish: {err}") from None
    except ValueError as err:
        raise UsageError(f"--sample: {err}") from None
    fields: dict[str, Any] = {"data": json.loads(sample.data_json)}
    if sample.HasField("channel"):
        fields["channel"] = sample.channel
    if sample.subchannel:
        fields["subchannel"] = sample.subchannel
    if sample.HasField("activity_type"):
        fields["activity_type"] = sample.activity_type
    if sample.HasField("status_change"):
        change = sample.status_change
        fields["status_change"] = {
            "from_status": change.from_status,
            "to_status": change.to_status,
        }
    for name in ("whatsapp_channel", "whatsapp_status"):
        if getattr(sample, name):
            fields[name] = getattr(sample, name)
    return fields


def _given(name: str, given: Mapping[str, Any], parse: Callable[[Any], _T]) -> _T | None:
    return None if given.get(name) is None else parse(given[name])


def event_from_args(args: argparse.Namespace, *, now: datetime | None = None) -> PlatformEvent:
    """The one event the flags describe; with --sample, the sample fills what is not given."""
    if not args.entity or not args.trigger:
        raise UsageError("events publish: --entity and --trigger are required (or --file)")
    given = {
        "event_id": args.event_id,
        "entity": args.entity,
        "trigger": args.trigger,
        "occurred_at": args.occurred_at,
        "channel": args.channel,
        "subchannel": args.subchannel,
        "activity_type": args.activity_type,
        "status_change": args.status_change,
        "whatsapp_channel": args.whatsapp_channel,
        "whatsapp_status": args.whatsapp_status,
        "data": _read_data(args),
    }
    fields = _sample_fields(args.entity, args.trigger, given) if args.sample else {}
    fields.update({key: value for key, value in given.items() if value is not None})
    try:
        return build_event(fields, now=now)
    except EventSyntaxError as err:
        raise UsageError(f"events publish: {err}") from None


def batches(
    events: Sequence[PlatformEvent], max_count: int, max_bytes: int
) -> Iterator[list[PlatformEvent]]:
    """Consecutive runs of at most ``max_count`` events and about ``max_bytes`` encoded."""
    batch: list[PlatformEvent] = []
    size = 0
    for event in events:
        event_size = event.ByteSize() + 8  # field tag and length prefix
        if batch and (len(batch) >= max_count or size + event_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch


def result_row(result: PublishResult) -> tuple[str, str, str, str]:
    status = STATUS_NAMES.get(result.status, "unspecified")
    return (result.event_id, status, result.field, result.reason)


def publish(args: argparse.Namespace, client: RouterClient) -> int:
    if args.file is not None:
        given = [flag for flag in EVENT_FLAGS if getattr(args, flag) not in (None, False)]
        if given:
            raise UsageError(
                f"--file and --{given[0].replace('_', '-')}: the file describes every event"
            )
        events = read_events_file(args.file)
    else:
        events = [event_from_args(args)]
    if args.batch_size < 1:
        raise UsageError("--batch-size: must be at least 1")
    max_bytes = client.settings.grpc_max_message_bytes - MESSAGE_MARGIN_BYTES
    results: list[PublishResult] = []
    for batch in batches(events, args.batch_size, max_bytes):
        try:
            response = client.call("PublishEvents", PublishEventsRequest(events=batch))
        except CliError as err:
            if results:
                note(f"the first {len(results)} events were sent; the rest were not")
            raise CliError(err.message, err.exit_code) from None
        results.extend(response.results)
    rejected = sum(1 for r in results if r.status == PUBLISH_STATUS_REJECTED)
    if args.json:
        print_json({"results": [message_dict(r) for r in results]})
    else:
        print_table(RESULT_HEADERS, [result_row(r) for r in results])
        counts = {name: 0 for name in STATUS_NAMES.values()}
        for r in results:
            counts[STATUS_NAMES.get(r.status, "accepted")] += 1
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        note(f"{len(results)} event{'s' if len(results) != 1 else ''}: {summary}")
    return 1 if rejected else 0


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parent = commands.add_parser(
        "events",
        help="platform events: publish them into the router",
        parents=[common],
        allow_abbrev=False,
    )
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser = sub.add_parser(
        "publish",
        help="publish one event (flags) or many (--file) to the router",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        allow_abbrev=False,
    )
    parser.set_defaults(router_handler=publish)
    many = parser.add_argument_group("many events")
    many.add_argument(
        "--file",
        metavar="PATH",
        help="a JSON array or JSON lines of event objects ('-': stdin); see above",
    )
    many.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH,
        metavar="N",
        help=f"events per call (default {MAX_BATCH}, the router's default limit)",
    )
    one = parser.add_argument_group("one event")
    one.add_argument("--entity", help="Object, User, Tag, WhatsApp, ...")
    one.add_argument("--trigger", help="OnNew, OnNewActivity, ...")
    one.add_argument("--event-id", metavar="ID", help="deduplicates (default: a new UUID)")
    one.add_argument("--occurred-at", metavar="TIME", help=f"default now; {TIME_HELP}")
    one.add_argument("--channel", metavar="C", help="channel id or name")
    one.add_argument("--subchannel", metavar="S")
    one.add_argument("--activity-type", metavar="A", help="activity type id or name")
    one.add_argument(
        "--status-change", metavar="FROM>TO", help="e.g. Open>Resolved, or >Resolved (from any)"
    )
    one.add_argument("--whatsapp-channel", metavar="X")
    one.add_argument("--whatsapp-status", metavar="S", help="sent, delivered, read or failed")
    data = one.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="JSON", help="the event's data, a JSON object")
    data.add_argument("--data-file", metavar="PATH", help="read the data from PATH ('-': stdin)")
    data.add_argument(
        "--sample",
        action="store_true",
        help="the catalogue's sample data (and sample values for the fields not given)",
    )
