"""Secrets and files at rest (issue 11): ``webhooks up`` keeps its data dir 0700 and every
file in it 0600 (SQLite files, logs, keys, tokens, NATS's store), tightens what an older
version left readable, stores API tokens as digests only, and ``webhooks tokens`` adds,
lists and converts them."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import Platform, clean_environment
from webhooks_config import load_settings
from webhooks_grpc.tokens import load_tokens
from webhooks_secrets import new_key

LEGACY = "legacy-plaintext-token-0123456789abcdef"
PLAIN = "plain-token-of-the-old-format"


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def loose_paths(data_dir: Path) -> list[str]:
    """Every path under ``data_dir`` (itself included) another user could read or enter."""
    found = []
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a temporary file NATS or SQLite removed meanwhile
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(data_dir.parent)} {stat.filemode(mode)}")
    return found


def test_up_keeps_the_data_dir_private_and_tokens_as_digests(tmp_path: Path) -> None:
    platform = Platform.create(tmp_path)
    data_dir = platform.data_dir
    # What an older version left behind: everything readable by others, a plaintext token.
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    tokens = data_dir / "tokens.json"
    tokens.write_text(json.dumps([{"name": "legacy", "token": LEGACY, "tenant": "*"}]))
    keys = data_dir / "secret-keys"
    keys.write_text(new_key() + "\n")
    for path in (tokens, keys):
        path.chmod(0o644)
    platform.start()
    try:
        # The services have opened their SQLite stores, NATS has written its store and log.
        created = platform.run_json(
            "subscriptions", "create", "--name", "at rest", "--entity", "Object",
            "--trigger", "OnNew", "--type", "rest", "--url", "https://example.com/hooks",
        )  # fmt: skip
        assert created["subscription"]["name"] == "at rest"
        names = {p.name for p in data_dir.iterdir()}
        assert {"dev-token", "tokens.json", "secret-keys", "nats.log", "nats"} <= names
        assert any(name.endswith(".sqlite-wal") for name in names), names
        assert loose_paths(data_dir) == []

        # Digests only: neither the legacy token nor the new development token is stored,
        # and both are accepted.
        stored = tokens.read_text()
        assert LEGACY not in stored and platform.token not in stored
        assert {e["name"]: e["token_sha256"] for e in json.loads(stored)} == {
            "legacy": sha256(LEGACY),
            "dev": sha256(platform.token),
        }
        assert "plaintext token(s) now stored as digests" in platform.log()
        listed = platform.run_cli("--token", LEGACY, "subscriptions", "list")
        assert listed.returncode == 0, listed.stderr

        # A token added while the platform runs is accepted after a restart.
        added = platform.run_cli("tokens", "add", "ci", "--tenant", "acme-ci")
        assert added.returncode == 0, added.stderr
        ci_token = added.stdout.strip()
        assert ci_token not in tokens.read_text()
        platform.stop()
        platform.start()
        assert platform.token in (data_dir / "dev-token").read_text()
        as_ci = platform.run_cli("--token", ci_token, "--tenant", "", "subscriptions", "list")
        assert as_ci.returncode == 0, as_ci.stderr
        assert sorted(e["name"] for e in json.loads(tokens.read_text())) == ["ci", "dev", "legacy"]
        assert loose_paths(data_dir) == []
    finally:
        platform.stop()


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_environment()
    environment.update(env, WEBHOOKS_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "webhooks_cli", "tokens", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tokens_add_list_and_convert(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    added = cli(data_dir, "add", "ci", "--tenant", "acme")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 43 and "shown" in added.stderr  # 256 bits, and said once
    path = data_dir / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert token not in path.read_text()
    settings = load_settings({"WEBHOOKS_DATA_DIR": str(data_dir)})
    found = load_tokens(settings).lookup(token)
    assert found is not None and (found.name, found.tenant) == ("ci", "acme")

    platform = cli(data_dir, "add", "ops", "--tenant", "*", "--json")
    assert platform.returncode == 0, platform.stderr
    assert json.loads(platform.stdout)["tenant"] == "*"

    again = cli(data_dir, "add", "ci", "--tenant", "acme")
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "already exists" in again.stderr
    bad = cli(data_dir, "add", "x", "--tenant", "no spaces")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --tenant")

    listed = cli(data_dir, "list", "--json")
    assert json.loads(listed.stdout) == [
        {"name": "ci", "stored": "digest", "tenant": "acme"},
        {"name": "ops", "stored": "digest", "tenant": "*"},
    ]
    assert sha256(token) not in listed.stdout + cli(data_dir, "list").stdout

    # A file of the old format: converted in place, the token still accepted.
    path.write_text(json.dumps([{"name": "old", "token": PLAIN, "tenant": "*"}]))
    converted = cli(data_dir, "convert")
    assert converted.returncode == 0 and "1 of 1" in converted.stdout
    assert PLAIN not in path.read_text()
    assert load_tokens(settings).lookup(PLAIN) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # WEBHOOKS_TOKENS is not a file: convert prints what to put there, add refuses.
    plain_env = json.dumps([{"name": "e", "token": PLAIN, "tenant": "*"}])
    printed = cli(data_dir, "convert", WEBHOOKS_TOKENS=plain_env)
    assert json.loads(printed.stdout) == [
        {"name": "e", "token_sha256": sha256(PLAIN), "tenant": "*"}
    ]
    refused = cli(data_dir, "add", "y", "--tenant", "*", WEBHOOKS_TOKENS=plain_env)
    assert refused.returncode == 1 and "WEBHOOKS_TOKENS" in refused.stderr
