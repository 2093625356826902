"""Signing in and out: the token (and, for a platform token, the organisation) checked
against the subscriptions service before the session is sealed, attempts limited per client
address; the health check and the home redirect, open without a session."""

from __future__ import annotations

import contextlib

import grpc
from flask import Flask, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.subscriptions_pb2 import ListCertificatesRequest, ListSubscriptionsRequest
from webhooks_config import Settings
from webhooks_console.gateway import Caller, Gateway
from webhooks_console.pages import (
    Route,
    add_routes,
    app_gateway,
    app_sessions,
    error_sentence,
    local_path,
)
from webhooks_console.signin_limit import SignInLimiter

# The endpoints a browser without a session may reach.
OPEN_ENDPOINTS = {"sign_in", "static", "healthz"}


def healthz() -> ResponseReturnValue:
    return {"status": "SERVING"}


def sign_in() -> ResponseReturnValue:
    settings: Settings = current_app.extensions["settings"]
    limiter: SignInLimiter = current_app.extensions["signin_limiter"]
    sessions = app_sessions()
    problem = ""
    tenant = request.form.get("tenant", settings.tenant).strip()
    if request.method == "POST":
        wait = limiter.attempt(request.remote_addr or "")
        if wait:
            return too_many_attempts(wait)
        token = request.form.get("token", "").strip()
        caller = Caller(token=token, tenant=tenant)
        problem, bound = (
            check_sign_in(app_gateway(), caller) if token else ("Enter your token.", "")
        )
        if not problem:
            sessions.sign_in(caller)
            if bound and not caller.tenant:
                sessions.remember_tenant(bound)
            return redirect(local_path(request.args.get("next"), url_for("subscriptions")))
    status = 401 if problem else 200
    return render_template("sign_in.html", problem=problem, tenant=tenant), status


def sign_out() -> ResponseReturnValue:
    app_sessions().sign_out()
    flash("You are signed out.")
    return redirect(url_for("sign_in"))


def home() -> ResponseReturnValue:
    return redirect(url_for("subscriptions"))


def too_many_attempts(wait: int) -> ResponseReturnValue:
    unit = "second" if wait == 1 else "seconds"
    page = render_template(
        "error.html",
        title="Too many sign-in attempts",
        message=f"Too many sign-in attempts from your address: try again in {wait} {unit}.",
    )
    return page, 429, {"Retry-After": str(wait)}


def check_sign_in(gateway: Gateway, candidate: Caller) -> tuple[str, str]:
    """("", tenant) when the token is accepted for that organisation, else (what is wrong,
    ""). The tenant is the one a reply names (a subscription or a certificate carries it;
    no request says who a token is): "" for an organisation with neither yet."""
    try:
        listed = gateway.call(
            candidate, "subscriptions", "ListSubscriptions", ListSubscriptionsRequest(page_size=1)
        )
    except grpc.RpcError as error:
        return sign_in_problem(error, candidate), ""
    if listed.subscriptions:
        return "", str(listed.subscriptions[0].tenant)
    if candidate.tenant:
        return "", candidate.tenant
    with contextlib.suppress(grpc.RpcError):
        found = gateway.call(
            candidate, "subscriptions", "ListCertificates", ListCertificatesRequest()
        )
        if found.certificates:
            return "", str(found.certificates[0].tenant)
    return "", ""


def sign_in_problem(error: grpc.RpcError, candidate: Caller) -> str:
    code = error.code() if isinstance(error, grpc.Call) else None
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "This token is not accepted."
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return "This token cannot act for that organisation: leave it empty or fix it."
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return (
            "This is a platform token: name the organisation to act for."
            if not candidate.tenant
            else "That organisation name is not valid."
        )
    if code == grpc.StatusCode.UNAVAILABLE:
        return "The subscriptions service is not reachable: try again shortly."
    return error_sentence(error)


ROUTES = (
    Route("/healthz", healthz),
    Route("/sign-in", sign_in, ("GET", "POST")),
    Route("/sign-out", sign_out, ("POST",)),
    Route("/", home),
)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
