"""``webhooks secret-key``: a new Fernet key for WEBHOOKS_SECRET_KEYS (or the console's
session keys), printed as the only line of stdout, or under ``key`` with ``--json``. The
key is never written anywhere else: where it goes is the operator's choice."""

from __future__ import annotations

import argparse

from webhooks_cli.output import print_json
from webhooks_secrets import new_key


def run_secret_key(args: argparse.Namespace) -> int:
    key = new_key()
    if args.json:
        print_json({"key": key})
    else:
        print(key)
    return 0
