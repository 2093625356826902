"""The arguments of the commands that run or set up the platform (up, serve, health,
status, secret-key, nats-auth, tokens) and of demo: light modules only (see lazy.py)."""

from __future__ import annotations

import argparse

from webhooks_cli.lazy import SubParsers, handler
from webhooks_config import SERVICES

HEALTH_TIMEOUT_SECONDS = 3.0
STATUS_TIMEOUT_SECONDS = 3.0
STATUS_WATCH_SECONDS = 2.0
TOKENS_DESCRIPTION = (
    "``add NAME --tenant T`` makes a token, stores its digest and prints the token once (it "
    "cannot be read back); ``list`` shows names and tenants, never a digest; ``convert`` "
    "turns entries holding the token itself into digests (for ``WEBHOOKS_TOKENS``, which it "
    "cannot change, it prints the converted list to put in its place). The file is the one "
    "the services read: ``WEBHOOKS_TOKENS_FILE``, else ``tokens.json`` in the data dir. "
    "Services read it when they start."
)


def add_running(commands: SubParsers, data_dir: argparse.ArgumentParser) -> None:
    """up, serve, health and status, in the order ``webhooks --help`` lists them."""
    commands.add_parser(
        "up",
        help="run NATS and every service locally until Ctrl-C",
        parents=[data_dir],
        allow_abbrev=False,
    )
    serve = commands.add_parser(
        "serve", help="run one service in the foreground", parents=[data_dir]
    )
    serve.add_argument("service", metavar="SERVICE", help=", ".join(SERVICES))
    add_health(commands)
    add_status(commands)


def add_health(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "health",
        help="exit 0 when a service answers SERVING (container health checks)",
        allow_abbrev=False,
    )
    parser.set_defaults(settings_handler=handler("health", "run_health"))
    parser.add_argument("service", metavar="SERVICE", choices=SERVICES, help=", ".join(SERVICES))
    parser.add_argument(
        "--address",
        default=argparse.SUPPRESS,
        metavar="HOST:PORT",
        help="where to ask (default: the service's WEBHOOKS_<SERVICE>_ADDR)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=HEALTH_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long (default {HEALTH_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def add_status(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "status",
        help="one screen for an SRE: health, versions, backlog, lags, dead letters",
        allow_abbrev=False,
    )
    parser.set_defaults(settings_handler=handler("status", "run_status"))
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=_seconds,
        const=STATUS_WATCH_SECONDS,
        metavar="SECONDS",
        help=f"redraw every SECONDS (default {STATUS_WATCH_SECONDS:g}) until Ctrl-C",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=STATUS_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give each service this long to answer (default {STATUS_TIMEOUT_SECONDS:g})",
    )


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600")
    return number


def add_tokens(
    commands: SubParsers,
    data_dir: argparse.ArgumentParser,
) -> None:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser = commands.add_parser(
        "tokens",
        help="API tokens: add one, list them, convert plaintext entries to digests",
        description=TOKENS_DESCRIPTION,
    )
    parser.set_defaults(settings_handler=handler("tokens", "run_tokens"))
    actions = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    adding = actions.add_parser(
        "add", help="make a token and print it once", parents=[data_dir, output]
    )
    adding.add_argument("name", help="who or what uses the token")
    adding.add_argument(
        "--tenant", required=True, help="the organisation it acts for, or '*' (platform token)"
    )
    actions.add_parser("list", help="names and tenants", parents=[data_dir, output])
    actions.add_parser(
        "convert", help="store digests instead of plaintext tokens", parents=[data_dir, output]
    )


def add_nats_auth(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "nats-auth",
        help="write NATS users (nkeys) and the nats-server configuration admitting them",
        description="Make an nkey seed for every NATS user of the platform (kept when "
        "present) and render DIR/server/auth.conf, the nats-server configuration that "
        "admits exactly those users with their permissions (nats-server -c, or include it).",
    )
    parser.set_defaults(settings_handler=handler("nats_auth", "run_nats_auth"))
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="where to write (default: nats-auth in the data dir, as `webhooks up` uses)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_secret_key(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "secret-key", help="print a new key for WEBHOOKS_SECRET_KEYS", allow_abbrev=False
    )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def add_demo(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "demo",
        help="see the platform work: a local receiver, subscriptions, deliveries, a failure",
        description=(
            "Watch the platform work: a local HTTPS receiver, a REST and a SOAP subscription, "
            "sample events delivered and their signatures checked, one endpoint failing, the "
            "failed event with its trial history, and its redelivery. Uses the platform "
            "running at the configured addresses, or starts one (and stops it at the end)."
        ),
        parents=[common],
        allow_abbrev=False,
    )
    parser.set_defaults(settings_handler=handler("demo", "run_demo"))
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the platform the demo started running at the end",
    )
