"""The Webhooks module: the list of subscriptions, Add New Subscription and its edit form,
Details with the History, the on/off toggle, Send test event and Delete."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import grpc
from flask import Flask, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from google.protobuf.json_format import ParseDict, ParseError

from webhooks.v1.common_pb2 import Catalogue, TriggerSpec
from webhooks.v1.failures_pb2 import CountFailuresRequest, SubscriptionFailureCount
from webhooks.v1.messages_pb2 import AttemptOutcome
from webhooks.v1.sender_pb2 import SendTestEventRequest
from webhooks.v1.subscriptions_pb2 import (
    CreateSubscriptionRequest,
    DeleteSubscriptionRequest,
    GetCatalogueRequest,
    GetSubscriptionHistoryRequest,
    GetSubscriptionRequest,
    ListCertificatesRequest,
    ListSubscriptionsRequest,
    SetSubscriptionActiveRequest,
    Subscription,
    SubscriptionOrder,
    UpdateSubscriptionRequest,
)
from webhooks_catalogue.authentication import AUTH_FIELDS, SECRET_FIELDS
from webhooks_client.failure_text import class_text
from webhooks_client.protos import message_dict, timestamp_text
from webhooks_client.subscription_text import subscription_fields, whole_numbers
from webhooks_console.display import Pages, trigger_text, words
from webhooks_console.forms import (
    AUTH_CHOICES,
    FIELD_LABELS,
    FormProblems,
    SubscriptionForm,
    TriggerRow,
    build_spec,
    distinct_component,
    form_inputs,
    form_of,
    parse_form,
    step_of,
    violation_input,
)
from webhooks_console.pages import (
    app_sessions,
    call,
    local_path,
    remember_tenant,
    rpc_code,
    rpc_error_page,
)
from webhooks_console.secret_views import stash_secret
from webhooks_console.values import number_or
from webhooks_grpc.errors import field_violations
from webhooks_secrets import SecretUnreadable

PAGE_SIZE = 20
MAX_TRIGGERS = 10
FORM_ERRORS = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
)


def catalogue() -> Catalogue:
    """GetCatalogue once per process: the catalogue is part of the release."""
    cached: Catalogue | None = current_app.extensions.get("catalogue")
    if cached is None:
        cached = call("subscriptions", "GetCatalogue", GetCatalogueRequest())
        current_app.extensions["catalogue"] = cached
    return cached


def failure_counts(ids: list[str]) -> dict[str, SubscriptionFailureCount] | None:
    """Failed attempts per subscription; None when the failures service cannot say (the
    list is still shown)."""
    if not ids:
        return {}
    try:
        response = call("failures", "CountFailures", CountFailuresRequest(subscription_ids=ids))
    except grpc.RpcError:
        return None
    return {count.subscription_id: count for count in response.counts}


def get_subscription(subscription_id: str) -> Subscription:
    found: Subscription = call(
        "subscriptions", "GetSubscription", GetSubscriptionRequest(id=subscription_id)
    )
    return found


def form_page(
    form: SubscriptionForm,
    *,
    current: Subscription | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    step: str = "details",
) -> ResponseReturnValue:
    certificates = call("subscriptions", "ListCertificates", ListCertificatesRequest())
    cat = catalogue()
    entities = {
        e.name: [{"name": t.name, "components": list(t.components)} for t in e.triggers]
        for e in cat.entities
    }
    distinct = {
        e.name: {t.name: distinct_component(e.name, t.name) for t in e.triggers}
        for e in cat.entities
    }
    errors = errors or {}
    if errors:
        first = next((name for name in errors if name), "")
        step = step_of(first) if first else step
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
            step=step,
            taken=taken_values(form),
            sealed=seal_typed(form),
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


def collect_errors(form: SubscriptionForm, problems: dict[str, str]) -> dict[str, list[str]]:
    inputs = form_inputs(form)
    errors: dict[str, list[str]] = {}
    for path, message in problems.items():
        errors.setdefault(violation_input(path, inputs), []).append(message)
    return errors


def rpc_form_errors(form: SubscriptionForm, error: grpc.RpcError) -> dict[str, list[str]]:
    violations = field_violations(error)
    if violations:
        return collect_errors(form, dict(violations))
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    if rpc_code(error) == grpc.StatusCode.ALREADY_EXISTS:
        return {"name": [details or "is already used by another subscription"]}
    if rpc_code(error) == grpc.StatusCode.FAILED_PRECONDITION and "version" in (details or ""):
        return {
            "": [
                "This subscription was changed by someone else since you opened it: "
                "reload the page to see the current settings."
            ]
        }
    return {"": [details or "the service refused the request"]}


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


def stored_trigger(item: Any) -> Any:
    """A trigger as the history stores it, in TriggerSpec's JSON names: its status changes
    are kept as ``{"from", "to"}``."""
    if not isinstance(item, dict):
        return item
    changes = item.get("status_changes")
    if not isinstance(changes, list):
        return item
    renamed = [
        {"from_status": c.get("from", 0), "to_status": c.get("to", 0)}
        if isinstance(c, dict) and ("from" in c or "to" in c)
        else c
        for c in changes
    ]
    return {**item, "status_changes": renamed}


def change_lines(changes: dict[str, Any], entity: str, cat: Catalogue) -> list[tuple[str, str]]:
    """A history entry's changes as (field, value) lines: nested fields dotted, triggers in
    words as the Webhooks list shows them, secrets as the service masked them."""
    lines: list[tuple[str, str]] = []
    entity = str(changes.get("entity") or entity)

    def walk(path: str, value: Any) -> None:
        if path == "triggers" and isinstance(value, list):
            for index, item in enumerate(value, start=1):
                try:
                    trigger = ParseDict(
                        stored_trigger(item), TriggerSpec(), ignore_unknown_fields=True
                    )
                    text = trigger_text(trigger, entity, cat).text
                except (ParseError, TypeError):
                    text = json.dumps(item, sort_keys=True)
                lines.append((f"trigger {index}", text))
        elif isinstance(value, dict):
            for key in sorted(value):
                walk(f"{path}.{key}" if path else key, value[key])
        elif isinstance(value, list):
            shown = [json.dumps(v) if isinstance(v, dict | list) else str(v) for v in value]
            lines.append((path, ", ".join(shown) or "—"))
        elif isinstance(value, bool):
            lines.append((path, "yes" if value else "no"))
        else:
            lines.append((path, "—" if value is None or value == "" else str(value)))

    walk("", changes)
    return lines


def what_happened(event: str, changes: dict[str, Any], previous_url: str | None) -> str:
    """A history entry as the start of a sentence ("Renamed to “X”"); the view adds who
    and when. ``previous_url``: the webhook URL before this entry (None: not known)."""
    if event == "Created":
        return f"Created as “{changes.get('name', '')}”" if changes.get("name") else "Created"
    if event == "Renamed":
        return f"Renamed to “{changes.get('name', '')}”"
    if event == "EndpointChanged":
        url = (changes.get("webhook") or {}).get("url")
        if url and url != previous_url:
            return f"Webhook URL changed to {url}"
        return "Webhook settings changed"
    if event == "AuthChanged":
        return "Authentication changed (secrets not shown)"
    if event == "TriggersChanged":
        return "Triggers changed"
    if event == "CompleteDataChanged":
        included = changes.get("include_complete_data")
        return "Complete data included" if included else "Complete data no longer included"
    if event == "RetryPolicyChanged":
        return "Retries changed"
    if event == "SigningSecretRotated":
        return "Signing secret rotated (secrets not shown)"
    if event in ("Activated", "Deactivated", "Deleted"):
        return event
    return words(event)


def history_rows(entries: Any, entity: str, cat: Catalogue) -> list[dict[str, Any]]:
    """Newest first, each a sentence with who and when, and its changes as lines."""
    rows: list[dict[str, Any]] = []
    url: str | None = None
    for entry in entries:  # oldest first: the URL before each change is known
        changes = whole_numbers(message_dict(entry)["changes"])
        happened = what_happened(entry.event_type, changes, url)
        url = (changes.get("webhook") or {}).get("url", url)
        at = timestamp_text(entry.occurred_at)
        by = f" by {entry.actor}" if entry.actor else ""
        rows.append(
            {
                "version": entry.version,
                "event": entry.event_type,
                "sentence": f"{happened}{by} at {at}",
                "at": at,
                "actor": entry.actor,
                "changes": change_lines(changes, entity, cat),
            }
        )
    return rows[::-1]


def register(app: Flask) -> None:
    @app.get("/webhooks")
    def subscriptions() -> ResponseReturnValue:
        query = request.args.get("q", "").strip()
        page_token = request.args.get("page", "")
        back = request.args.getlist("back")
        response = call(
            "subscriptions",
            "ListSubscriptions",
            ListSubscriptionsRequest(
                name_contains=query,
                page_size=PAGE_SIZE,
                page_token=page_token,
                order_by=SubscriptionOrder.SUBSCRIPTION_ORDER_CREATED_DESC,
            ),
        )
        items = list(response.subscriptions)
        if items:
            remember_tenant(items[0].tenant)
        counts = failure_counts([s.id for s in items])
        cat = catalogue()
        rows = [
            {
                "sub": sub,
                "triggers": [trigger_text(t, sub.entity, cat) for t in sub.triggers],
                "created": timestamp_text(sub.created_at),
                "modified": timestamp_text(sub.updated_at),
                "failures": (counts or {}).get(sub.id),
            }
            for sub in items
        ]
        return render_template(
            "subscriptions.html",
            rows=rows,
            query=query,
            pages=Pages.of(page_token, back, response.next_page_token),
            counts_known=counts is not None,
        )

    @app.route("/webhooks/new", methods=["GET", "POST"])
    def new_subscription() -> ResponseReturnValue:
        if request.method == "GET":
            return form_page(SubscriptionForm())
        form = parse_form(request.form)
        restore_sealed(form)
        changed = form_action(form)
        if changed is not None:
            return form_page(changed)
        try:
            spec, _ = build_spec(form, catalogue())
            response = call(
                "subscriptions",
                "CreateSubscription",
                CreateSubscriptionRequest(subscription=spec),
            )
        except FormProblems as problems:
            return form_page(form, errors=collect_errors(form, problems.problems), status=400)
        except grpc.RpcError as error:
            if rpc_code(error) not in FORM_ERRORS:
                return rpc_error_page(error)
            return form_page(form, errors=rpc_form_errors(form, error), status=400)
        created = response.subscription
        # The signing secret is in this reply only: shown once on the next page.
        stash_secret(created.id, response.signing_secret, rotated=False)
        flash(f"Webhook “{created.name}” created.")
        return redirect(url_for("signing_secret", subscription_id=created.id))

    @app.route("/webhooks/<subscription_id>/edit", methods=["GET", "POST"])
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
        try:
            spec, mask = build_spec(form, catalogue(), current)
            update = UpdateSubscriptionRequest(
                id=subscription_id, subscription=spec, update_mask=mask
            )
            if form.version:
                update.expected_version = form.version
            updated = call("subscriptions", "UpdateSubscription", update)
        except FormProblems as problems:
            errors = collect_errors(form, problems.problems)
            return form_page(form, current=current, errors=errors, status=400)
        except grpc.RpcError as error:
            if rpc_code(error) not in FORM_ERRORS:
                return rpc_error_page(error)
            errors = rpc_form_errors(form, error)
            return form_page(form, current=current, errors=errors, status=400)
        flash(f"Webhook “{updated.name}” updated.")
        return redirect(url_for("subscriptions"))

    @app.get("/webhooks/<subscription_id>")
    def subscription_details(subscription_id: str) -> ResponseReturnValue:
        sub = get_subscription(subscription_id)
        history = call(
            "subscriptions",
            "GetSubscriptionHistory",
            GetSubscriptionHistoryRequest(id=subscription_id),
        )
        counts = failure_counts([sub.id])
        cat = catalogue()
        entries = history_rows(history.entries, sub.entity, cat)
        return render_template(
            "subscription_details.html",
            sub=sub,
            fields=subscription_fields(sub),
            triggers=[trigger_text(t, sub.entity, cat) for t in sub.triggers],
            entries=entries,
            failures=(counts or {}).get(sub.id),
        )

    @app.post("/webhooks/<subscription_id>/active")
    def set_active(subscription_id: str) -> ResponseReturnValue:
        active = request.form.get("active") == "on"
        sub = call(
            "subscriptions",
            "SetSubscriptionActive",
            SetSubscriptionActiveRequest(id=subscription_id, active=active),
        )
        flash(f"Webhook “{sub.name}” is {'on' if sub.active else 'off'}.")
        return redirect(local_path(request.form.get("back"), url_for("subscriptions")))

    @app.post("/webhooks/<subscription_id>/test")
    def send_test_event(subscription_id: str) -> ResponseReturnValue:
        sub = get_subscription(subscription_id)
        response = call(
            "sender", "SendTestEvent", SendTestEventRequest(subscription_id=subscription_id)
        )
        attempt = response.attempt
        if attempt.outcome == AttemptOutcome.ATTEMPT_OUTCOME_SUCCEEDED:
            flash(
                f"Test event to “{sub.name}” delivered: HTTP {attempt.status_code} "
                f"in {attempt.duration_ms} ms."
            )
        else:
            status = f"HTTP {attempt.status_code}, " if attempt.status_code else ""
            flash(
                f"Test event to “{sub.name}” failed: {status}{class_text(attempt.failure_class)}"
                f" — {attempt.error_message or 'no message'}",
                "error",
            )
        return redirect(local_path(request.form.get("back"), url_for("subscriptions")))

    @app.route("/webhooks/<subscription_id>/delete", methods=["GET", "POST"])
    def delete_subscription(subscription_id: str) -> ResponseReturnValue:
        sub = get_subscription(subscription_id)
        if request.method == "GET":
            return render_template("confirm_delete.html", sub=sub)
        call(
            "subscriptions",
            "DeleteSubscription",
            DeleteSubscriptionRequest(id=subscription_id, expected_version=sub.version),
        )
        flash(f"Webhook “{sub.name}” deleted.")
        return redirect(url_for("subscriptions"))
