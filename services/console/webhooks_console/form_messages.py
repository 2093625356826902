"""What the subscriptions service (or the form itself) said about a field, in the form's
words: a ``BadRequest`` violation's (field path, description) becomes the field's label as
the form shows it ("Webhook URL", "Trigger 2") and a sentence ("Webhook URL must start with
https://."). Never a field path, a catalogue id, a gRPC code or a UUID.

Pure: the descriptions are those of the subscriptions service's rules
(``domain/rules.py``, ``domain/authentication.py``), the catalogue's
(``webhooks_catalogue.validation``, ``overlaps``) and the form's own; one that is not
known reads "<label> is not valid." rather than showing what may be internal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from webhooks_catalogue.vocabulary import activity_type_label, channel_label, trigger_label, words
from webhooks_console.form_sentences import COMPONENT_WORDS, SENTENCES, lower_first
from webhooks_console.forms import AUTH_CHOICES, FIELD_LABELS

_TRIGGER_PATH = re.compile(r"triggers\[(\d+)\](?:\.(\w+))?(?:\[(\d+)\])?(?:\.(\w+))?")
_PARAMETER_PATH = re.compile(r"webhook\.soap\.parameters\[(\d+)\](?:\.(\w+))?")
# "on every channel", "for every activity type": how a trigger listens to a component.
_EVERY = {
    "channels": "on every channel",
    "activity_types": "for every activity type",
    "status_changes": "for every status change",
    "whatsapp_channels": "on every WhatsApp channel",
}
LABELS = {
    "": "",
    "subscription": "Webhook",
    "expected_version": "Webhook",
    "name": "Name",
    "entity": "Entity",
    "triggers": "Triggers",
    "include_complete_data": "Include Complete Data",
    "webhook": "Webhook",
    "webhook.type": "Webhook type",
    "webhook.url": "Webhook URL",
    "webhook.client_certificate_id": "Client certificate",
    "webhook.rate_limit_per_second": "Rate limit",
    "webhook.soap": "SOAP message",
    "webhook.soap.operation": "SOAP operation",
    "webhook.soap.namespace": "SOAP namespace",
    "webhook.soap.soap_action": "SOAP action",
    "webhook.soap.version": "SOAP version",
    "webhook.soap.parameters": "SOAP parameters",
    "webhook.soap.wsdl_url": "WSDL URL",
    "webhook.soap.wsdl_document": "WSDL document",
    "authentication": "Authentication",
    "retry_policy": "Retries",
    "retry_policy.retries": "Number of retries",
    "retry_policy.interval_seconds": "Interval between retries",
}
# The authentication kinds and their fields as the form's radio buttons and inputs say them.
AUTH_LABELS = {**dict(AUTH_CHOICES), **FIELD_LABELS}


@dataclass(frozen=True)
class Message:
    """One problem as the form shows it: at its field, and as a line of the summary."""

    label: str
    sentence: str

    @property
    def summary(self) -> str:
        """ "Name: enter a name" (a sentence that already names its field stays whole)."""
        text = self.sentence.removesuffix(".")
        if not self.label or text.startswith(self.label):
            return text
        return f"{self.label}: {lower_first(text)}"


def label_of(path: str) -> str:
    """The form's label of a field path: ``triggers[1].channels[0]`` -> "Trigger 2
    channels", ``authentication.basic.password`` -> "Password"."""
    path = path.removeprefix("subscription.")
    found = _TRIGGER_PATH.fullmatch(path)
    if found:
        row, component = int(found.group(1)) + 1, found.group(2)
        if component is None:
            return f"Trigger {row}"
        return f"Trigger {row} {COMPONENT_WORDS.get(component, 'settings')}"
    found = _PARAMETER_PATH.fullmatch(path)
    if found:
        part = {"name": " name", "value": " value"}.get(found.group(2) or "", "")
        return f"SOAP parameter {int(found.group(1)) + 1}{part}"
    if path.startswith("authentication."):
        return AUTH_LABELS.get(path.rsplit(".", 1)[1], "Authentication")
    while path not in LABELS:
        path = path.rpartition(".")[0]
    return LABELS[path]


def message_for(path: str, description: str) -> Message:
    """The label and sentence of one violation."""
    path = path.removeprefix("subscription.")
    label = label_of(path)
    overlap = _overlap(path, description)
    if overlap is not None:
        return overlap
    for pattern, sentence in SENTENCES:
        found = pattern.search(description)
        if found:
            return Message(label, sentence(label, path, found))
    return Message(label, f"{label or 'This'} is not valid.")


# The catalogue's overlap messages (webhooks_catalogue.overlaps).
_OVERLAP_TAIL = re.compile(r"; a value may be chosen in only one (\w+) trigger$")
_REPEATED = re.compile(r"^\w+ takes no components and is already in triggers\[(\d+)\]")
_LATER_ALL = re.compile(r"^an empty (\w+) list means all, which overlaps triggers\[(\d+)\]")
_EARLIER_ALL = re.compile(r"^triggers\[(\d+)\] already covers all (\w+)")
_SAME_VALUE = re.compile(r"^(.+) is already chosen in triggers\[(\d+)\]")
_VALUES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^channel (\d+) \("), lambda m: f"on {channel_label(int(m[1]))}"),
    (re.compile(r"^WhatsApp channel '(.*)'$"), lambda m: f"on WhatsApp channel {m[1]}"),
    (
        re.compile(r"^activity type (\d+) \("),
        lambda m: f"for the activity type {activity_type_label(int(m[1]))}",
    ),
    (
        re.compile(r"^status change (\w+)->(\w+)$"),
        lambda m: f"for the status change {_status(m[1])} → {_status(m[2])}",
    ),
)


def _status(name: str) -> str:
    return "Any status" if name == "any" else words(name)


def _overlap(path: str, description: str) -> Message | None:
    """ "Trigger 2 overlaps Trigger 1: both listen to On New on WhatsApp."."""
    tail = _OVERLAP_TAIL.search(description)
    row = _TRIGGER_PATH.fullmatch(path)
    if tail is None or row is None:
        return None
    later, trigger = f"Trigger {int(row[1]) + 1}", trigger_label(tail[1])
    text = description[: tail.start()]
    if found := _REPEATED.match(text):
        earlier = f"Trigger {int(found[1]) + 1}"
        return Message(later, f"{later} repeats {earlier}: {trigger} can be chosen only once.")
    if found := _LATER_ALL.match(text):
        earlier, component = f"Trigger {int(found[2]) + 1}", found[1]
        sentence = (
            f"{later} overlaps {earlier}: with no {COMPONENT_WORDS.get(component, component)} "
            f"chosen it listens to {trigger} {_EVERY.get(component, 'for every value')}, "
            f"those of {earlier} too."
        )
        return Message(later, sentence)
    if found := _EARLIER_ALL.match(text):
        earlier, component = f"Trigger {int(found[1]) + 1}", found[2]
        sentence = (
            f"{later} overlaps {earlier}: with no {COMPONENT_WORDS.get(component, component)} "
            f"chosen, {earlier} already listens to {trigger} "
            f"{_EVERY.get(component, 'for every value')}."
        )
        return Message(later, sentence)
    if found := _SAME_VALUE.match(text):
        earlier = f"Trigger {int(found[2]) + 1}"
        what = next((say(m) for pattern, say in _VALUES if (m := pattern.match(found[1]))), "")
        both = f"both listen to {trigger} {what}".rstrip()
        return Message(later, f"{later} overlaps {earlier}: {both}.")
    return Message(later, f"{later} overlaps another trigger of {trigger}.")
