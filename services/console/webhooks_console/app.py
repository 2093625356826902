"""The console's composition root: the Flask application with its sessions, CSRF
protection, security headers, error pages and the views of its modules (``signin_views``,
``subscription_views``, ``subscription_form_views``, ``subscription_details_views``,
``secret_views``, ``failure_views``, ``failure_detail_views``).

Every view calls the services through ``Gateway`` as the signed-in caller; what a failed
call means for a person is decided here once (``rpc_error_page``): never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from flask import Flask, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from webhooks_catalogue.vocabulary import words
from webhooks_client.health_text import health_name
from webhooks_config import Settings
from webhooks_console import (
    failure_detail_views,
    failure_views,
    secret_views,
    signin_views,
    subscription_details_views,
    subscription_form_views,
    subscription_views,
)
from webhooks_console.display import url_breaks
from webhooks_console.gateway import Gateway
from webhooks_console.health_banners import health_class
from webhooks_console.pages import app_sessions, error_page, rpc_error_page
from webhooks_console.sessions import Sessions
from webhooks_console.signin_limit import SignInLimiter
from webhooks_console.signin_views import OPEN_ENDPOINTS
from webhooks_console.values import BadValue

log = logging.getLogger(__name__)
VIEWS = (
    signin_views,
    subscription_views,
    subscription_form_views,
    subscription_details_views,
    secret_views,
    failure_views,
    failure_detail_views,
)


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
    app.add_template_filter(health_name, "health_name")
    app.add_template_filter(health_class, "health_class")
    app.extensions["settings"] = settings
    app.extensions["gateway"] = gateway or Gateway(settings)
    app.extensions["sessions"] = sessions
    # Per client address: behind WEBHOOKS_CONSOLE_PROXY_HOPS proxies, ProxyFix has already
    # made remote_addr the address the nearest trusted proxy saw.
    app.extensions["signin_limiter"] = SignInLimiter(settings.console_signin_per_minute)
    app.before_request(require_sign_in)
    app.after_request(security_headers)
    for views in VIEWS:
        views.register(app)
    register_error_pages(app)
    return app


def require_sign_in() -> ResponseReturnValue | None:
    sessions = app_sessions()
    g.caller = sessions.caller()
    g.organisation = sessions.organisation() if g.caller is not None else ""
    if g.caller is None and request.endpoint not in OPEN_ENDPOINTS:
        if request.method == "GET":
            return redirect(url_for("sign_in", next=request.full_path))
        return error_page("Signed out", "Your sign-in has ended: sign in again.", 401)
    return None


def security_headers(response: Any) -> Any:
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


def register_error_pages(app: Flask) -> None:
    app.register_error_handler(CSRFError, csrf_refused)
    app.register_error_handler(BadValue, bad_value)
    app.register_error_handler(grpc.RpcError, rpc_failed)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)


def csrf_refused(error: CSRFError) -> ResponseReturnValue:
    return error_page(
        "Form refused",
        "The form was refused: its security token is missing or does not match your "
        "session. Go back, reload the page and try again.",
        403,
    )


def bad_value(error: BadValue) -> ResponseReturnValue:
    return error_page("Not a valid value", str(error), 400)


def rpc_failed(error: grpc.RpcError) -> ResponseReturnValue:
    return rpc_error_page(error)


def http_error(error: HTTPException) -> ResponseReturnValue:
    return error_page(error.name, error.description or "", error.code or 500)


def unexpected(error: Exception) -> ResponseReturnValue:
    log.exception("unexpected error in %s", request.path)
    return error_page("Something went wrong", "The console could not show this page.", 500)
