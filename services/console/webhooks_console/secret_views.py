"""A subscription's signing secret, shown once: right after Create Webhook and after
Rotate signing secret, never again.

The services return a generated secret only in the CreateSubscription and
RotateSigningSecret replies. The view that got it seals it (Fernet, the console's session
keys, as the token is sealed) into the signed session for exactly one GET of
``/webhooks/<id>/signing-secret``, which takes it out again and shows it with
``Cache-Control: no-store``: a reload, Back or a second tab finds nothing to show. The
secret is never in a URL, never in plaintext in the cookie, never in a log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from flask import Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.subscriptions_pb2 import (
    GetSubscriptionRequest,
    RotateSigningSecretRequest,
    Subscription,
)
from webhooks_console.display import time_html
from webhooks_console.pages import Route, add_routes, app_sessions, call
from webhooks_secrets import SecretUnreadable

STASH_KEY = "one_time_secret"
# How long a stashed secret waits for its one GET: the redirect follows at once, so a
# stash older than this was abandoned (a closed tab) and is dropped unread.
STASH_SECONDS = 300
# The overlaps offered on the confirmation page (seconds); the configured default
# (WEBHOOKS_SIGNING_SECRET_OVERLAP_SECONDS, as the subscriptions service uses) is added.
OVERLAP_CHOICES = (0, 3600, 24 * 3600, 7 * 24 * 3600)
MAX_OVERLAP_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class ShownSecret:
    subscription_id: str
    secret: str
    rotated: bool  # False: the secret of a new subscription


def stash_secret(subscription_id: str, secret: str, *, rotated: bool) -> None:
    """Keep ``secret`` sealed in the session for the next GET of its page only."""
    payload = json.dumps(
        {"id": subscription_id, "secret": secret, "rotated": rotated, "at": int(time.time())}
    )
    session[STASH_KEY] = app_sessions().box.seal(payload)


def take_secret(subscription_id: str) -> ShownSecret | None:
    """The stashed secret of this subscription, taken out of the session (whatever it is:
    a stash is read once at most); None when there is none, it is stale or unreadable."""
    sealed = session.pop(STASH_KEY, None)
    if not isinstance(sealed, str):
        return None
    try:
        stashed = json.loads(app_sessions().box.open(sealed))
    except (SecretUnreadable, ValueError):
        return None
    if not isinstance(stashed, dict) or stashed.get("id") != subscription_id:
        return None
    if not isinstance(stashed.get("at"), int) or time.time() - stashed["at"] > STASH_SECONDS:
        return None
    return ShownSecret(subscription_id, str(stashed["secret"]), bool(stashed.get("rotated")))


def duration_text(seconds: int) -> str:
    """3600 -> "1 hour", 86400 -> "24 hours", 604800 -> "7 days", 90 -> "90 seconds"."""
    for size, unit, least in ((86400, "day", 2 * 86400), (3600, "hour", 3600), (60, "minute", 60)):
        if seconds >= least and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def overlap_choices(default: int) -> list[tuple[int, str]]:
    values = sorted({*OVERLAP_CHOICES, default})
    return [(value, overlap_label(value)) for value in values]


def overlap_label(seconds: int) -> str:
    if seconds == 0:
        return "None: the old secret stops working at once"
    return duration_text(seconds)


def default_overlap() -> int:
    value: int = current_app.config["SIGNING_SECRET_OVERLAP_SECONDS"]
    return value


def signing_secret(subscription_id: str) -> ResponseReturnValue:
    shown = take_secret(subscription_id)
    sub: Subscription = call(
        "subscriptions", "GetSubscription", GetSubscriptionRequest(id=subscription_id)
    )
    previous_until = (
        time_html(sub.signing_secret.previous_valid_until)
        if shown is not None
        and shown.rotated
        and sub.signing_secret.HasField("previous_valid_until")
        else ""
    )
    response = current_app.make_response(
        render_template("signing_secret.html", sub=sub, shown=shown, previous_until=previous_until)
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def rotate_signing_secret(subscription_id: str) -> ResponseReturnValue:
    default = default_overlap()
    if request.method == "GET":
        sub: Subscription = call(
            "subscriptions", "GetSubscription", GetSubscriptionRequest(id=subscription_id)
        )
        return render_template(
            "confirm_rotate.html",
            sub=sub,
            choices=overlap_choices(default),
            default=default,
            default_text=duration_text(default),
        )
    try:
        overlap = int(request.form.get("overlap_seconds", default))
    except ValueError:
        overlap = default
    overlap = min(max(overlap, 0), MAX_OVERLAP_SECONDS)
    rotated = call(
        "subscriptions",
        "RotateSigningSecret",
        RotateSigningSecretRequest(id=subscription_id, overlap_seconds=overlap),
    )
    stash_secret(subscription_id, rotated.signing_secret, rotated=True)
    flash(f"Signing secret of “{rotated.subscription.name}” rotated.")
    return redirect(url_for("signing_secret", subscription_id=subscription_id))


ROUTES = (
    Route("/webhooks/<subscription_id>/signing-secret", signing_secret),
    Route("/webhooks/<subscription_id>/rotate-secret", rotate_signing_secret, ("GET", "POST")),
)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
