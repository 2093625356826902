"""The console's composition root: the Flask application with its sessions, CSRF
protection, error pages and the views of the two modules (``subscription_views``,
``failure_views``).

Every view calls the services through ``Gateway`` as the signed-in caller; what a failed
call means for a person is decided here once (``rpc_error_page``): never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import grpc
from flask import Flask, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from webhooks.v1.subscriptions_pb2 import ListCertificatesRequest, ListSubscriptionsRequest
from webhooks_config import Settings
from webhooks_console import failure_views, secret_views, subscription_views
from webhooks_console.display import url_breaks, words
from webhooks_console.gateway import Caller, Gateway
from webhooks_console.pages import app_gateway, error_page, local_path, rpc_error_page
from webhooks_console.sessions import Sessions
from webhooks_console.signin_limit import SignInLimiter
from webhooks_console.values import BadValue
from webhooks_grpc.errors import describe_rpc_error

log = logging.getLogger(__name__)
OPEN_ENDPOINTS = {"sign_in", "static", "healthz"}


def create_app(settings: Settings, gateway: Gateway | None = None) -> Flask:
    app = Flask(__name__)
    sessions = Sessions(settings)
    sessions.configure(app)
    app.config.update(
        WTF_CSRF_TIME_LIMIT=None,  # as long as the session: a long form must not expire
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
        # Rotate signing secret's default overlap: the subscriptions service's default.
        SIGNING_SECRET_OVERLAP_SECONDS=settings.signing_secret_overlap_seconds,
    )
    CSRFProtect(app)
    if settings.console_proxy_hops:
        hops = settings.console_proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    app.add_template_filter(url_breaks, "url_breaks")
    app.add_template_filter(words, "trigger_words")
    app.extensions["gateway"] = gateway or Gateway(settings)
    app.extensions["sessions"] = sessions
    # Per client address: behind WEBHOOKS_CONSOLE_PROXY_HOPS proxies, ProxyFix has already
    # made remote_addr the address the nearest trusted proxy saw.
    limiter = SignInLimiter(settings.console_signin_per_minute)
    app.extensions["signin_limiter"] = limiter

    @app.before_request
    def require_sign_in() -> ResponseReturnValue | None:
        g.caller = sessions.caller()
        g.organisation = sessions.organisation() if g.caller is not None else ""
        if g.caller is None and request.endpoint not in OPEN_ENDPOINTS:
            if request.method == "GET":
                return redirect(url_for("sign_in", next=request.full_path))
            return error_page("Signed out", "Your sign-in has ended: sign in again.", 401)
        return None

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        )
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return {"status": "SERVING"}

    @app.route("/sign-in", methods=["GET", "POST"])
    def sign_in() -> ResponseReturnValue:
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

    @app.post("/sign-out")
    def sign_out() -> ResponseReturnValue:
        sessions.sign_out()
        flash("You are signed out.")
        return redirect(url_for("sign_in"))

    @app.get("/")
    def home() -> ResponseReturnValue:
        return redirect(url_for("subscriptions"))

    subscription_views.register(app)
    secret_views.register(app)
    failure_views.register(app)

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> ResponseReturnValue:
        return error_page(
            "Form refused",
            "The form was refused: its security token is missing or does not match your "
            "session. Go back, reload the page and try again.",
            403,
        )

    @app.errorhandler(BadValue)
    def bad_value(error: BadValue) -> ResponseReturnValue:
        return error_page("Not a valid value", str(error), 400)

    @app.errorhandler(grpc.RpcError)
    def rpc_failed(error: grpc.RpcError) -> ResponseReturnValue:
        return rpc_error_page(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        return error_page(error.name, error.description or "", error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        log.exception("unexpected error in %s", request.path)
        return error_page("Something went wrong", "The console could not show this page.", 500)

    return app


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
    return describe_rpc_error(error)
