"""A command's handler named by its module, imported only when the command runs.

The argument parser is built from light modules alone (``args_*``), so that ``webhooks
--help`` and a command's start-up do not pay for gRPC, NATS, protobuf stubs and telemetry
that another command needs: each handler's module, and what it imports, loads on its call.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@dataclass(frozen=True)
class Handler:
    """``module.name``, called with the arguments it is given."""

    module: str
    name: str

    def target(self) -> Callable[..., int]:
        found: Callable[..., int] = getattr(importlib.import_module(self.module), self.name)
        return found

    def __call__(self, *args: Any) -> int:
        return self.target()(*args)


def handler(module: str, name: str) -> Handler:
    """The handler ``name`` of ``webhooks_cli.<module>``."""
    return Handler(f"webhooks_cli.{module}", name)


def actions(
    sub: SubParsers, common: argparse.ArgumentParser, module: str
) -> Callable[[str, str, str], argparse.ArgumentParser]:
    """``action(name, function, help)``: an action of a command (``subscriptions create``)
    with the common options, handled by ``function`` of ``webhooks_cli.<module>``."""

    def action(name: str, function: str, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, parents=[common], allow_abbrev=False)
        parser.set_defaults(client_handler=handler(module, function))
        return parser

    return action
