"""The service's descriptions of a field's problem, as sentences in the form's words: the
table ``form_messages.message_for`` reads (one pattern per message the subscriptions
service's rules, the catalogue's validation and the form itself can give). Pure."""

from __future__ import annotations

import re
from collections.abc import Callable

from webhooks_catalogue.vocabulary import activity_type_label, entity_label, trigger_label

COMPONENT_WORDS = {
    "trigger": "event",
    "channels": "channels",
    "activity_types": "activity types",
    "status_changes": "status changes",
    "whatsapp_channels": "WhatsApp channels",
    "whatsapp_statuses": "WhatsApp statuses",
}
# What "is required" asks for, by field.
_REQUIRED = {
    "name": "Enter a name.",
    "entity": "Choose the entity.",
    "trigger": "Choose the trigger event.",
    "to": "Choose the status it changes to.",
    "webhook.url": "Enter the webhook URL, starting with https://.",
}
_UNITS = {"retry_policy.interval_seconds": " seconds"}


def lower_first(text: str) -> str:
    """ "Enter a name" -> "enter a name"; "SOAP …", "WhatsApp …" stay as they are."""
    first = text.split(" ", 1)[0]
    if first.isalpha() and first[0].isupper() and first[1:] == first[1:].lower():
        return text[0].lower() + text[1:]
    return text


def _required(label: str, path: str) -> str:
    last = path.rsplit(".", 1)[-1]
    known = _REQUIRED.get(path) or _REQUIRED.get(last)
    if known:
        return known
    if path.startswith(("authentication.", "webhook.soap.")):
        return f"Enter the {lower_first(label)}."
    return f"{label} is required."


def _no(kind: str) -> str:
    return {"channel": "a channel", "activity type": "an activity type"}.get(kind, "a status")


Sentence = Callable[[str, str, re.Match[str]], str]
_ANY_CHOICE = "{0} is not valid."  # what only a forged request can send
_SENTENCE_TEXT: tuple[tuple[str, Sentence], ...] = (
    (r"^is required$", lambda label, path, m: _required(label, path)),
    (r"^required$", lambda label, path, m: _required(label, path)),
    (r"^unknown entity", lambda *_: "Choose an entity from the list."),
    (
        r"^at least one trigger(?: of (\w+))? is required",
        lambda _l, _p, m: (
            "Choose at least one trigger event" + (f" of {entity_label(m[1])}." if m[1] else ".")
        ),
    ),
    (
        r"^at most (\d+) triggers, got (\d+)",
        lambda _l, _p, m: f"A webhook can have at most {m[1]} triggers; this one has {m[2]}.",
    ),
    (
        r"is not a trigger of (\w+);",
        lambda _l, _p, m: f"Choose a trigger event of {entity_label(m[1])} from the list.",
    ),
    (r"^at most (\d+) values, got (\d+)", lambda label, _p, m: f"{label}: choose at most {m[1]}."),
    (
        r"^\w+ (\w+) takes (no components|only)",
        lambda label, path, m: (
            "Clear the "
            f"{COMPONENT_WORDS.get(path.rsplit('.', 1)[-1].split('[')[0], 'values')}: "
            f"{trigger_label(m[1])} takes none."
        ),
    ),
    (
        r"^needs activity type 2",
        lambda *_: (
            f"Status changes go with the activity type {activity_type_label(2)}: "
            "tick it too, or tick no activity type."
        ),
    ),
    (
        r"is not a known (channel|activity type|object status) id",
        lambda _l, _p, m: f"Choose {_no(m[1])} from the list.",
    ),
    (r'^must differ from "from"', lambda *_: "A status change must go to another status."),
    (
        r"^must be a channel id of 1 to (\d+) characters",
        lambda _l, _p, m: (
            f"Each WhatsApp channel id has 1 to {m[1]} characters: letters, digits and "
            "_ . : - only."
        ),
    ),
    (r"is not one of sent", lambda *_: "Choose WhatsApp statuses from the list."),
    (r"^must be an https:// URL", lambda label, *_: f"{label} must start with https://"),
    (
        r"^must be at most (\d+) characters, got (\d+)",
        lambda label, _p, m: f"{label} can be at most {m[1]} characters; it has {m[2]}.",
    ),
    (
        r"^(?:must be )?at most (\d+) characters",
        lambda label, _p, m: f"{label} can be at most {m[1]} characters.",
    ),
    (
        r"^must not contain control characters or line breaks",
        lambda label, *_: f"{label} cannot contain line breaks or control characters.",
    ),
    (
        r"^must not contain whitespace or control characters",
        lambda label, *_: f"{label} cannot contain spaces.",
    ),
    (r"^is not a well-formed URL", lambda label, *_: f"{label} is not a valid web address."),
    (
        r"^must be an absolute URL with a host",
        lambda label, *_: f"{label} must be a whole address, such as https://example.com/hooks.",
    ),
    (r"^has an invalid host name", lambda label, *_: f"{label} has a host name that cannot be."),
    (
        r"^must not contain credentials",
        lambda label, *_: (
            f"{label} cannot contain a user name or password: enter them in the "
            "Authentication step."
        ),
    ),
    (r"^must not have a fragment", lambda label, *_: f"{label} cannot have a # part."),
    (r"^must be a certificate id", lambda *_: "Choose a client certificate from the list."),
    (
        r"^no such certificate",
        lambda *_: "This client certificate is no longer in your organisation: choose another.",
    ),
    (
        r"^expired on (\d{4}-\d\d-\d\d)",
        lambda _l, _p, m: f"This client certificate expired on {m[1]}: choose another.",
    ),
    (
        r"^only SOAP webhooks take SOAP settings",
        lambda *_: "SOAP settings are for SOAP webhooks only: choose SOAP, or clear them.",
    ),
    (r"^must be REST or SOAP", lambda *_: "Choose REST or SOAP."),
    (
        r"^must be an XML name without a prefix",
        lambda label, *_: (
            f"{label} must be an XML name: a letter or _ first, then letters, "
            "digits, - _ or . (no colon)."
        ),
    ),
    (
        r"^must be an absolute http\(s\) or urn: URI",
        lambda label, *_: f"{label} must be a whole http(s):// address or a urn: name.",
    ),
    (
        r"^must be at most (\d+) printable characters",
        lambda label, _p, m: (
            f"{label} can be at most {m[1]} characters, without quotation marks or line breaks."
        ),
    ),
    (r"^must be 1\.1 or 1\.2", lambda *_: "Choose SOAP version 1.1 or 1.2."),
    (
        r"^give either wsdl_url or wsdl_document",
        lambda *_: "Give either a WSDL URL or a WSDL document, not both.",
    ),
    (
        r"^at most (\d+) parameters, got (\d+)",
        lambda _l, _p, m: (
            f"A SOAP message can have at most {m[1]} parameters; this one has {m[2]}."
        ),
    ),
    (
        r"^is already used by parameters\[(\d+)\]",
        lambda label, _p, m: (
            f"{label} is already the name of SOAP parameter {int(m[1]) + 1}: "
            "each parameter needs its own name."
        ),
    ),
    (
        r"^contains characters XML cannot carry",
        lambda label, *_: f"{label} contains characters a SOAP message cannot carry.",
    ),
    (r"^SOAP parameter .*: expected NAME=VALUE", lambda *_: "Each SOAP parameter needs a name."),
    (
        r"^must be at most (\d+) bytes, got (\d+); or give a wsdl_url",
        lambda _l, _p, m: (
            f"WSDL document is too large ({m[2]} bytes, at most {m[1]}): give its WSDL URL instead."
        ),
    ),
    (r"^must not contain a DOCTYPE", lambda label, *_: f"{label} cannot contain a DOCTYPE."),
    (r"^is not well-formed XML", lambda label, *_: f"{label} is not well-formed XML."),
    (
        r"^must be a WSDL 1\.1 definitions",
        lambda label, *_: f"{label} must be a WSDL 1.1 or WSDL 2.0 document.",
    ),
    (
        r"^is not an operation of the WSDL document",
        lambda label, *_: f"{label} is not an operation of the WSDL document.",
    ),
    (
        r"^must be a whole number of deliveries per second",
        lambda label, *_: f"{label} must be a whole number of deliveries per second.",
    ),
    (
        r"^must be 0 \(no limit\) to (\d+)",
        lambda label, _p, m: f"{label} must be from 0 (no limit) to {m[1]} deliveries a second.",
    ),
    (
        r"^must be an integer|^must be a whole number",
        lambda label, *_: f"{label} must be a whole number.",
    ),
    (
        r"^must be between (-?\d+) and (-?\d+)",
        lambda label, path, m: f"{label} must be from {m[1]} to {m[2]}{_UNITS.get(path, '')}.",
    ),
    (
        r"^the whole subscription serialises to (\d+) bytes, at most (\d+)",
        lambda _l, _p, m: (
            f"This webhook's settings are too large to store ({m[1]} bytes, at "
            f"most {m[2]}): use fewer triggers or values, or give the WSDL by its URL."
        ),
    ),
    (
        r"^kind is required when credentials are given|^kind must be one of",
        lambda *_: "Choose the kind of authentication.",
    ),
    (r"^must not contain ':'", lambda label, *_: f"{label} cannot contain a colon (:)."),
    (
        r"^must be one word such as Bearer",
        lambda label, *_: f"{label} must be one word, such as Bearer.",
    ),
    (
        r"^must be ASCII",
        lambda label, *_: f"{label} can contain only plain ASCII characters (no accents).",
    ),
    (
        r"^must be space-separated OAuth scope names",
        lambda label, *_: f"{label} must be OAuth scope names separated by spaces.",
    ),
    (
        r"is or was already used",
        lambda *_: (
            "This name is or was already used by another webhook of your organisation: "
            "choose another."
        ),
    ),
    (
        r"^(?:expected_version: )?is \d+, the subscription is at",
        lambda *_: (
            "Someone else changed this webhook since you opened it: reload the page to "
            "see the current settings."
        ),
    ),
    (
        r"^(?:is not a trigger component|must be a list|must be an object|must be a string"
        r"|is not part of a status change)",
        lambda label, *_: _ANY_CHOICE.format(label or "This"),
    ),
)
SENTENCES = tuple((re.compile(pattern), sentence) for pattern, sentence in _SENTENCE_TEXT)
