"""``webhooks tokens``: API tokens in the tokens file, kept as SHA-256 digests.

What each action does: args_platform.TOKENS_DESCRIPTION (its --help).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.output import note, print_json, print_table
from webhooks_config import Settings
from webhooks_grpc.tokens import (
    TokenEntry,
    TokenTable,
    is_valid_token_tenant,
    new_token,
    read_tokens_file,
    token_digest,
    tokens_json,
    tokens_source,
    write_tokens_file,
)

RESTART_NOTE = "running services read the tokens when they start: restart them to apply this"


def read_table(settings: Settings) -> TokenTable:
    path, source = tokens_source(settings)
    if path is None:
        return TokenTable.from_json(settings.tokens_json or "", source)
    return read_tokens_file(path, source, missing_ok=True)


def tokens_file(settings: Settings) -> Path:
    """The file ``add`` and ``convert`` change."""
    path, _ = tokens_source(settings)
    if path is None:
        raise CliError(
            "tokens come from WEBHOOKS_TOKENS, which this command cannot change: unset it to "
            "use a tokens file, or edit the variable where it is set"
        )
    return path


def add(args: argparse.Namespace, settings: Settings) -> int:
    if not is_valid_token_tenant(args.tenant):
        raise UsageError(f"--tenant: a tenant id or '*', got {args.tenant!r}")
    if not args.name.strip():
        raise UsageError("name: required")
    path = tokens_file(settings)
    table = read_table(settings)
    if any(entry.name == args.name for entry in table.entries):
        raise CliError(f"name: a token named {args.name!r} already exists in {path}")
    token = new_token()
    entry = TokenEntry(name=args.name, tenant=args.tenant, digest=token_digest(token))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_tokens_file(path, [*table.entries, entry])
    if args.json:
        print_json({"name": entry.name, "tenant": entry.tenant, "token": token})
    else:
        print(token)
    note(f"token {entry.name!r} for tenant {entry.tenant!r} added to {path}")
    note("this is the only time the token is shown: store it now (only its digest is kept)")
    note(RESTART_NOTE)
    return 0


def list_tokens(args: argparse.Namespace, settings: Settings) -> int:
    table = read_table(settings)
    rows = [
        {"name": e.name, "tenant": e.tenant, "stored": "plaintext" if e.plaintext else "digest"}
        for e in table.entries
    ]
    if args.json:
        print_json(rows)
    else:
        print_table(["NAME", "TENANT", "STORED"], [list(row.values()) for row in rows])
    if table.plaintext:
        note(f"{table.plaintext} stored in plaintext: `webhooks tokens convert` keeps digests")
    return 0


def convert(args: argparse.Namespace, settings: Settings) -> int:
    path, _ = tokens_source(settings)
    table = read_table(settings)
    if path is None:
        # The variable is set elsewhere (a secret store, compose): the converted list is
        # printed to be put in its place.
        print(tokens_json(table.entries), end="")
        note(f"put this in WEBHOOKS_TOKENS in place of its {table.plaintext} plaintext token(s)")
        return 0
    converted = table.plaintext
    if converted:
        write_tokens_file(path, table.entries)
    if args.json:
        print_json({"file": str(path), "converted": converted, "tokens": len(table)})
    else:
        print(f"{converted} of {len(table)} token(s) in {path} converted to digests")
    return 0


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    handler = {"add": add, "list": list_tokens, "convert": convert}[args.tokens_command]
    return handler(args, settings)
