"""``webhooks events publish``: platform events into the router (PublishEvents), one from
flags or many from ``--file`` (the format: args_events.PUBLISH_DESCRIPTION, its --help).

Events go in calls of at most --batch-size events and under the gRPC message limit; an
event whose data is over the catalogue's limit is refused before anything is sent. The
router validates each and answers per event; the exit code is 1 when any was rejected.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from webhooks.v1.messages_pb2 import PlatformEvent
from webhooks.v1.router_pb2 import (
    PUBLISH_STATUS_ACCEPTED,
    PUBLISH_STATUS_DUPLICATE,
    PUBLISH_STATUS_REJECTED,
    PublishEventsRequest,
    PublishResult,
)
from webhooks_catalogue import parse_activity_type, parse_channel
from webhooks_catalogue.limits import EVENT_DATA_BYTES
from webhooks_catalogue.samples import sample_event
from webhooks_cli.args_events import EVENT_FLAGS
from webhooks_cli.errors import CliError, UsageError, data_size_problem
from webhooks_cli.event_objects import (
    EventSyntaxError,
    build_event,
    catalogue_id,
    parse_status_change,
    read_events_file,
    whatsapp_status,
)
from webhooks_cli.output import note, print_json, print_table
from webhooks_cli.router_client import RouterClient
from webhooks_client.protos import message_dict

# Room for the request's own framing next to the events in one gRPC message.
MESSAGE_MARGIN_BYTES = 64 * 1024
STATUS_NAMES = {
    PUBLISH_STATUS_ACCEPTED: "accepted",
    PUBLISH_STATUS_DUPLICATE: "duplicate",
    PUBLISH_STATUS_REJECTED: "rejected",
}
RESULT_HEADERS = ("EVENT ID", "STATUS", "FIELD", "REASON")


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
            channel=_given("channel", given, lambda v: catalogue_id("channel", v, parse_channel)),
            activity_type=_given(
                "activity_type",
                given,
                lambda v: catalogue_id("activity_type", v, parse_activity_type),
            ),
            status_change=_given("status_change", given, parse_status_change),
            whatsapp_channel=given.get("whatsapp_channel"),
            whatsapp_status=_given("whatsapp_status", given, whatsapp_status),
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


def check_data_sizes(events: Sequence[PlatformEvent], path: str | None) -> None:
    """Refuse, before anything is sent, an event whose data is over the catalogue's limit
    (the router would refuse it, or the call fail whole as too large to carry)."""
    for number, event in enumerate(events, start=1):
        size = len(event.data_json)
        if size > EVENT_DATA_BYTES:
            where = f"--file {path}: event {number}: " if path is not None else ""
            raise UsageError(f"events publish: {where}{data_size_problem(size)}")


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
    check_data_sizes(events, args.file)
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
