"""``webhooks failures ...``: the organisation's failed webhook deliveries (the failures
service): list them with filters, show one (Overview, Payload, Trial History), send them
again (retry) and rebuild the view (operators).

The failures service is reached at WEBHOOKS_FAILURES_ADDR (``settings.address("failures")``)
with the same token and tenant as every command; ``--address`` still names the
subscriptions service.

``retry`` takes one delivery id, or filter flags: then it first asks how many match (a dry
run) and, unless ``--yes`` is given, asks for confirmation on a terminal. Without
``--state`` a filtered retry sends the FAILED events only (retrying ones have an attempt
scheduled, recovered ones were delivered).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from webhooks.v1.failures_pb2 import (
    FailedEvent,
    FailedEventDetails,
    FailedEventFilter,
    FailedEventState,
    GetFailedEventRequest,
    ListFailedEventsRequest,
    ListFailedEventsResponse,
    RebuildReadModelRequest,
    RedeliverFailedEventsRequest,
    RedeliverFailedEventsResponse,
)
from webhooks.v1.messages_pb2 import AttemptRecord
from webhooks_catalogue import parse_channel
from webhooks_catalogue.failure_classes import failure_name
from webhooks_catalogue.vocabulary import (
    channel_label,
    entity_label,
    failure_class_label,
    trigger_label,
)
from webhooks_cli.args_failures import ERROR_CODE_HELP as ERROR_CODE_HELP
from webhooks_cli.client import Client
from webhooks_cli.errors import UsageError
from webhooks_cli.output import note, print_fields, print_json, print_table
from webhooks_cli.times import TimeSyntaxError, parse_time
from webhooks_client.failure_text import (
    HISTORY_HEADERS,
    STATES,
    history_row,
    one_line,
    overview_fields,
    payload_text,
    state_text,
)
from webhooks_client.protos import timestamp, timestamp_text

LIST_HEADERS = (
    *("WEBHOOK", "ENTITY", "TRIGGER", "LAST ATTEMPT", "CHANNEL", "SUBCHANNEL"),
    *("ERROR", "MESSAGE", "RETRIES", "STATE", "DELIVERY ID"),
)
REBUILD_TIMEOUT_SECONDS = 3600.0  # a rebuild replays all of ATTEMPTS
RECOVERED = FailedEventState.FAILED_EVENT_STATE_RECOVERED
RECOVERED_SHOWN = 10  # recovered deliveries a filtered retry names before asking


def failed_event_row(event: FailedEvent) -> tuple[str, ...]:
    return (
        event.subscription_name or event.subscription_id,
        entity_label(event.entity),
        trigger_label(event.trigger),
        timestamp_text(event.last_attempt_at),
        channel_label(event.channel) if event.HasField("channel") else "-",
        event.subchannel or "-",
        error_text(event),
        one_line(event.error_message) or "-",
        str(event.retry_attempts),
        state_text(event.state),
        event.delivery_id,
    )


def error_text(event: FailedEvent) -> str:
    """The error code with its failure class's name beside it: ``500 (SOAP fault)``,
    ``timeout (Timed out)``; a bare HTTP status as it is."""
    name = failure_name(event.failure_class)
    code = event.error_code or name or "-"
    if not name or name == "http_status":
        return code
    label = failure_class_label(name)
    return label if code == label else f"{code} ({label})"


def overview_rows(event: FailedEvent) -> list[tuple[str, str]]:
    """The Overview's fields, catalogue values in display names."""
    shown = {
        "entity": entity_label(event.entity),
        "trigger": trigger_label(event.trigger),
        "channel": channel_label(event.channel) if event.HasField("channel") else "-",
        "error code": error_text(event),
    }
    return [(key, shown.get(key, value)) for key, value in overview_fields(event)]


def attempt_row(record: AttemptRecord) -> tuple[str, ...]:
    """A Trial History row, its CLASS column in display names."""
    row = list(history_row(record))
    name = failure_name(record.failure_class)
    row[HISTORY_HEADERS.index("CLASS")] = failure_class_label(name) if name else "-"
    return tuple(row)


def _time(flag: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, now)
    except TimeSyntaxError as err:
        raise UsageError(f"{flag}: {err}") from None


def filter_of(args: argparse.Namespace) -> FailedEventFilter:
    """The filter flags as a FailedEventFilter (the service validates the values)."""
    now = datetime.now(UTC)
    found = FailedEventFilter(
        subscription_ids=args.subscription or [],
        entity=args.entity or "",
        trigger=args.trigger or "",
        subchannel=args.subchannel or "",
        error_codes=[c.strip() for v in args.error_code or [] for c in v.split(",") if c.strip()],
        states=[STATES[s] for v in args.state or [] for s in _states(v)],
        message_contains=args.message or "",
    )
    if args.min_retries is not None:
        found.min_retry_attempts = args.min_retries
    if args.channel is not None:
        try:
            found.channel = parse_channel(args.channel)
        except ValueError as err:
            raise UsageError(f"--channel: {err}") from None
    since, until = _time("--since", args.since, now), _time("--until", args.until, now)
    if since is not None:
        found.since.CopyFrom(timestamp(since))
    if until is not None:
        found.until.CopyFrom(timestamp(until))
    return found


def _states(value: str) -> list[str]:
    names = [s.strip().lower() for s in value.split(",") if s.strip()]
    for name in names:
        if name not in STATES:
            raise UsageError(f"--state: unknown state {name!r}; one of {', '.join(STATES)}")
    return names


def list_(args: argparse.Namespace, client: Client) -> int:
    request = ListFailedEventsRequest(
        filter=filter_of(args), page_size=args.page_size or 0, page_token=args.page_token or ""
    )
    with client.other("failures") as failures:
        result: ListFailedEventsResponse = failures.pages(
            "ListFailedEvents", request, "failed_events", every=args.all
        )
    if args.json:
        print_json(result)
        return 0
    print_table(LIST_HEADERS, [failed_event_row(e) for e in result.failed_events])
    if result.next_page_token:
        note(f"more: --page-token {result.next_page_token} (or --all)")
    return 0


def show(args: argparse.Namespace, client: Client) -> int:
    with client.other("failures") as failures:
        details: FailedEventDetails = failures.call(
            "GetFailedEvent", GetFailedEventRequest(delivery_id=args.id)
        )
    if args.json:
        print_json(details)
        return 0
    print("Overview")
    print_fields(overview_rows(details.overview))
    content_type = details.payload_content_type or "unknown content type"
    print(f"\nPayload ({content_type})")
    print(payload_text(details.payload, details.payload_content_type))
    print("\nTrial History")
    print_table(HISTORY_HEADERS, [attempt_row(r) for r in details.trial_history])
    return 0


def _has_filter(args: argparse.Namespace) -> bool:
    flags = ("subscription", "entity", "trigger", "channel", "subchannel", "error_code")
    return any(getattr(args, f) for f in (*flags, "state", "since", "until", "message")) or (
        args.channel is not None or args.min_retries is not None
    )


def retry(args: argparse.Namespace, client: Client) -> int:
    if args.id and _has_filter(args):
        raise UsageError("retry: give a delivery ID or filter flags, not both")
    if not args.id and not _has_filter(args):
        raise UsageError(
            "retry: give a delivery ID, or filter flags (--subscription, --state failed, ...) "
            "to send every matching failed event again"
        )
    if args.id:
        request = RedeliverFailedEventsRequest(delivery_id=args.id, dry_run=args.dry_run)
    else:
        request = RedeliverFailedEventsRequest(filter=filter_of(args), dry_run=True)
    with client.other("failures") as failures:
        if not args.dry_run and not _resend_recovered(args, _recovered(args, failures)):
            note("nothing was sent")
            return 1
        if args.id or args.dry_run:
            return _report(args, failures.call("RedeliverFailedEvents", request), args.dry_run)
        # How many first: a filter can match thousands, and that deserves a yes.
        counted: RedeliverFailedEventsResponse = failures.call("RedeliverFailedEvents", request)
        if counted.matched == 0:
            return _report(args, counted, dry=True)
        if not _confirmed(args, counted.matched):
            note("nothing was sent")
            return 1
        request.dry_run = False
        response = failures.call("RedeliverFailedEvents", request)
    return _report(args, response, dry=False)


def _recovered(args: argparse.Namespace, failures: Client) -> list[str]:
    """The deliveries the retry would send that already recovered (were delivered): the
    one ID's, or of a filter that asks for recovered ones the first RECOVERED_SHOWN (and
    "..." when there are more)."""
    if args.id:
        request = GetFailedEventRequest(delivery_id=args.id)
        details: FailedEventDetails = failures.call("GetFailedEvent", request)
        return [args.id] if details.overview.state == RECOVERED else []
    wanted = filter_of(args)
    if RECOVERED not in wanted.states:
        return []
    del wanted.states[:]
    wanted.states.append(RECOVERED)
    listing = ListFailedEventsRequest(filter=wanted, page_size=RECOVERED_SHOWN)
    page: ListFailedEventsResponse = failures.call("ListFailedEvents", listing)
    found = [event.delivery_id for event in page.failed_events]
    return [*found, "..."] if page.next_page_token else found


def _resend_recovered(args: argparse.Namespace, recovered: list[str]) -> bool:
    """Whether to send deliveries that already recovered again (each would arrive twice):
    --force, else a yes on a terminal; without a terminal, a UsageError naming them."""
    if not recovered or args.force:
        return True
    what = f"already recovered (delivered): {', '.join(recovered)}"
    if not sys.stdin.isatty():
        raise UsageError(f"retry: {what}; to deliver again anyway, confirm with --force")
    answer = input(f"{what}.\nSend again anyway? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _confirmed(args: argparse.Namespace, matched: int) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"retry: {matched} failed events match; stdin is not a terminal, confirm with --yes"
        )
    answer = input(f"Send {matched} failed events again? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _report(args: argparse.Namespace, response: RedeliverFailedEventsResponse, dry: bool) -> int:
    if args.json:
        print_json(response)
        return 0
    if dry:
        print(f"dry run: {response.matched} failed events would be sent again; nothing was sent")
        return 0
    print(f"sent again: {response.redelivered} of {response.matched} matching failed events")
    for delivery_id in response.delivery_ids:
        print(delivery_id)
    if response.redelivered < response.matched:
        note("more match than one call sends: run the same command again for the rest")
    return 0


def rebuild(args: argparse.Namespace, client: Client) -> int:
    with client.other("failures") as failures:
        response = failures.call(
            "RebuildReadModel", RebuildReadModelRequest(), timeout=REBUILD_TIMEOUT_SECONDS
        )
    if args.json:
        print_json(response)
    else:
        print(
            f"rebuilt the failures view: {response.applied_attempts} attempts applied, "
            f"{response.failed_events} failed events"
        )
    return 0
