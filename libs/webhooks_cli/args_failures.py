"""The arguments of ``webhooks failures`` and ``deadletters``: light modules only (see
lazy.py); the handlers are in failures.py and deadletters.py."""

from __future__ import annotations

import argparse

from webhooks_catalogue.vocabulary import FAILURE_CLASS_LABELS
from webhooks_cli.lazy import SubParsers, actions, handler
from webhooks_cli.times import TIME_HELP

# The keys of webhooks_client.failure_text.STATES and webhooks_messaging.deadletters'
# COMPONENTS and REASONS (which import protobuf, NATS): tests/unit/test_cli_startup.py
# holds them equal.
STATES = ("retrying", "failed", "recovered", "redelivered")
COMPONENTS = (
    *("relay", "router", "router-table", "sender", "sender-directory"),
    "failures-projector",
)
REASONS = ("undecodable", "invalid", "too-large", "unpublishable", "not-applied")
MAX_LIMIT = 1000  # dead letters per page

# Every class but http_status, which is asked for by its status.
_CLASSES = [name for name in FAILURE_CLASS_LABELS if name != "http_status"]
ERROR_CODE_HELP = (
    "an HTTP status (500: also SOAP faults, which answer 500) or a failure class, which "
    f"matches its failures whatever their status: {', '.join(_CLASSES)} "
    "(any case; 'SOAP fault' reads as soap_fault); repeatable or comma-separated"
)


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (all given must hold)")
    group.add_argument(
        "--subscription", action="append", metavar="ID", help="subscription id (repeatable)"
    )
    group.add_argument("--entity", help="Object, User, Tag, WhatsApp, ...")
    group.add_argument("--trigger", help="OnNew, OnAdd, ...")
    group.add_argument("--channel", metavar="NAME|ID", help="e.g. WhatsApp or 7")
    group.add_argument("--subchannel")
    group.add_argument(
        "--error-code",
        action="append",
        metavar="CODE",
        help=ERROR_CODE_HELP,
    )
    group.add_argument(
        "--state",
        action="append",
        metavar="STATE",
        help=f"{', '.join(STATES)}; repeatable or comma-separated",
    )
    group.add_argument("--since", metavar="TIME", help=f"last attempt at or after; {TIME_HELP}")
    group.add_argument("--until", metavar="TIME", help="last attempt before")
    group.add_argument("--message", metavar="TEXT", help="in the error message (any case)")
    group.add_argument("--min-retries", type=int, metavar="N", help="at least N retry attempts")


def add_failures(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    parent = commands.add_parser(
        "failures",
        help="failed webhook deliveries: list, show, retry",
        parents=[common],
        allow_abbrev=False,
    )
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    action = actions(sub, common, "failures")

    parser = action("list", "list_", "list failed events, newest first")
    add_filter_flags(parser)
    parser.add_argument("--page-size", type=int, metavar="N", help="default 50, at most 500")
    parser.add_argument("--page-token", metavar="TOKEN")
    parser.add_argument("--all", action="store_true", help="follow every next page")

    parser = action("show", "show", "one failed event: Overview, Payload, Trial History")
    parser.add_argument("id", metavar="ID", help="delivery id (the webhook-id)")

    parser = action(
        "retry", "retry", "send a failed event (ID) or every one matching the filters again"
    )
    parser.add_argument("id", metavar="ID", nargs="?", help="delivery id")
    add_filter_flags(parser)
    parser.add_argument("--dry-run", action="store_true", help="only count what would be sent")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--force",
        action="store_true",
        help="also send deliveries that already recovered (they arrive twice) without asking",
    )

    action("rebuild", "rebuild", "replay ATTEMPTS into a fresh view (platform token)")


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}")
    return number


def add_deadletters(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "deadletters",
        help="what producers and consumers set aside, newest first (platform token)",
        parents=[common],
        allow_abbrev=False,
    )
    parser.add_argument("--component", choices=COMPONENTS, help="only this component's")
    parser.add_argument("--reason", choices=REASONS, help="only this reason")
    parser.add_argument(
        "--limit", type=_limit, metavar="N", help=f"at most N letters (default 50, max {MAX_LIMIT})"
    )
    parser.add_argument("--page-token", metavar="TOKEN", help="go on with older letters")
    parser.add_argument("--all", action="store_true", help="follow every next page")
    parser.set_defaults(client_handler=handler("deadletters", "list_"))
