"""The arguments of ``webhooks events publish`` and ``replay``: light modules only (see
lazy.py); the handlers are in events.py and replay.py."""

from __future__ import annotations

import argparse

from webhooks_cli.lazy import SubParsers, handler
from webhooks_cli.times import TIME_HELP

PUBLISH_DESCRIPTION = """\
``webhooks events publish``: platform events into the router (PublishEvents).

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
MAX_BATCH = 1000
# Flags that describe one event: not allowed together with --file.
EVENT_FLAGS = (
    *("entity", "trigger", "event_id", "occurred_at", "channel", "subchannel"),
    *("activity_type", "status_change", "whatsapp_channel", "whatsapp_status"),
    *("data", "data_file", "sample"),
)


def add_events(
    commands: SubParsers,
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
        description=PUBLISH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        allow_abbrev=False,
    )
    parser.set_defaults(router_handler=handler("events", "publish"))
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


REPLAY_DESCRIPTION = """\
``webhooks replay SUBSCRIPTION --since T --until T [--dry-run]``: route a window of past
events again to one subscription (ReplayEvents), showing progress as it streams.

Times are RFC 3339 (``2024-05-01T09:30:00Z``), ``now``, or a duration ago (``2h``,
``30m``, ``1d``, ``1h30m``; "2h ago" reads the same). ``--until`` defaults to now.
Progress goes to stderr: a bar on a terminal (how far the window's time span has been
read), plain lines otherwise; the final counts go to stdout (``--json``: the final
ReplayProgress).
"""


def add_replay(
    commands: SubParsers,
    common: argparse.ArgumentParser,
) -> None:
    parser = commands.add_parser(
        "replay",
        help="route a window of past events again to one subscription",
        description=REPLAY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        allow_abbrev=False,
    )
    parser.set_defaults(router_handler=handler("replay", "replay"))
    parser.add_argument("subscription_id", metavar="SUBSCRIPTION_ID")
    parser.add_argument("--since", required=True, metavar="TIME", help=TIME_HELP)
    parser.add_argument("--until", default="now", metavar="TIME", help="default: now")
    parser.add_argument(
        "--dry-run", action="store_true", help="count the matching events, publish nothing"
    )
