"""Every message the subscription rules can give reads as a sentence in the form's words
(issue 16): each violation is produced by the real rules (the subscriptions service's
``domain/rules.py`` and ``domain/authentication.py``, the catalogue's validation and
overlaps) and ``form_messages.message_for`` must know it (no "is not valid" fallback) and
say it without a field path, a catalogue id, a gRPC code or a UUID. Also the form's error
bookkeeping (``form_errors.collect``) and the ids that tie an error to its input."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from webhooks_catalogue import CatalogueError, validate_triggers
from webhooks_catalogue.validation import validate_rate_limit
from webhooks_console.form_errors import collect, error_id, field_id
from webhooks_console.form_messages import Message, label_of, message_for
from webhooks_console.form_sentences import lower_first
from webhooks_console.forms import SubscriptionForm, TriggerRow
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.authentication import validate_authentication
from webhooks_subscriptions.domain.errors import InvalidField, NameTaken, StaleVersion

Check = Callable[[], Any]
WSDL = (
    '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/">'
    '<portType><operation name="A"/></portType></definitions>'
)


def soap(**values: Any) -> Check:
    settings = {"operation": "Notify", **values}
    webhook = {"type": "SOAP", "url": "https://h.example.com/soap", "soap": settings}
    return lambda: rules.validate_webhook(webhook, allow_http_loopback=False)


def url(value: object) -> Check:
    return lambda: rules.validate_url(value, "webhook.url", allow_http_loopback=False)


def auth(**values: Any) -> Check:
    return lambda: validate_authentication(values)


def triggers(entity: str, *given: dict[str, Any]) -> Check:
    return lambda: validate_triggers(entity, list(given))


def raise_(error: Exception) -> Check:
    def check() -> None:
        raise error

    return check


ON_NEW = {"trigger": "OnNew"}
ACTIVITY = {"trigger": "OnNewActivity"}
# Each check breaks one rule; together they reach every message the rules can give.
CHECKS: dict[str, Check] = {
    "name required": lambda: rules.validate_name(" "),
    "name long": lambda: rules.validate_name("n" * 201),
    "name line break": lambda: rules.validate_name("a\nb"),
    "state size": lambda: rules.check_state_size(10**7),
    "url required": url(""),
    "url long": url("https://h.example.com/" + "p" * 3000),
    "url space": url("https://h.example.com/a b"),
    "url malformed": url("https://[::1"),
    "url no host": url("https:///path"),
    "url host": url("https://bad_host-.example.com/"),
    "url credentials": url("https://u:p@h.example.com/"),
    "url fragment": url("https://h.example.com/#part"),
    "url http": url("http://h.example.com/"),
    "webhook type": lambda: rules.validate_webhook(
        {"type": "FTP", "url": "https://h.example.com/"}, allow_http_loopback=False
    ),
    "certificate": lambda: rules.validate_webhook(
        {"type": "REST", "url": "https://h.example.com/", "client_certificate_id": "cert-1"},
        allow_http_loopback=False,
    ),
    "soap on rest": lambda: rules.validate_webhook(
        {"type": "REST", "url": "https://h.example.com/", "soap": {"operation": "A"}},
        allow_http_loopback=False,
    ),
    "soap operation": soap(operation=""),
    "soap operation name": soap(operation="a:b"),
    "soap operation long": soap(operation="a" * 300),
    "soap namespace": soap(namespace="not a uri"),
    "soap namespace long": soap(namespace="urn:a:" + "b" * 3000),
    "soap action": soap(soap_action='say "hi"'),
    "soap version": soap(version="2.0"),
    "wsdl both": soap(wsdl_url="https://h.example.com/?wsdl", wsdl_document=WSDL),
    "wsdl url": soap(wsdl_url="http://h.example.com/?wsdl"),
    "wsdl big": soap(wsdl_document="<a>" + "x" * 200_000 + "</a>"),
    "wsdl doctype": soap(wsdl_document="<!DOCTYPE x><a/>"),
    "wsdl xml": soap(wsdl_document="<a>"),
    "wsdl root": soap(wsdl_document="<a/>"),
    "wsdl operation": soap(operation="B", wsdl_document=WSDL),
    "parameters many": soap(parameters=[{"name": f"p{i}", "value": ""} for i in range(60)]),
    "parameter name": soap(parameters=[{"name": "1st", "value": ""}]),
    "parameter twice": soap(parameters=[{"name": "p", "value": ""}, {"name": "p", "value": ""}]),
    "parameter long": soap(parameters=[{"name": "p", "value": "v" * 5000}]),
    "parameter characters": soap(parameters=[{"name": "p", "value": "\x01"}]),
    "rate limit kind": lambda: validate_rate_limit("fast"),
    "rate limit bound": lambda: validate_rate_limit(10**6),
    "retries": lambda: rules.validate_retry_policy({"retries": 9}),
    "retries integer": lambda: rules.validate_retry_policy({"retries": "3"}),
    "interval": lambda: rules.validate_retry_policy({"interval_seconds": 1}),
    "auth kind needed": auth(username="a"),
    "auth kind": auth(kind="digest"),
    "auth required": auth(kind="basic", username="a"),
    "auth long": auth(kind="basic", username="u" * 300, password="p"),
    "auth control": auth(kind="basic", username="a\x01", password="p"),
    "auth colon": auth(kind="basic", username="a:b", password="p"),
    "header prefix": auth(kind="oauth2_access_token", header_prefix="a b", access_token="t"),
    "access token": auth(kind="oauth2_access_token", access_token="tøken"),
    "token url": auth(
        kind="oauth2_client_credentials",
        token_url="http://h.example.com/token",
        client_id="c",
        client_secret="s",
    ),
    "scope": auth(
        kind="oauth2_client_credentials",
        token_url="https://h.example.com/token",
        scope='"read"',
        client_id="c",
        client_secret="s",
    ),
    "entity required": triggers("", ON_NEW),
    "entity unknown": triggers("Planet", ON_NEW),
    "entity long": triggers("E" * 100, ON_NEW),
    "no triggers": triggers("Object"),
    "many triggers": triggers("Object", *[ON_NEW] * 60),
    "trigger required": triggers("Object", {"trigger": ""}),
    "trigger unknown": triggers("Object", {"trigger": "OnExplode"}),
    "trigger component": triggers("Object", {"trigger": "OnNew", "activity_types": [1]}),
    "trigger no components": triggers("Tag", {"trigger": "OnAdd", "channels": [1]}),
    "channel id": triggers("Object", {"trigger": "OnNew", "channels": [99]}),
    "activity type id": triggers("Object", {**ACTIVITY, "activity_types": [99]}),
    "status from": triggers("Object", {**ACTIVITY, "status_changes": [{"from": 99, "to": 1}]}),
    "status to missing": triggers("Object", {**ACTIVITY, "status_changes": [{"from": 1}]}),
    "status to": triggers("Object", {**ACTIVITY, "status_changes": [{"from": 1, "to": 99}]}),
    "status same": triggers("Object", {**ACTIVITY, "status_changes": [{"from": 1, "to": 1}]}),
    "status needs type": triggers(
        "Object", {**ACTIVITY, "activity_types": [1], "status_changes": [{"from": 1, "to": 2}]}
    ),
    "whatsapp channel": triggers(
        "WhatsApp", {"trigger": "OnMessageStatus", "whatsapp_channels": ["a b"]}
    ),
    "whatsapp status": triggers(
        "WhatsApp", {"trigger": "OnMessageStatus", "whatsapp_statuses": ["seen"]}
    ),
    "whatsapp status long": triggers(
        "WhatsApp", {"trigger": "OnMessageStatus", "whatsapp_statuses": ["s" * 40]}
    ),
    "overlap repeated": triggers("Tag", {"trigger": "OnAdd"}, {"trigger": "OnAdd"}),
    "overlap later all": triggers("Object", {**ON_NEW, "channels": [7]}, ON_NEW),
    "overlap earlier all": triggers("Object", ON_NEW, {**ON_NEW, "channels": [7]}),
    "overlap channel": triggers("Object", {**ON_NEW, "channels": [7]}, {**ON_NEW, "channels": [7]}),
    "overlap activity type": triggers(
        "Object", {**ACTIVITY, "activity_types": [1]}, {**ACTIVITY, "activity_types": [1, 3]}
    ),
    "overlap status change": triggers(
        "Object",
        {**ACTIVITY, "activity_types": [2], "status_changes": [{"from": 0, "to": 8}]},
        {**ACTIVITY, "activity_types": [2], "status_changes": [{"from": 1, "to": 8}]},
    ),
    "overlap whatsapp channel": triggers(
        "WhatsApp",
        {"trigger": "OnMessageStatus", "whatsapp_channels": ["ch1"]},
        {"trigger": "OnMessageStatus", "whatsapp_channels": ["ch1"]},
    ),
    "name taken": raise_(NameTaken("CRM sync")),
    "stale version": raise_(StaleVersion(3, 4)),
}
# Only a forged request sends these (the form cannot): a plain "is not valid" will do.
FORGED = (
    "must be an object",
    "must be a string",
    "must be a list",
    "is not a trigger component",
    "is not part of a status change",
)
FIELD_PATH = re.compile(r"\w+\[\d+\]|\b[a-z]+_[a-z_]+\b|\b(?:webhook|subscription)\.\w+")
# A catalogue id in one word (OnNewActivity, StatusChange, InProcess); WhatsApp and
# YouTube are how the product writes them.
CAMEL_ID = re.compile(r"\b(?!WhatsApp\b|YouTube\b)[A-Z][a-z]+[A-Z]\w*")
GRPC_CODE = re.compile(r"\b[A-Z]+_[A-Z_]+\b")


def violations(check: Check) -> list[tuple[str, str]]:
    try:
        check()
    except InvalidField as error:
        return [(one.field, one.message) for one in error.violations]
    except CatalogueError as error:
        return [(one.field, one.message) for one in error.errors]
    except (NameTaken, StaleVersion) as error:
        return [(error.field, str(error))]
    raise AssertionError("the check broke no rule")


@pytest.mark.parametrize("case", CHECKS)
def test_every_rule_message_reads_as_a_sentence(case: str) -> None:
    found = violations(CHECKS[case])
    assert found, case
    for field, description in found:
        message = message_for(f"subscription.{field}", description)
        if not description.startswith(FORGED):
            assert not message.sentence.endswith("is not valid."), (field, description)
        for pattern in (FIELD_PATH, CAMEL_ID, GRPC_CODE):
            assert not pattern.search(message.sentence), (pattern.pattern, message.sentence)
            assert not pattern.search(message.label), (pattern.pattern, message.label)
        assert message.sentence[0].isupper() and message.sentence.strip() == message.sentence


def test_the_sentences_people_read() -> None:
    overlap = violations(CHECKS["overlap channel"])[0]
    assert message_for(*overlap) == Message(
        "Trigger 2", "Trigger 2 overlaps Trigger 1: both listen to On New on WhatsApp."
    )
    later_all = message_for(*violations(CHECKS["overlap later all"])[0])
    assert later_all.sentence.startswith("Trigger 2 overlaps Trigger 1: with no channels chosen")
    status = message_for(*violations(CHECKS["overlap status change"])[0])
    assert (
        status.sentence
        == (
            "Trigger 2 overlaps Trigger 1: both listen to On New Activity for the status change "
            "Open → In Process."
        )
        or "Any status → In Process" in status.sentence
    )
    assert message_for("subscription.webhook.url", "must be an https:// URL").summary == (
        "Webhook URL must start with https://"
    )
    assert message_for("subscription.name", "is required").summary == "Name: enter a name"
    password = message_for("subscription.authentication.basic.password", "is required")
    assert (password.label, password.sentence) == ("Password", "Enter the password.")
    interval = message_for("retry_policy.interval_seconds", "must be between 10 and 86400")
    assert interval.sentence == "Interval between retries must be from 10 to 86400 seconds."
    repeated = message_for(*violations(CHECKS["parameter twice"])[0])
    assert repeated.label == "SOAP parameter 2 name"


def test_labels_and_ids() -> None:
    assert label_of("subscription.triggers[1].channels[0]") == "Trigger 2 channels"
    assert label_of("triggers[0].status_changes[2].to") == "Trigger 1 status changes"
    assert label_of("triggers[3]") == "Trigger 4"
    assert label_of("webhook.soap.parameters[1].value") == "SOAP parameter 2 value"
    assert label_of("authentication.oauth2_password.client_id") == "Client ID"
    assert label_of("webhook.soap.unknown_thing") == "SOAP message"
    assert label_of("x-webhooks-tenant") == ""
    assert lower_first("Enter a name") == "enter a name"
    assert lower_first("SOAP version 1.1") == "SOAP version 1.1"
    assert lower_first("WhatsApp statuses") == "WhatsApp statuses"
    assert field_id("triggers[1].channels") == "f-triggers-1-channels"
    assert field_id("entity") == "entity", "the id scripts and tests know"
    assert error_id("entity") == "err-entity"
    assert error_id("webhook.url") == "err-webhook-url"


def test_collect_puts_each_problem_at_its_input_and_step() -> None:
    form = SubscriptionForm(triggers=[TriggerRow(), TriggerRow()])
    errors = collect(
        form,
        [
            ("subscription.name", "is required"),
            (
                "subscription.triggers[1].channels",
                "channel 7 (WhatsApp) is already chosen in "
                "triggers[0]; a value may be chosen in only one OnNew trigger",
            ),
            ("subscription.webhook.url", "must be an https:// URL"),
            ("subscription.webhook.url", "must be an https:// URL"),  # said twice: shown once
            ("subscription.retry_policy.retries", "must be between 0 and 5"),
            ("", "the request failed"),
        ],
    )
    assert [p.input for p in errors.problems] == [
        "name",
        "triggers[1].channels",
        "webhook.url",
        "retry_policy.retries",
        "",
    ]
    assert errors.at("webhook.url") == ["Webhook URL must start with https://"]
    assert errors.at("") == [], "a problem of the whole form is shown in the summary only"
    assert (errors.on_step("details"), errors.on_step("webhook")) == (2, 1)
    assert errors.on_step("authentication") == 0
    assert errors.first_step() == "details"
    assert errors.problems[-1].message.sentence == "This is not valid."
