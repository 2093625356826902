"""Every problem of a request at once: ``collect`` and the rules that use it report each
independent field's first problem, in the order of the form (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from webhooks_catalogue import CatalogueError, CatalogueErrors, validate_triggers
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.authentication import validate_authentication
from webhooks_subscriptions.domain.errors import InvalidField, InvalidFields, collect

WSDL = """<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" name="Hooks">
  <portType name="P"><operation name="Notify"/></portType></definitions>"""


def problems(call: Callable[[], object]) -> list[tuple[str, str]]:
    """(field, message) of every violation the call reports."""
    with pytest.raises(InvalidField) as caught:
        call()
    return [(one.field, one.message) for one in caught.value.violations]


def fields(call: Callable[[], object]) -> list[str]:
    return [field for field, _ in problems(call)]


def bad(field: str) -> Callable[[], Any]:
    def check() -> Any:
        raise InvalidField(field, "is wrong")

    return check


# --- collect ------------------------------------------------------------------------------


def test_collect_returns_every_result_in_order_when_all_pass() -> None:
    assert collect(lambda: 1, lambda: "two", lambda: None) == [1, "two", None]
    assert collect() == []


def test_collect_reports_every_problem_in_the_order_of_the_checks() -> None:
    with pytest.raises(InvalidFields) as caught:
        collect(bad("name"), lambda: 1, bad("webhook.url"), bad("retry_policy.retries"))
    error = caught.value
    assert [one.field for one in error.violations] == [
        "name",
        "webhook.url",
        "retry_policy.retries",
    ]
    # Whoever reads one problem reads the first.
    assert (error.field, error.message) == ("name", "is wrong")


def test_collect_raises_a_single_problem_as_itself() -> None:
    with pytest.raises(InvalidField) as caught:
        collect(lambda: 1, bad("name"))
    assert type(caught.value) is InvalidField
    assert caught.value.violations == (caught.value,)


def test_nested_collections_are_flattened() -> None:
    def inner() -> None:
        collect(bad("webhook.type"), bad("webhook.url"))

    assert fields(lambda: collect(bad("name"), inner, bad("retry_policy"))) == [
        "name",
        "webhook.type",
        "webhook.url",
        "retry_policy",
    ]


def test_invalid_fields_needs_a_violation() -> None:
    with pytest.raises(ValueError):
        InvalidFields([])


# --- the catalogue: entity and each trigger on its own ------------------------------------


def test_an_empty_entity_and_no_triggers_are_both_named() -> None:
    with pytest.raises(CatalogueErrors) as caught:
        validate_triggers("", [])
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("entity", "is required"),
        ("triggers", "at least one trigger is required"),
    ]


def test_without_an_entity_each_trigger_is_still_checked_for_its_name() -> None:
    with pytest.raises(CatalogueErrors) as caught:
        validate_triggers("Nope", [{"trigger": ""}, {"trigger": "OnNew"}, {"bogus": []}])
    assert [e.field for e in caught.value.errors] == [
        "entity",
        "triggers[0].trigger",
        "triggers[2].bogus",
    ]


def test_two_bad_triggers_are_both_named_with_their_first_problem() -> None:
    triggers: list[dict[str, Any]] = [
        {"trigger": "OnNew", "channels": [99, 98]},  # two bad values: the first is enough
        {"trigger": "OnNew", "channels": [1]},
        {"trigger": "OnSomething"},
    ]
    with pytest.raises(CatalogueErrors) as caught:
        validate_triggers("Object", triggers)
    errors = caught.value.errors
    assert [e.field for e in errors] == ["triggers[0].channels[0]", "triggers[2].trigger"]
    assert "OnSomething" in errors[1].message
    assert (caught.value.field, caught.value.message) == (errors[0].field, errors[0].message)


def test_overlaps_are_checked_only_once_every_trigger_is_valid() -> None:
    overlapping = [{"trigger": "OnNew", "channels": [1]}, {"trigger": "OnNew", "channels": [1]}]
    with pytest.raises(CatalogueError) as caught:
        validate_triggers("Object", overlapping)
    assert type(caught.value) is CatalogueError  # one problem stays a CatalogueError
    assert caught.value.field == "triggers[1].channels"
    with pytest.raises(CatalogueError) as caught:
        validate_triggers("Object", [*overlapping, {"trigger": "OnNew", "channels": [99]}])
    assert caught.value.field == "triggers[2].channels[0]"
    assert len(caught.value.errors) == 1


def test_rules_turn_every_catalogue_error_into_a_violation() -> None:
    triggers: list[dict[str, Any]] = [{"trigger": ""}, {}]
    assert fields(lambda: rules.validate_triggers("", triggers)) == [
        "entity",
        "triggers[0].trigger",
        "triggers[1].trigger",
    ]


# --- the webhook: type, URL, certificate, SOAP fields, rate limit -------------------------


def test_an_empty_webhook_names_its_type_and_url() -> None:
    assert problems(lambda: rules.validate_webhook({}, allow_http_loopback=False)) == [
        ("webhook.type", "must be REST or SOAP"),
        ("webhook.url", "is required"),
    ]


def test_every_independent_webhook_field_is_named() -> None:
    webhook = {
        "type": "REST",
        "url": "http://example.com/in",
        "client_certificate_id": "not-a-uuid",
        "soap": {"operation": "Notify"},
        "rate_limit_per_second": -1,
    }
    assert fields(lambda: rules.validate_webhook(webhook, allow_http_loopback=False)) == [
        "webhook.url",
        "webhook.client_certificate_id",
        "webhook.soap",
        "webhook.rate_limit_per_second",
    ]


def test_each_bad_soap_field_is_named() -> None:
    soap = {
        "operation": "1bad",
        "namespace": "not a uri",
        "soap_action": 'has "quotes"',
        "version": "3",
        "wsdl_url": "ftp://example.com/wsdl",
        "parameters": [{"name": "a b", "value": ""}],
    }
    webhook = {"type": "SOAP", "url": "https://example.com/soap", "soap": soap}
    assert fields(lambda: rules.validate_webhook(webhook, allow_http_loopback=False)) == [
        "webhook.soap.operation",
        "webhook.soap.namespace",
        "webhook.soap.soap_action",
        "webhook.soap.version",
        "webhook.soap.wsdl_url",
        "webhook.soap.parameters[0].name",
    ]


def test_a_wsdl_is_checked_against_the_operation_only_when_the_operation_is_valid() -> None:
    def webhook(operation: str) -> dict[str, Any]:
        soap = {"operation": operation, "wsdl_document": WSDL}
        return {"type": "SOAP", "url": "https://example.com/soap", "soap": soap}

    assert problems(
        lambda: rules.validate_webhook(webhook("Other"), allow_http_loopback=False)
    ) == [("webhook.soap.operation", "is not an operation of the WSDL document")]
    # An invalid operation is named once, for what is wrong with it.
    assert problems(lambda: rules.validate_webhook(webhook(""), allow_http_loopback=False)) == [
        ("webhook.soap.operation", "is required")
    ]


# --- authentication and retry policy ------------------------------------------------------


def test_each_bad_authentication_field_is_named() -> None:
    assert fields(lambda: validate_authentication({"kind": "basic"})) == [
        "authentication.basic.username",
        "authentication.basic.password",
    ]
    given = {"kind": "oauth2_client_credentials", "token_url": "http://x.example", "scope": '"'}
    assert fields(lambda: validate_authentication(given)) == [
        "authentication.oauth2_client_credentials.token_url",
        "authentication.oauth2_client_credentials.scope",
        "authentication.oauth2_client_credentials.client_id",
        "authentication.oauth2_client_credentials.client_secret",
    ]


def test_a_bad_kind_is_one_problem() -> None:
    assert fields(lambda: validate_authentication({"kind": "magic", "username": 5})) == [
        "authentication"
    ]


def test_retries_and_interval_are_named_each() -> None:
    policy = {"retries": 9, "interval_seconds": 1}
    assert problems(lambda: rules.validate_retry_policy(policy)) == [
        ("retry_policy.retries", "must be between 0 and 5"),
        ("retry_policy.interval_seconds", "must be between 10 and 86400"),
    ]
    assert rules.validate_retry_policy({"retries": 0, "interval_seconds": 10}) == {
        "retries": 0,
        "interval_seconds": 10,
    }
