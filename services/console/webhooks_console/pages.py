"""What every view shares: the signed-in caller, the gateway, the catalogue, the route table
and the pages that say a request failed (never a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import grpc
from flask import Flask, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.common_pb2 import Catalogue
from webhooks.v1.subscriptions_pb2 import GetCatalogueRequest
from webhooks_console.gateway import Caller, Gateway
from webhooks_console.sessions import Sessions
from webhooks_grpc.errors import field_violations


def caller() -> Caller:
    found: Caller | None = g.get("caller")
    assert found is not None, "a view behind sign-in"
    return found


def app_gateway() -> Gateway:
    gateway: Gateway = current_app.extensions["gateway"]
    return gateway


def error_page(
    title: str, message: str, status: int, *, back: tuple[str, str] | None = None
) -> ResponseReturnValue:
    """A page that says what went wrong; ``back``: (link text, URL) to go on from it."""
    return render_template("error.html", title=title, message=message, back=back), status


# A refused filter of a list (the request field a service names) -> the console's query
# parameter and the filter's label on the page.
FILTERS = {
    "filter.subscription_ids": ("subscription", "Webhook"),
    "filter.entity": ("entity", "Entity"),
    "filter.trigger": ("trigger", "Trigger"),
    "filter.channels": ("channel", "Channel"),
    "filter.subchannel": ("subchannel", "Subchannel"),
    "filter.error_codes": ("error_code", "Error code"),
    "filter.states": ("state", "State"),
    "filter.since": ("since", "From"),
    "filter.until": ("until", "To"),
    "filter.message_contains": ("message", "Message"),
    "entity": ("entity", "Entity"),
    "name_contains": ("q", "Search"),
    "page_token": ("page", "Page"),
}
FILTER_SENTENCES = {
    "filter.entity": "There is no such entity: choose one from the list.",
    "filter.trigger": "There is no such trigger: choose one as the list shows it, "
    "such as On Message Status.",
    "filter.error_codes": "An error code is an HTTP status (100 to 599) or an error as the "
    "list shows it, such as Timed out or SOAP fault.",
    "filter.states": "Choose a state from the list.",
    "filter.since": "The From date is not one the platform can search by.",
    "filter.until": "The To date is not one the platform can search by.",
    "page_token": "This page of results is no longer available: start the search again.",
    "entity": "There is no such entity: choose one from the list.",
}
# What a URL names, by the view argument that carries its id.
THINGS = {"subscription_id": "webhook", "delivery_id": "failed event"}
ID_FIELDS = frozenset({"id", "delivery_id", "subscription_id", "subscription_ids"})


def _field(error: grpc.RpcError) -> str:
    violations = field_violations(error)
    return violations[0][0] if violations else ""


def _no_such() -> str:
    """ "There is no such webhook" for the item the page's URL names."""
    for argument, thing in THINGS.items():
        if argument in (request.view_args or {}):
            return f"There is no such {thing} in your organisation."
    return "There is no such item in your organisation."


def error_sentence(error: grpc.RpcError) -> str:
    """What a failed request means, as one sentence for a person: never a gRPC code, a
    field path, an id or an enum name (``describe_rpc_error`` is for logs and the CLI)."""
    code, field = rpc_code(error), _field(error)
    if code == grpc.StatusCode.NOT_FOUND or (
        code == grpc.StatusCode.INVALID_ARGUMENT and field in ID_FIELDS
    ):
        return _no_such()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        if field in FILTER_SENTENCES:
            return FILTER_SENTENCES[field]
        if field in FILTERS:
            return f"The {FILTERS[field][1]} filter cannot be used as it is: shorten or change it."
        return "The platform did not accept this request: check what you entered."
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return "That name is or was already used by another webhook of your organisation."
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        details = (error.details() if isinstance(error, grpc.Call) else "") or ""
        if "version" in details:
            return "Someone else changed this webhook meanwhile: reload the page and try again."
        if "inactive" in details.casefold():
            return "This webhook is inactive: activate it first."
        return "This cannot be done in the webhook's present state."
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "Too many requests at once: try again in a moment."
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return "Your token may not do this."
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return "A service of the platform is not answering right now. Try again shortly."
    return "The platform could not do this. Try again; if it keeps failing, tell your operator."


def search_kept(error: grpc.RpcError | None = None) -> tuple[str, str] | None:
    """("Back to your search", the list's URL with the user's filters) for a failed list
    request, without the filter the service refused (which would fail again); None
    elsewhere."""
    if request.method != "GET" or not request.args:
        return None
    refused = FILTERS.get(_field(error), ("", ""))[0] if error is not None else ""
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != refused and k != "page"]
    return "Back to your search", f"{request.path}?{urlencode(kept)}" if kept else request.path


def rpc_error_page(error: grpc.RpcError) -> ResponseReturnValue:
    code, field = rpc_code(error), _field(error)
    sentence = error_sentence(error)
    if code == grpc.StatusCode.NOT_FOUND or (
        code == grpc.StatusCode.INVALID_ARGUMENT and field in ID_FIELDS
    ):
        return error_page("Not found", sentence, 404)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        app_sessions().sign_out()
        flash("Your token is no longer accepted: sign in again.")
        return redirect(url_for("sign_in"))
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return error_page("Not allowed", sentence, 403)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return error_page("Service unavailable", sentence, 503, back=search_kept())
    return error_page("The request failed", sentence, 400, back=search_kept(error))


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
