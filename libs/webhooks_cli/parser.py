"""The ``webhooks`` argument parser, built from light modules only: ``--help`` and a
command's start-up import no gRPC, NATS, protobuf or telemetry (lazy.py). Each command's
arguments are in args_subscriptions, args_failures, args_events and args_platform."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn, cast

from webhooks_cli import args_events, args_failures, args_platform, args_subscriptions
from webhooks_cli.errors import EXIT_USAGE
from webhooks_cli.lazy import SubParsers

# Options every command accepts before or after its name; SUPPRESS keeps a value given
# before the command from being reset by the command's own parser.
CLIENT_DEFAULTS: dict[str, object] = {
    "data_dir": None,
    "token": None,
    "tenant": None,
    "address": None,
    "json": False,
}


class CliParser(argparse.ArgumentParser):
    """A command line that cannot be used: what is wrong and where the help is, in two
    lines (argparse prints the whole usage first, 22 lines for ``subscriptions create``).
    Subcommands' parsers are of the class of their parent."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nSee '{self.prog} --help'.\n")


def data_dir_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="data directory (default: WEBHOOKS_DATA_DIR or ./.webhooks)",
    )
    return parser


def client_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, parents=[data_dir_options()])
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="bearer token (default: WEBHOOKS_TOKEN, else the data dir's development token)",
    )
    group.add_argument(
        "--tenant",
        default=argparse.SUPPRESS,
        help="organisation to act for (default: WEBHOOKS_TENANT; else a token bound to one "
        "organisation acts for its own, a platform token for 'default')",
    )
    group.add_argument(
        "--address",
        default=argparse.SUPPRESS,
        metavar="HOST:PORT",
        help="subscriptions service (default: WEBHOOKS_SUBSCRIPTIONS_ADDR or 127.0.0.1:50051)",
    )
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    common = client_options()
    parser = CliParser(
        prog="webhooks",
        description="Webhook subscriptions platform: run it and manage subscriptions.",
        parents=[common],
        allow_abbrev=False,
    )
    # Each command's parser is a CliParser too (argparse makes them of the parent's class).
    commands = cast(
        SubParsers, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    )
    args_platform.add_running(commands, data_dir_options())
    args_subscriptions.add_subscriptions(commands, common)
    args_subscriptions.add_certificates(commands, common)
    args_subscriptions.add_catalogue(commands, common)
    args_events.add_events(commands, common)
    args_events.add_replay(commands, common)
    args_failures.add_failures(commands, common)
    args_failures.add_deadletters(commands, common)
    args_platform.add_demo(commands, common)
    args_platform.add_secret_key(commands)
    args_platform.add_nats_auth(commands)
    args_platform.add_tokens(commands, data_dir_options())
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, default in CLIENT_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args
