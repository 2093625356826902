"""Which services exist and ``webhooks serve <service>``: one service in the foreground.

A service is a function ``async def run(settings, *, ready=None, stop=None)`` that its own
package registers as an entry point of the group ``webhooks.services`` (pyproject.toml),
so the CLI names no service package: a service counts as present once its entry point is
installed, and ``webhooks up`` starts the present ones in the order of
``webhooks_config.SERVICES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from webhooks_cli.errors import UsageError
from webhooks_config import SERVICES, Settings

ENTRY_POINT_GROUP = "webhooks.services"

RunService = Callable[..., Coroutine[Any, Any, None]]


def installed() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def available_services() -> list[str]:
    present = installed()
    return [service for service in SERVICES if service in present]


def serve(service: str, settings: Settings) -> int:
    if service not in SERVICES:
        raise UsageError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    entry = installed().get(service)
    if entry is None:
        raise UsageError(f"the {service} service is not part of this installation yet")
    run: RunService = entry.load()
    asyncio.run(run(settings))
    return 0
