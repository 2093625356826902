"""Where a problem goes on the Add New Subscription / Edit form: the input a field path of
the API (a ``BadRequest`` violation, a ``SpecProblem``) names, the step of the form that
shows that input, and every problem of a submit at once (``collect``: each at its input, in
the error summary, counted on its step). Form inputs are named after the API's field paths
without the ``subscription.`` prefix, so the longest input name a path starts with is its
input; ``field_id`` and ``error_id`` are the HTML ids that tie them together."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from webhooks_catalogue.authentication import AUTH_FIELDS
from webhooks_console.form_messages import Message, label_of, message_for


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
        if not fields:  # "none": the Authentication radios say it
            continue
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


# Inputs whose id scripts and tests already know.
KEPT_IDS = frozenset({"entity"})


def field_id(input_name: str) -> str:
    """The HTML id of an input (or of its group): ``triggers[1].channels`` ->
    ``f-triggers-1-channels``."""
    if input_name in KEPT_IDS:
        return input_name
    return "f-" + re.sub(r"[^A-Za-z0-9]+", "-", input_name).strip("-")


def error_id(input_name: str) -> str:
    """The id of the element that says what is wrong with an input (aria-describedby)."""
    return "err-" + re.sub(r"[^A-Za-z0-9]+", "-", input_name).strip("-")


@dataclass(frozen=True)
class Problem:
    input: str  # "" for a problem of the whole form, shown in the summary only
    message: Message

    @property
    def step(self) -> str:
        return step_of(self.input) if self.input else ""


@dataclass
class FormErrors:
    """Every problem of one submit, in the form's order."""

    problems: list[Problem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def at(self, input_name: str) -> list[str]:
        """The sentences shown at an input."""
        return [p.message.sentence for p in self.problems if p.input == input_name and input_name]

    def label(self, input_name: str) -> str:
        return label_of(input_name)

    def on_step(self, step: str) -> int:
        return sum(1 for p in self.problems if p.step == step)

    def first_step(self) -> str:
        return next((p.step for p in self.problems if p.step), "")


def collect(form: HasTriggerRows, found: Sequence[tuple[str, str | Message]]) -> FormErrors:
    """(field path, the service's description or a ready message) of each problem, at its
    input; a sentence said twice at one input is shown once."""
    inputs = form_inputs(form)
    errors = FormErrors()
    seen: set[tuple[str, str]] = set()
    for path, said in found:
        where = violation_input(path, inputs)
        message = said if isinstance(said, Message) else message_for(path, said)
        if (where, message.sentence) not in seen:
            seen.add((where, message.sentence))
            errors.problems.append(Problem(where, message))
    return errors
