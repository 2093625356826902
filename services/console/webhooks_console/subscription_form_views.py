"""Add New Subscription and the edit form: the page with its catalogue choices, trigger
rows added and removed without JavaScript, typed secrets kept sealed across a round trip,
and what the service refused shown at the inputs it names."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
from flask import Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.v1.subscriptions_pb2 import (
    CreateSubscriptionRequest,
    ListCertificatesRequest,
    Subscription,
    UpdateSubscriptionRequest,
)
from webhooks_catalogue import limits, vocabulary
from webhooks_catalogue.authentication import AUTH_FIELDS, SECRET_FIELDS
from webhooks_console.channel_suggestions import whatsapp_suggestions
from webhooks_console.form_errors import FormErrors, collect, error_id, field_id
from webhooks_console.form_messages import Message
from webhooks_console.forms import (
    AUTH_CHOICES,
    FIELD_LABELS,
    FormProblems,
    SubscriptionForm,
    TriggerRow,
    checked_spec,
    distinct_component,
    form_of,
    parse_form,
)
from webhooks_console.pages import (
    Route,
    add_routes,
    app_sessions,
    call,
    catalogue,
    error_sentence,
    rpc_code,
    rpc_error_page,
)
from webhooks_console.secret_views import stash_secret
from webhooks_console.subscription_views import get_subscription
from webhooks_console.values import number_or
from webhooks_grpc.errors import field_violations
from webhooks_secrets import SecretUnreadable

MAX_TRIGGERS = 10
FORM_ERRORS = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
)


def form_page(
    form: SubscriptionForm,
    *,
    current: Subscription | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
    step: str = "details",
) -> ResponseReturnValue:
    certificates = call("subscriptions", "ListCertificates", ListCertificatesRequest())
    cat = catalogue()
    entities = {
        e.name: [
            {
                "name": t.name,
                "label": vocabulary.trigger_label(t.name),
                "fires_when": t.fires_when,
                "components": list(t.components),
            }
            for t in e.triggers
        ]
        for e in cat.entities
    }
    distinct = {
        e.name: {t.name: distinct_component(e.name, t.name) for t in e.triggers}
        for e in cat.entities
    }
    errors = errors or FormErrors()
    return (
        render_template(
            "subscription_form.html",
            form=form,
            current=current,
            catalogue=cat,
            certificates=certificates.certificates,
            entities=entities,
            distinct=distinct,
            auth_choices=AUTH_CHOICES,
            auth_fields=AUTH_FIELDS,
            field_labels=FIELD_LABELS,
            secret_names=SECRET_FIELDS,
            errors=errors,
            step=errors.first_step() or step,
            taken=taken_values(form),
            sealed=seal_typed(form),
            field_id=field_id,
            error_id=error_id,
            vocabulary=vocabulary,
            whatsapp_suggestions=whatsapp_suggestions(cat, current.id if current else ""),
            channel_id_length=limits.WHATSAPP_CHANNEL_ID_LENGTH,
        ),
        status,
    )


def seal_typed(form: SubscriptionForm) -> dict[str, str]:
    """Secrets typed into a form that comes back with an error, sealed with the console's
    key: kept without ever being in the page in plaintext."""
    box = app_sessions().box
    return {
        f"authentication.{kind}.{name}": box.seal(value)
        for (kind, name), value in form.auth_values.items()
        if name in SECRET_FIELDS
    }


def restore_sealed(form: SubscriptionForm) -> None:
    """The secrets of the previous round trip that were not typed again."""
    box = app_sessions().box
    for key, sealed in request.form.items():
        if not key.startswith("sealed:authentication."):
            continue
        _, kind, name = key.removeprefix("sealed:").split(".", 2)
        if kind not in AUTH_FIELDS or name not in SECRET_FIELDS:
            continue
        if not form.auth_values.get((kind, name)):
            with contextlib.suppress(SecretUnreadable):
                form.auth_values[(kind, name)] = box.open(sealed)


def taken_values(form: SubscriptionForm) -> list[dict[str, list[Any]]]:
    """Per trigger row, the values other rows of the same trigger already chose in the
    component that tells them apart (greyed out on the page)."""
    taken: list[dict[str, list[Any]]] = []
    for index, row in enumerate(form.triggers):
        component = distinct_component(form.entity, row.trigger) if row.trigger else ""
        values: dict[str, list[Any]] = {}
        for other_index, other in enumerate(form.triggers):
            if other_index == index or other.trigger != row.trigger or not component:
                continue
            if component == "activity_types":
                values.setdefault("activity_types", []).extend(
                    t for t in other.activity_types if t != 2 or not other.status_changes
                )
                values.setdefault("status_changes", []).extend(
                    f"{a}>{b}" for a, b in other.status_changes
                )
            elif component == "channels":
                values.setdefault("channels", []).extend(other.channels)
        taken.append(values)
    return taken


def rpc_form_errors(
    form: SubscriptionForm, error: grpc.RpcError, local: dict[str, str]
) -> FormErrors:
    """Every problem the service named, with the form's own (``local``: inputs that hold no
    number, sent so that the service refuses them) in place of the service's at that input."""
    found: list[tuple[str, str | Message]] = []
    for path, description in field_violations(error):
        bare = path.removeprefix("subscription.")
        if bare == "triggers" and description.startswith("at least one trigger"):
            # The form always has a first trigger row: its event is what is missing.
            found.append(("triggers[0].trigger", "is required"))
        elif bare not in local:
            found.append((path, description))
    found.extend(local.items())
    if not found:
        found.append(_without_field(error))
    return collect(form, found)


def _without_field(error: grpc.RpcError) -> tuple[str, str | Message]:
    details = (error.details() if isinstance(error, grpc.Call) else "") or ""
    if rpc_code(error) == grpc.StatusCode.ALREADY_EXISTS:
        return "name", details or "is or was already used"
    if rpc_code(error) == grpc.StatusCode.FAILED_PRECONDITION and "version" in details:
        return "expected_version", "is 0, the subscription is at 1"
    return "", Message("", error_sentence(error))


def form_action(form: SubscriptionForm) -> SubscriptionForm | None:
    """Add or remove a trigger row (no request to the service); None: submit."""
    action = request.form.get("action", "")
    if action == "refresh":  # without JavaScript: the triggers of the chosen entity
        return form
    if action == "add_trigger":
        if len(form.triggers) < MAX_TRIGGERS:
            form.triggers.append(TriggerRow())
        return form
    if action.startswith("remove_trigger:"):
        index = _int(action.split(":", 1)[1], -1)
        if 0 <= index < len(form.triggers) and len(form.triggers) > 1:
            del form.triggers[index]
        return form
    return None


def _int(text: str, default: int) -> int:
    return number_or(text, default)


def new_subscription() -> ResponseReturnValue:
    if request.method == "GET":
        return form_page(SubscriptionForm())
    form = parse_form(request.form)
    restore_sealed(form)
    changed = form_action(form)
    if changed is not None:
        return form_page(changed)
    local: dict[str, str] = {}
    try:
        spec, _, local = checked_spec(form, catalogue())
        response = call(
            "subscriptions",
            "CreateSubscription",
            CreateSubscriptionRequest(subscription=spec),
        )
    except FormProblems as problems:
        errors = collect(form, list(problems.problems.items()))
        return form_page(form, errors=errors, status=400)
    except grpc.RpcError as error:
        if rpc_code(error) not in FORM_ERRORS:
            return rpc_error_page(error)
        return form_page(form, errors=rpc_form_errors(form, error, local), status=400)
    created = response.subscription
    # The signing secret is in this reply only: shown once on the next page.
    stash_secret(created.id, response.signing_secret, rotated=False)
    flash(f"Webhook “{created.name}” created.")
    return redirect(url_for("signing_secret", subscription_id=created.id))


def edit_subscription(subscription_id: str) -> ResponseReturnValue:
    current = get_subscription(subscription_id)
    if request.method == "GET":
        return form_page(form_of(current), current=current)
    form = parse_form(request.form)
    restore_sealed(form)
    # Secrets stored for the chosen kind stay stored unless a new value is typed.
    form.secrets_set = form_of(current).secrets_set
    changed = form_action(form)
    if changed is not None:
        return form_page(changed, current=current)
    local: dict[str, str] = {}
    try:
        spec, mask, local = checked_spec(form, catalogue(), current)
        update = UpdateSubscriptionRequest(id=subscription_id, subscription=spec, update_mask=mask)
        if form.version:
            update.expected_version = form.version
        updated = call("subscriptions", "UpdateSubscription", update)
    except FormProblems as problems:
        errors = collect(form, list(problems.problems.items()))
        return form_page(form, current=current, errors=errors, status=400)
    except grpc.RpcError as error:
        if rpc_code(error) not in FORM_ERRORS:
            return rpc_error_page(error)
        errors = rpc_form_errors(form, error, local)
        return form_page(form, current=current, errors=errors, status=400)
    flash(f"Webhook “{updated.name}” updated.")
    return redirect(url_for("subscriptions"))


ROUTES = (
    Route("/webhooks/new", new_subscription, ("GET", "POST")),
    Route("/webhooks/<subscription_id>/edit", edit_subscription, ("GET", "POST")),
)


def register(app: Flask) -> None:
    add_routes(app, ROUTES)
