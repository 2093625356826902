"""``webhooks nats-auth``: the platform's NATS users for a server run by someone else.

Writes (or completes: seeds are kept) an nkey seed per user and the nats-server
configuration admitting them with their permissions (webhooks_messaging.auth), and prints
where each is. compose runs it once before NATS (``--out /auth``); an operator runs it for
an external NATS and includes ``server/auth.conf`` in that server's configuration.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from webhooks_cli.errors import CliError
from webhooks_config import Settings
from webhooks_messaging import auth as nats_auth
from webhooks_messaging.permissions import USERS


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "nats-auth",
        help="write NATS users (nkeys) and the nats-server configuration admitting them",
        description="Make an nkey seed for every NATS user of the platform (kept when "
        "present) and render DIR/server/auth.conf, the nats-server configuration that "
        "admits exactly those users with their permissions (nats-server -c, or include it).",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="where to write (default: nats-auth in the data dir, as `webhooks up` uses)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_nats_auth(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.out).absolute() if args.out else settings.nats_auth_dir
    try:
        auth = nats_auth.prepare(directory)
    except OSError as err:
        raise CliError(f"--out: cannot write {directory}: {err.strerror or err}") from None
    seeds = {user: str(auth.seed_file(user)) for user in USERS}
    if args.json:
        print(json.dumps({"server_config": str(auth.server_config), "seeds": seeds}))
        return 0
    print(f"nats-server configuration: {auth.server_config}")
    for user, path in seeds.items():
        print(f"  {user.ljust(13)}  {path}")
    return 0
