"""The commands that talk to the router (``events publish``, ``replay``): its address
(``--address``, else WEBHOOKS_ROUTER_ADDR / settings.address("router")) and the same token
and tenant as every other command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from webhooks_cli.client import Client, connect, requested_tenant, resolve_token
from webhooks_config import Settings

RouterClient = Client
RouterHandler = Callable[[argparse.Namespace, Client], int]


def run_router_command(args: argparse.Namespace, settings: Settings) -> int:
    """Connect to the router and run the command's ``router_handler``."""
    address = args.address or settings.address("router")
    token = resolve_token(args.token, settings)
    tenant = requested_tenant(args.tenant, settings)
    handler: RouterHandler = args.router_handler
    with connect(settings, address=address, token=token, tenant=tenant, service="router") as client:
        return handler(args, client)
