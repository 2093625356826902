"""What every view shares: the signed-in caller, the gateway, the catalogue, the route table
and the pages that say a request failed (never a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from flask import Flask, current_app, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.common_pb2 import Catalogue
from webhooks.v1.subscriptions_pb2 import GetCatalogueRequest
from webhooks_console.gateway import Caller, Gateway
from webhooks_console.sessions import Sessions
from webhooks_grpc.errors import describe_rpc_error


def caller() -> Caller:
    found: Caller | None = g.get("caller")
    assert found is not None, "a view behind sign-in"
    return found


def app_gateway() -> Gateway:
    gateway: Gateway = current_app.extensions["gateway"]
    return gateway


def error_page(title: str, message: str, status: int) -> ResponseReturnValue:
    return render_template("error.html", title=title, message=message), status


def rpc_error_page(error: grpc.RpcError) -> ResponseReturnValue:
    code = error.code() if isinstance(error, grpc.Call) else None
    if code == grpc.StatusCode.NOT_FOUND:
        return error_page("Not found", "There is no such item in your organisation.", 404)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        app_sessions().sign_out()
        flash("Your token is no longer accepted: sign in again.")
        return redirect(url_for("sign_in"))
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return error_page("Not allowed", "Your token may not do this.", 403)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return error_page(
            "Service unavailable",
            "A service of the platform is not answering right now. Try again shortly.",
            503,
        )
    return error_page("The request failed", describe_rpc_error(error), 400)


def app_sessions() -> Sessions:
    found: Sessions = current_app.extensions["sessions"]
    return found


def remember_tenant(tenant: str) -> None:
    """The organisation a tenant-bound token acts for, as a reply of the services names it
    (a subscription's or certificate's ``tenant``): kept in the session for the header. A
    platform token's organisation is the one named at sign-in."""
    found = g.get("caller")
    if tenant and isinstance(found, Caller) and not found.tenant:
        app_sessions().remember_tenant(tenant)
        g.organisation = tenant


def rpc_code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


def call(service: str, method: str, request: object) -> Any:
    """A call as the signed-in caller."""
    return app_gateway().call(caller(), service, method, request)


def local_path(value: str | None, default: str) -> str:
    """``value`` when it is a path of this console, else ``default``: a form's "back" or a
    sign-in's "next" must never send the browser elsewhere (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    return value


def catalogue() -> Catalogue:
    """GetCatalogue once per process: the catalogue is part of the release."""
    cached: Catalogue | None = current_app.extensions.get("catalogue")
    if cached is None:
        cached = call("subscriptions", "GetCatalogue", GetCatalogueRequest())
        current_app.extensions["catalogue"] = cached
    return cached


@dataclass(frozen=True)
class Route:
    """A view at its URL rule; its endpoint is the view's name (what ``url_for`` takes)."""

    rule: str
    view: Callable[..., ResponseReturnValue]
    methods: tuple[str, ...] = ("GET",)


def add_routes(app: Flask, routes: tuple[Route, ...]) -> None:
    for route in routes:
        app.add_url_rule(route.rule, view_func=route.view, methods=list(route.methods))
