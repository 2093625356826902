"""The ``webhooks`` entry point: the dispatch to a command, and the one place where errors
become a line on stderr and an exit code (no tracebacks, unless WEBHOOKS_LOG_LEVEL=DEBUG).

The argument parser (parser.py) is built from light modules; a command's module, and the
gRPC, NATS and protobuf code it needs, is imported when the command runs (lazy.py).

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

from webhooks_cli.errors import EXIT_USAGE, CliError
from webhooks_cli.parser import CLIENT_DEFAULTS as CLIENT_DEFAULTS
from webhooks_cli.parser import build_parser as build_parser
from webhooks_cli.parser import parse_args as parse_args
from webhooks_config import ConfigError, Settings, load_settings

EXIT_INTERRUPTED = 130


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    if args.data_dir:
        return replace(settings, data_dir=Path(args.data_dir).absolute())
    return settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The command's handler, its module imported only now."""
    if args.command in ("up", "serve"):
        from webhooks_storage import keep_private

        keep_private(settings.data_dir)  # its files, and NATS's under up: owner only
        if args.command == "up":
            from webhooks_cli.up import run_up

            return run_up(settings)
        from webhooks_cli.services import serve

        return serve(args.service, settings)
    if args.command == "secret-key":
        from webhooks_cli.secret_key import run_secret_key

        return run_secret_key(args)
    if hasattr(args, "settings_handler"):  # tokens, health, status, nats-auth, demo
        code: int = args.settings_handler(args, settings)
        return code
    if hasattr(args, "router_handler"):  # events publish, replay: the router's address
        from webhooks_cli.router_client import run_router_command

        return run_router_command(args, settings)
    from webhooks_cli.client import connect, requested_tenant, resolve_token

    address = args.address or settings.address("subscriptions")
    token = resolve_token(args.token, settings)
    tenant = requested_tenant(args.tenant, settings)
    with connect(settings, address=address, token=token, tenant=tenant) as client:
        result: int = args.client_handler(args, client)
        return result


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
