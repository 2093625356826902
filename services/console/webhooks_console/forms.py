"""The Add New Subscription / Edit form both ways: what the browser posted to a
``SubscriptionSpec`` (as plain values for ``webhooks_client.subscription_spec``, which the
CLI builds its requests with too), a stored ``Subscription`` back to what the form shows,
and which trigger component tells two rows apart (where a server-side field violation goes
on the form: ``form_errors``).

Form inputs are named after the API's field paths without the ``subscription.`` prefix
(``webhook.url``, ``triggers[1].activity_types``, ``authentication.basic.password``), so a
``BadRequest`` violation lands next to the input it names. Secrets are never sent back to
the browser: a stored one is shown as set, and an empty secret input keeps it (the API
keeps a stored secret when the same kind is sent with it empty).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.field_mask_pb2 import FieldMask
from werkzeug.datastructures import MultiDict

from webhooks.v1.common_pb2 import Catalogue, StatusChange, TriggerSpec, WebhookType
from webhooks.v1.subscriptions_pb2 import Subscription, SubscriptionSpec
from webhooks_catalogue import WHATSAPP_CHANNEL_ID, limits
from webhooks_catalogue import trigger as catalogue_trigger
from webhooks_catalogue.authentication import AUTH_FIELDS, SECRET_FIELDS
from webhooks_catalogue.retry_policy import DEFAULT_INTERVAL_SECONDS, DEFAULT_RETRIES
from webhooks_client.subscription_spec import (
    MASK_ORDER,
    SOAP_VERSIONS,
    SpecProblem,
    SpecValues,
    WebhookValues,
    apply_values,
    spec_of,
)
from webhooks_console.values import INT32_MAX, BadValue, number_or, whole_number

# The Authentication oneof field of each kind the form offers, in the guide's order.
AUTH_CHOICES: tuple[tuple[str, str], ...] = (
    ("none", "None"),
    ("basic", "Basic"),
    ("oauth2_access_token", "OAuth 2.0 access token"),
    ("oauth2_client_credentials", "OAuth 2.0 client credentials"),
    ("oauth2_password", "OAuth 2.0 password credentials"),
)
FIELD_LABELS = {
    "username": "Username",
    "password": "Password",
    "header_prefix": "Header prefix",
    "access_token": "Access token",
    "token_url": "Token URL",
    "scope": "Scope",
    "client_id": "Client ID",
    "client_secret": "Client secret",
}
EMPTY_SOAP_PARAMETER_ROWS = 1
EMPTY_STATUS_CHANGE_ROWS = 1


# The posted form as the views get it.
FormData = MultiDict[str, str]


@dataclass
class TriggerRow:
    trigger: str = ""
    channels: list[int] = field(default_factory=list)
    activity_types: list[int] = field(default_factory=list)
    status_changes: list[tuple[int, int]] = field(default_factory=list)  # (from, to)
    whatsapp_channels: list[str] = field(default_factory=list)  # ids, as typed
    whatsapp_statuses: list[str] = field(default_factory=list)

    @staticmethod
    def channel_ok(channel: str) -> bool:
        """Whether a typed WhatsApp channel id is one (its row is marked when not)."""
        return WHATSAPP_CHANNEL_ID.fullmatch(channel) is not None


@dataclass
class SubscriptionForm:
    """Everything the form shows; built from a post or from a stored subscription."""

    name: str = ""
    entity: str = ""
    triggers: list[TriggerRow] = field(default_factory=lambda: [TriggerRow()])
    include_complete_data: bool = False
    type: str = "rest"  # rest or soap
    url: str = ""
    certificate: str = ""
    soap_operation: str = ""
    soap_namespace: str = ""
    soap_action: str = ""
    soap_version: str = "1.1"
    soap_parameters: list[tuple[str, str]] = field(default_factory=list)
    wsdl_url: str = ""
    rate_limit: str = ""  # deliveries per second as typed; empty or 0: no limit
    auth: str = "none"  # an Authentication oneof field
    # (oneof, field) -> value typed; secrets are never filled from a stored subscription
    auth_values: dict[tuple[str, str], str] = field(default_factory=dict)
    secrets_set: set[tuple[str, str]] = field(default_factory=set)  # stored, not shown
    retries: str = str(DEFAULT_RETRIES)
    interval: str = str(DEFAULT_INTERVAL_SECONDS)
    version: int = 0  # of the subscription being edited

    def auth_value(self, kind: str, name: str) -> str:
        return self.auth_values.get((kind, name), "")

    def soap_rows(self) -> list[tuple[str, str]]:
        return [*self.soap_parameters, *[("", "")] * EMPTY_SOAP_PARAMETER_ROWS]


class FormProblems(Exception):
    """Problems found before asking the service: input name -> message."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def _ints(values: Sequence[str]) -> list[int]:
    # Options of the console's own selects: a value no int32 holds is a forged one, dropped.
    missing = INT32_MAX + 1
    return [n for n in (number_or(v, missing) for v in values) if n != missing]


def parse_form(form: FormData, *, trigger_rows: int | None = None) -> SubscriptionForm:
    """What the browser posted, as typed (secrets included: they go to the API only)."""
    # The row count is bounded: a forged count would otherwise loop for ever.
    count = trigger_rows if trigger_rows is not None else _int(form.get("trigger_count"), 1)
    auth = form.get("authentication", "none")
    return SubscriptionForm(
        name=form.get("name", "").strip(),
        entity=form.get("entity", "").strip(),
        triggers=[_trigger_row(form, i) for i in range(min(max(count, 1), limits.TRIGGERS))],
        include_complete_data=form.get("include_complete_data") in ("on", "true", "1"),
        type="soap" if form.get("webhook.type") == "soap" else "rest",
        url=form.get("webhook.url", "").strip(),
        certificate=form.get("webhook.client_certificate_id", "").strip(),
        soap_operation=form.get("webhook.soap.operation", "").strip(),
        soap_namespace=form.get("webhook.soap.namespace", "").strip(),
        soap_action=form.get("webhook.soap.soap_action", "").strip(),
        soap_version=form.get("webhook.soap.version", "1.1")
        if form.get("webhook.soap.version") in SOAP_VERSIONS
        else "1.1",
        soap_parameters=_soap_parameters(form),
        wsdl_url=form.get("webhook.soap.wsdl_url", "").strip(),
        rate_limit=form.get("webhook.rate_limit_per_second", "").strip(),
        auth=auth if auth in AUTH_FIELDS else "none",
        auth_values=_auth_values(form),
        retries=form.get("retry_policy.retries", str(DEFAULT_RETRIES)).strip(),
        interval=form.get("retry_policy.interval_seconds", str(DEFAULT_INTERVAL_SECONDS)).strip(),
        version=_int(form.get("version"), 0),
    )


def _trigger_row(form: FormData, index: int) -> TriggerRow:
    prefix = f"triggers[{index}]"
    froms = form.getlist(f"{prefix}.status_changes.from")
    tos = form.getlist(f"{prefix}.status_changes.to")
    changes = [
        (_int(source, 0), _int(target, 0))
        for source, target in zip(froms, tos, strict=False)
        if target.strip()
    ]
    return TriggerRow(
        trigger=form.get(f"{prefix}.trigger", "").strip(),
        channels=_ints(form.getlist(f"{prefix}.channels")),
        activity_types=_ints(form.getlist(f"{prefix}.activity_types")),
        status_changes=changes,
        whatsapp_channels=channel_ids(form.getlist(f"{prefix}.whatsapp_channels")),
        whatsapp_statuses=[s for s in form.getlist(f"{prefix}.whatsapp_statuses") if s],
    )


def channel_ids(posted: Sequence[str]) -> list[str]:
    """The WhatsApp channel ids of a trigger row: one per input with scripts, one per line of
    the box without (commas separate too); each once, in the order typed."""
    ids = (part.strip() for value in posted for part in re.split(r"[\r\n,]+", value))
    return list(dict.fromkeys(i for i in ids if i))


def _soap_parameters(form: FormData) -> list[tuple[str, str]]:
    names = form.getlist("webhook.soap.parameters.name")
    values = form.getlist("webhook.soap.parameters.value")
    pairs = zip(names, values, strict=False)
    return [(name.strip(), value) for name, value in pairs if name.strip() or value]


def _auth_values(form: FormData) -> dict[tuple[str, str], str]:
    auth_values = {}
    for kind, fields in AUTH_FIELDS.items():
        for name in fields:
            value = form.get(f"authentication.{kind}.{name}", "")
            if value:
                auth_values[(kind, name)] = value if name in SECRET_FIELDS else value.strip()
    return auth_values


def _int(value: str | None, default: int) -> int:
    return number_or(value, default)


def form_of(sub: Subscription) -> SubscriptionForm:
    """What the edit form shows for a stored subscription: never a secret's value."""
    rows = [
        TriggerRow(
            trigger=t.trigger,
            channels=list(t.channels),
            activity_types=list(t.activity_types),
            status_changes=[(sc.from_status, sc.to_status) for sc in t.status_changes],
            whatsapp_channels=list(t.whatsapp_channels),
            whatsapp_statuses=list(t.whatsapp_statuses),
        )
        for t in sub.triggers
    ]
    soap = sub.webhook.soap
    kind = sub.authentication.WhichOneof("kind") or "none"
    auth_values: dict[tuple[str, str], str] = {}
    secrets_set: set[tuple[str, str]] = set()
    if kind != "none":
        part = getattr(sub.authentication, kind)
        for name in AUTH_FIELDS[kind]:
            if name in SECRET_FIELDS:
                if getattr(part, name + "_set"):
                    secrets_set.add((kind, name))
            elif getattr(part, name):
                auth_values[(kind, name)] = getattr(part, name)
    retry = sub.retry_policy
    version = {v: k for k, v in SOAP_VERSIONS.items()}.get(soap.version, "1.1")
    return SubscriptionForm(
        name=sub.name,
        entity=sub.entity,
        triggers=rows or [TriggerRow()],
        include_complete_data=sub.include_complete_data,
        type="soap" if sub.webhook.type == WebhookType.WEBHOOK_TYPE_SOAP else "rest",
        url=sub.webhook.url,
        certificate=sub.webhook.client_certificate_id,
        soap_operation=soap.operation,
        soap_namespace=soap.namespace,
        soap_action=soap.soap_action,
        soap_version=version,
        soap_parameters=[(p.name, p.value) for p in soap.parameters],
        wsdl_url=soap.wsdl_url,
        rate_limit=str(sub.webhook.rate_limit_per_second or ""),
        auth=kind,
        auth_values=auth_values,
        secrets_set=secrets_set,
        retries=str(retry.retries) if retry.HasField("retries") else str(DEFAULT_RETRIES),
        interval=str(retry.interval_seconds)
        if retry.HasField("interval_seconds")
        else str(DEFAULT_INTERVAL_SECONDS),
        version=sub.version,
    )


def trigger_spec(row: TriggerRow, components: Sequence[str]) -> TriggerSpec:
    """One trigger row with only the components its trigger takes (a hidden group's
    ticked boxes are ignored)."""
    spec = TriggerSpec(trigger=row.trigger)
    if "channels" in components:
        spec.channels.extend(row.channels)
    if "activity_types" in components:
        spec.activity_types.extend(row.activity_types)
    if "status_changes" in components:
        spec.status_changes.extend(
            StatusChange(from_status=source, to_status=target)
            for source, target in row.status_changes
        )
    if "whatsapp_channels" in components:
        spec.whatsapp_channels.extend(row.whatsapp_channels)
    if "whatsapp_statuses" in components:
        spec.whatsapp_statuses.extend(row.whatsapp_statuses)
    return spec


def trigger_components(catalogue: Catalogue, entity: str, trigger: str) -> list[str]:
    for item in catalogue.entities:
        if item.name.casefold() == entity.casefold():
            for candidate in item.triggers:
                if candidate.name.casefold() == trigger.casefold():
                    return list(candidate.components)
    return []


def _values(
    form: SubscriptionForm, current: Subscription | None, catalogue: Catalogue, numbers: Numbers
) -> SpecValues:
    """The form as plain values: every section given, so an edit rewrites all of them."""
    auth_values = {
        name: form.auth_value(form.auth, name)
        for name in AUTH_FIELDS[form.auth]
        # An empty secret is not sent: the API keeps the stored one.
        if name not in SECRET_FIELDS or form.auth_value(form.auth, name)
    }
    keep_wsdl_document = current is not None and bool(current.webhook.soap.wsdl_document)
    soap = form.type == "soap"
    retries, interval, rate_limit = numbers
    return SpecValues(
        name=form.name,
        entity=form.entity,
        triggers=[
            trigger_spec(row, trigger_components(catalogue, form.entity, row.trigger))
            for row in form.triggers
            if row.trigger
        ],
        include_complete_data=form.include_complete_data,
        webhook=WebhookValues(
            type=form.type,
            url=form.url,
            certificate=form.certificate,
            soap_operation=form.soap_operation if soap else None,
            soap_namespace=form.soap_namespace if soap else None,
            soap_action=form.soap_action if soap else None,
            soap_version=form.soap_version if soap else None,
            soap_parameters=form.soap_parameters if soap else None,
            wsdl_url=form.wsdl_url if soap and (form.wsdl_url or not keep_wsdl_document) else None,
            rate_limit_per_second=rate_limit,
        ),
        auth_kind=form.auth,
        auth_values=auth_values,
        retries=retries,
        interval_seconds=interval,
    )


Numbers = tuple[int, int, int]
# What a number that is not one is sent as: a value the service refuses at the same field
# (retries, interval and rate limit are never negative), so the request fails and its
# answer names every other problem too.
REFUSED_NUMBER = -1


def _numbers(form: SubscriptionForm) -> tuple[Numbers, dict[str, str]]:
    """Retries, interval and rate limit (empty: none) as numbers, and the inputs that hold
    no whole number; the service checks their bounds and names the field."""
    problems = {}
    numbers = []
    for name, value in (
        ("retry_policy.retries", form.retries),
        ("retry_policy.interval_seconds", form.interval),
        ("webhook.rate_limit_per_second", form.rate_limit or "0"),
    ):
        try:
            numbers.append(whole_number(name, value or "", -INT32_MAX, INT32_MAX))
        except BadValue:
            problems[name] = "must be a whole number"
            numbers.append(REFUSED_NUMBER)
    return (numbers[0], numbers[1], numbers[2]), problems


def build_spec(
    form: SubscriptionForm, catalogue: Catalogue, current: Subscription | None = None
) -> tuple[SubscriptionSpec, FieldMask]:
    """The request's spec: whole for create; for update ``current`` with every section of
    the form applied and a mask naming all of them. FormProblems when a number is not one."""
    spec, mask, problems = checked_spec(form, catalogue, current)
    if problems:
        raise FormProblems(problems)
    return spec, mask


def checked_spec(
    form: SubscriptionForm, catalogue: Catalogue, current: Subscription | None = None
) -> tuple[SubscriptionSpec, FieldMask, dict[str, str]]:
    """As ``build_spec``, with the inputs that hold no number (input -> problem) instead of
    raising: their values go as ``REFUSED_NUMBER``, so the service still judges the rest
    and can never accept the request."""
    numbers, problems = _numbers(form)
    values = _values(form, current, catalogue, numbers)
    spec = spec_of(current) if current is not None else SubscriptionSpec()
    try:
        apply_values(spec, values)
    except SpecProblem as err:
        raise FormProblems({**problems, err.field: err.message}) from None
    return spec, FieldMask(paths=list(MASK_ORDER)), problems


def distinct_component(entity: str, trigger: str) -> str:
    """The component two triggers of this name must not share (the guide's greyed-out
    values), or "" when the trigger may appear only once."""
    found = catalogue_trigger(entity, trigger)
    if found is None or found.distinct_by is None:
        return ""
    return str(found.distinct_by)
