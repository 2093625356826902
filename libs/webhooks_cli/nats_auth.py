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
