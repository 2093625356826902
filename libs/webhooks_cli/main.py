"""The ``webhooks`` entry point: the argument parser, the dispatch to a command, and the
one place where errors become a line on stderr and an exit code (no tracebacks, unless
WEBHOOKS_LOG_LEVEL=DEBUG).

Exit codes: 0 done, 1 the request failed (the service said no or is unreachable),
2 the command line cannot be used, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from webhooks_cli import (
    catalogue,
    certificates,
    deadletters,
    demo,
    events,
    failures,
    replay,
    status,
    subscriptions,
    tokens,
)
from webhooks_cli.client import connect, requested_tenant, resolve_token
from webhooks_cli.errors import EXIT_USAGE, CliError
from webhooks_cli.health import add_parser as add_health_parser
from webhooks_cli.health import run_health
from webhooks_cli.nats_auth import add_parser as add_nats_auth_parser
from webhooks_cli.nats_auth import run_nats_auth
from webhooks_cli.router_client import run_router_command
from webhooks_cli.secret_key import add_parser as add_secret_key_parser
from webhooks_cli.secret_key import run_secret_key
from webhooks_cli.services import serve
from webhooks_cli.up import run_up
from webhooks_config import SERVICES, ConfigError, Settings, load_settings
from webhooks_storage import keep_private

EXIT_INTERRUPTED = 130
# Options every command accepts before or after its name; SUPPRESS keeps a value given
# before the command from being reset by the command's own parser.
CLIENT_DEFAULTS: dict[str, object] = {
    "data_dir": None,
    "token": None,
    "tenant": None,
    "address": None,
    "json": False,
}


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
    parser = argparse.ArgumentParser(
        prog="webhooks",
        description="Webhook subscriptions platform: run it and manage subscriptions.",
        parents=[common],
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "up",
        help="run NATS and every service locally until Ctrl-C",
        parents=[data_dir_options()],
        allow_abbrev=False,
    )
    serve_parser = commands.add_parser(
        "serve", help="run one service in the foreground", parents=[data_dir_options()]
    )
    serve_parser.add_argument("service", metavar="SERVICE", help=", ".join(SERVICES))
    add_health_parser(commands)
    status.add_parser(commands)
    subscriptions.add_parser(commands, common)
    certificates.add_parser(commands, common)
    catalogue.add_parser(commands, common)
    events.add_parser(commands, common)
    replay.add_parser(commands, common)
    failures.add_parser(commands, common)
    deadletters.add_parser(commands, common)
    demo.add_parser(commands, common)
    add_secret_key_parser(commands)
    add_nats_auth_parser(commands)
    tokens.add_parser(commands, data_dir_options())
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, default in CLIENT_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    if args.data_dir:
        return replace(settings, data_dir=Path(args.data_dir).absolute())
    return settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("up", "serve"):
        keep_private(settings.data_dir)  # its files, and NATS's under up: owner only
        return run_up(settings) if args.command == "up" else serve(args.service, settings)
    if args.command == "tokens":
        return tokens.run_tokens(args, settings)
    if args.command == "health":
        return run_health(args, settings)
    if args.command == "status":
        return status.run_status(args, settings)
    if args.command == "nats-auth":
        return run_nats_auth(args, settings)
    if args.command == "secret-key":
        return run_secret_key(args)
    if args.command == "demo":  # its own connections: it may start the platform first
        return demo.run_demo(args, settings)
    if hasattr(args, "router_handler"):  # events publish, replay: the router's address
        return run_router_command(args, settings)
    address = args.address or settings.address("subscriptions")
    token = resolve_token(args.token, settings)
    tenant = requested_tenant(args.tenant, settings)
    with connect(settings, address=address, token=token, tenant=tenant) as client:
        code: int = args.client_handler(args, client)
        return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)  # usage errors: argparse prints them and exits 2
    debug = False
    try:
        settings = settings_for(args, load_settings())
        debug = settings.log_level == "DEBUG"
        return run(args, settings)
    except CliError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return err.exit_code
    except ConfigError as err:
        print(f"error: configuration: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``webhooks subscriptions list | head``): nothing to say.
        sys.stderr.close()
        return 1
    except Exception as err:
        if debug:
            traceback.print_exc()
        print(f"error: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return 1
