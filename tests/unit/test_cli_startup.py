"""The CLI's start-up (issue 16): ``webhooks --help`` and the argument parser load no heavy
module (gRPC, NATS, httpx, protobuf, OpenTelemetry), every handler the parser names exists,
and the parser's copies of names kept light agree with their homes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from webhooks_cli import args_failures, args_subscriptions, client, subscriptions
from webhooks_cli.lazy import Handler
from webhooks_cli.parser import build_parser
from webhooks_client.failure_text import STATES
from webhooks_client.subscription_spec import SOAP_VERSIONS, WEBHOOK_TYPES
from webhooks_client.subscription_text import AUTH_KINDS
from webhooks_grpc.auth import DEFAULT_TENANT_HEADER, TENANT_HEADER
from webhooks_messaging.deadletters import COMPONENTS, REASONS

HEAVY = ("grpc", "nats", "httpx", "google.protobuf", "opentelemetry", "aiohttp", "webhooks.v1")
LOADED = """
import contextlib, io, json, sys
from webhooks_cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main({argv!r})
print(json.dumps(sorted({{m.split(".")[0] if not m.startswith("google.") else m
                         for m in sys.modules}})))
"""


def loaded_after(argv: list[str]) -> set[str]:
    """The top-level modules (and google.*) a fresh interpreter holds after ``main(argv)``."""
    code = LOADED.format(argv=argv)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["subscriptions", "--help"],
        ["subscriptions", "create", "--help"],
        ["failures", "retry", "--help"],
        ["events", "publish", "--help"],
        ["status", "--help"],
        ["tokens", "add", "--help"],
    ],
)
def test_help_loads_no_heavy_module(argv: list[str]) -> None:
    modules = loaded_after(argv)
    assert "webhooks_cli" in modules and "argparse" in modules  # the probe itself works
    assert heavy_in(modules) == []


def test_the_probe_sees_a_heavy_module_when_a_command_loads_one() -> None:
    # `subscriptions list` against a closed port imports gRPC: the check above can fail.
    modules = loaded_after(["subscriptions", "list", "--token", "t", "--address", "127.0.0.1:9"])
    assert "grpc" in heavy_in(modules)


def handlers(parser: argparse.ArgumentParser) -> list[Handler]:
    found = [
        value
        for key, value in parser._defaults.items()
        if key in ("client_handler", "router_handler", "settings_handler")
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += handlers(sub)
    return found


def test_every_handler_the_parser_names_exists() -> None:
    found = handlers(build_parser())
    assert len(found) >= 20
    for handler in found:
        assert isinstance(handler, Handler)
        assert callable(handler.target()), handler


def test_light_copies_agree_with_their_homes() -> None:
    assert tuple(subscriptions.ORDERS) == args_subscriptions.ORDERS
    assert tuple(WEBHOOK_TYPES) == args_subscriptions.WEBHOOK_TYPES
    assert tuple(SOAP_VERSIONS) == args_subscriptions.SOAP_VERSIONS
    assert tuple(AUTH_KINDS) == args_subscriptions.AUTH_KINDS
    assert tuple(STATES) == args_failures.STATES
    assert args_failures.COMPONENTS == COMPONENTS
    assert args_failures.REASONS == REASONS
    assert (client.TENANT_HEADER, client.DEFAULT_TENANT_HEADER) == (
        TENANT_HEADER,
        DEFAULT_TENANT_HEADER,
    )
