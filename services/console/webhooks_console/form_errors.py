"""Where a problem goes on the Add New Subscription / Edit form: the input a field path of
the API (a ``BadRequest`` violation, a ``SpecProblem``) names, and the step of the form
that shows that input. Form inputs are named after the API's field paths without the
``subscription.`` prefix, so the longest input name a path starts with is its input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from webhooks_catalogue.authentication import AUTH_FIELDS


class HasTriggerRows(Protocol):
    @property
    def triggers(self) -> Sequence[object]: ...


def violation_input(path: str, inputs: Sequence[str]) -> str:
    """The input a violation's field path belongs to: the longest input name it starts
    with (``triggers[1].status_changes[0]`` -> ``triggers[1].status_changes``), else ""
    (shown above the form)."""
    path = path.removeprefix("subscription.")
    best = ""
    for name in inputs:
        if (path == name or path.startswith((name + ".", name + "["))) and len(name) > len(best):
            best = name
    return best


def form_inputs(form: HasTriggerRows) -> list[str]:
    """Every input name of ``form`` a violation may name."""
    names = [
        *("name", "entity", "triggers", "include_complete_data"),
        *("webhook", "webhook.type", "webhook.url", "webhook.client_certificate_id"),
        *("webhook.soap", "webhook.soap.operation", "webhook.soap.namespace"),
        *("webhook.soap.soap_action", "webhook.soap.version", "webhook.soap.parameters"),
        *("webhook.soap.wsdl_url", "webhook.rate_limit_per_second", "authentication"),
        *("retry_policy", "retry_policy.retries", "retry_policy.interval_seconds"),
    ]
    for index in range(len(form.triggers)):
        names.append(f"triggers[{index}]")
        names.extend(
            f"triggers[{index}].{c}"
            for c in ("trigger", "channels", "activity_types", "status_changes")
        )
        names.extend(f"triggers[{index}].{c}" for c in ("whatsapp_channels", "whatsapp_statuses"))
    for kind, fields in AUTH_FIELDS.items():
        names.append(f"authentication.{kind}")
        names.extend(f"authentication.{kind}.{name}" for name in fields)
    return names


STEP_OF_INPUT = (
    ("authentication", "authentication"),
    ("retry_policy", "retries"),
    ("webhook", "webhook"),
)


def step_of(input_name: str) -> str:
    """Which step of the form shows ``input_name``: details, webhook, authentication or
    retries."""
    for prefix, step in STEP_OF_INPUT:
        if input_name.startswith(prefix):
            return step
    return "details"
