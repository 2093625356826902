"""The CLI with a token bound to one organisation: without --tenant it acts for the token's
organisation (the CLI's 'default' only stands in for a platform token), and a tenant the
user names (--tenant, WEBHOOKS_TENANT) is still enforced, so a bound token never reaches
another organisation."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

from tests.e2e.conftest import CLI_TIMEOUT_SECONDS, Platform

TENANT = "acme-cli"


def run_as(platform: Platform, env: dict[str, str], *args: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "webhooks_cli", *args],
        env=platform.env | env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def names(platform: Platform, *args: str) -> list[str]:
    listed = platform.run_json(*args, "subscriptions", "list")
    return [s["name"] for s in listed["subscriptions"]]


def create(platform: Platform, name: str, *args: str) -> Any:
    return platform.run_cli(
        *args,
        *("subscriptions", "create", "--name", name, "--entity", "Object"),
        *("--trigger", "OnNew:channels=Mail", "--type", "rest"),
        *("--url", "https://example.com/hooks/crm", "--json"),
    )


def test_a_token_bound_to_one_organisation_needs_no_tenant(platform: Platform) -> None:
    added = platform.run_cli("tokens", "add", "acme-ci", "--tenant", TENANT)
    assert added.returncode == 0, added.stderr
    bound = ("--token", added.stdout.strip())
    assert platform.stop() == 0, platform.log()
    platform.start()  # the services read the tokens at start-up

    name = f"Bound {uuid.uuid4().hex[:8]}"
    created = create(platform, name, *bound)
    assert created.returncode == 0, created.stderr
    assert name in names(platform, *bound)
    assert name in names(platform, *bound, "--tenant", TENANT)
    # The platform token still falls back on 'default', and names the organisation to see it.
    default_name = f"Default {uuid.uuid4().hex[:8]}"
    assert create(platform, default_name).returncode == 0
    assert name not in names(platform) and default_name in names(platform)
    assert name in names(platform, "--tenant", TENANT)
    assert default_name not in names(platform, *bound)

    # A tenant the user names is enforced: the bound token cannot reach another one.
    for refused in (
        platform.run_cli(*bound, "--tenant", "default", "subscriptions", "list"),
        run_as(platform, {"WEBHOOKS_TENANT": "default"}, *bound, "subscriptions", "list"),
        create(platform, f"Elsewhere {uuid.uuid4().hex[:8]}", *bound, "--tenant", "default"),
    ):
        assert refused.returncode == 1, refused.stdout
        assert "PERMISSION_DENIED" in refused.stderr and "Traceback" not in refused.stderr
    assert (
        run_as(platform, {"WEBHOOKS_TENANT": TENANT}, *bound, "subscriptions", "list").returncode
        == 0
    )
