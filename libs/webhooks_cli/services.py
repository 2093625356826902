"""Which services exist and ``webhooks serve <service>``: one service in the foreground.

A service is a module with ``async def run(settings, *, ready=None, stop=None)``; the
registry names the module of each, and a service counts as present once its module can
be found, so ``webhooks up`` starts each one as soon as it is written.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any

from webhooks_cli.errors import UsageError
from webhooks_config import SERVICES, Settings

SERVICE_MODULES = {service: f"webhooks_{service}.service" for service in SERVICES}

RunService = Callable[..., Coroutine[Any, Any, None]]


def is_available(service: str) -> bool:
    try:
        return importlib.util.find_spec(SERVICE_MODULES[service]) is not None
    except ModuleNotFoundError:  # the service's package itself is not there yet
        return False


def available_services() -> list[str]:
    return [service for service in SERVICE_MODULES if is_available(service)]


def serve(service: str, settings: Settings) -> int:
    if service not in SERVICE_MODULES:
        raise UsageError(f"unknown service {service!r}: one of {', '.join(SERVICE_MODULES)}")
    if not is_available(service):
        raise UsageError(f"the {service} service is not part of this installation yet")
    run: RunService = importlib.import_module(SERVICE_MODULES[service]).run
    asyncio.run(run(settings))
    return 0
