"""Rules of a subscription's fields: name, triggers, webhook, authentication, retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from webhooks_catalogue.authentication import AUTH_KINDS, SECRET_FIELDS
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.authentication import validate_authentication
from webhooks_subscriptions.domain.errors import InvalidField

CERTIFICATE = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
WSDL_11 = """<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" name="Hooks">
  <portType name="HookPort"><operation name="Notify"/><operation name="Ping"/></portType>
</definitions>"""
WSDL_20 = '<description xmlns="http://www.w3.org/ns/wsdl"><interface name="i"/></description>'


def field_of(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidField) as caught:
        call()
    return caught.value.field


def rest(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "REST", "url": url, **extra}


def soap(loopback: bool = False, **settings: Any) -> dict[str, Any]:
    webhook = {"type": "SOAP", "url": "https://soap.example/hook", "soap": settings}
    return rules.validate_webhook(webhook, allow_http_loopback=loopback)


def soap_field(**settings: Any) -> str:
    return field_of(lambda: soap(**settings))


# --- name ---------------------------------------------------------------------------------


def test_name_is_stripped() -> None:
    assert rules.validate_name("  Orders to ERP ") == "Orders to ERP"
    assert rules.validate_name("x" * 200) == "x" * 200
    assert rules.validate_name("Zürich ✓") == "Zürich ✓"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "a\tb", "a\nb", "a\x00", "a\u2028b"])
def test_bad_names(name: str) -> None:
    assert field_of(lambda: rules.validate_name(name)) == "name"


def test_normalised_name_ignores_case_width_and_spacing() -> None:
    assert rules.normalise_name("  Orders   To\u00a0ERP ") == "orders to erp"
    assert rules.normalise_name("\uff2f\uff32\uff24\uff25\uff32\uff33")  # full width == "orders"
    assert rules.normalise_name("Straße") == rules.normalise_name("STRASSE")
    assert rules.normalise_name("Orders A") != rules.normalise_name("Orders B")


# --- triggers -----------------------------------------------------------------------------


def test_triggers_are_canonical() -> None:
    entity, triggers = rules.validate_triggers("user", [{"trigger": "onnew", "channels": [2, 1]}])
    assert entity == "User"
    assert triggers[0]["channels"] == [1, 2]
    assert triggers[0]["trigger"] == "OnNew"


def test_trigger_errors_become_invalid_field() -> None:
    with pytest.raises(InvalidField) as caught:
        rules.validate_triggers("Object", [{"trigger": "OnNew", "channels": [99]}])
    assert caught.value.field == "triggers[0].channels[0]"
    assert field_of(lambda: rules.validate_triggers("Ticket", [])) == "entity"


# --- webhook URL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "https://hooks.example.com:8443/in?x=1",
        "https://[2001:db8::1]/in",
        "https://10.0.0.1/in",
        "https://bücher.example/in",
        "https://hooks.example.com./in",
    ],
)
def test_good_urls(url: str) -> None:
    webhook = rules.validate_webhook(rest(f"  {url} "), allow_http_loopback=False)
    assert webhook == {"type": "REST", "url": url, "client_certificate_id": "", "soap": None}


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hooks.example.com/in",
        "http://hooks.example.com/in",
        "ftp://hooks.example.com/in",
        "https:///in",
        "https://user:pw@hooks.example.com/in",
        "https://user@hooks.example.com/in",
        "https://hooks.example.com/in#part",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\x07",
        "https://hooks.example.com:99999/in",
        "https://[::1/in",
        "https://bad_host-.example/in",
        "https://" + "a" * 64 + ".example/in",
        "https://hooks.example.com/" + "x" * 2030,
        "http://localhost/in",
    ],
)
def test_bad_urls(url: str) -> None:
    assert field_of(lambda: rules.validate_webhook(rest(url), allow_http_loopback=False)) == (
        "webhook.url"
    )


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/in", "http://127.0.0.1/in", "http://127.9.9.9/", "http://[::1]/"]
)
def test_http_only_to_loopback_when_allowed(url: str) -> None:
    assert rules.validate_webhook(rest(url), allow_http_loopback=True)["url"] == url
    assert field_of(lambda: rules.validate_webhook(rest(url), allow_http_loopback=False)) == (
        "webhook.url"
    )


@pytest.mark.parametrize("url", ["http://example.com/", "http://10.0.0.1/", "http://localhost.x/"])
def test_http_to_other_hosts_is_never_allowed(url: str) -> None:
    assert field_of(lambda: rules.validate_webhook(rest(url), allow_http_loopback=True)) == (
        "webhook.url"
    )


def test_url_error_does_not_repeat_credentials() -> None:
    with pytest.raises(InvalidField) as caught:
        rules.validate_webhook(rest("https://u:hunter2@x.example/"), allow_http_loopback=False)
    assert "hunter2" not in str(caught.value)


# --- webhook type, certificate, SOAP ------------------------------------------------------


@pytest.mark.parametrize("kind", [None, "", "GRAPHQL"])
def test_webhook_type_is_required(kind: str | None) -> None:
    webhook = {"type": kind, "url": "https://x.example/"}
    assert field_of(lambda: rules.validate_webhook(webhook, allow_http_loopback=False)) == (
        "webhook.type"
    )


def test_client_certificate_id() -> None:
    webhook = rules.validate_webhook(
        rest("https://x.example/", client_certificate_id=CERTIFICATE), allow_http_loopback=False
    )
    assert webhook["client_certificate_id"] == CERTIFICATE.lower()


@pytest.mark.parametrize(
    "certificate", ["cert-1", CERTIFICATE.replace("-", ""), "{" + CERTIFICATE + "}", 7]
)
def test_bad_client_certificate_id(certificate: object) -> None:
    webhook = rest("https://x.example/", client_certificate_id=certificate)
    assert field_of(lambda: rules.validate_webhook(webhook, allow_http_loopback=False)) == (
        "webhook.client_certificate_id"
    )


def test_rest_takes_no_soap_settings() -> None:
    empty = rest("https://x.example/", soap={"operation": "", "parameters": []})
    assert rules.validate_webhook(empty, allow_http_loopback=False)["soap"] is None
    given = rest("https://x.example/", soap={"operation": "Notify"})
    assert field_of(lambda: rules.validate_webhook(given, allow_http_loopback=False)) == (
        "webhook.soap"
    )


def test_soap_canonical_with_defaults() -> None:
    webhook = soap(operation="Notify")
    assert webhook["type"] == "SOAP"
    assert webhook["soap"] == {
        "operation": "Notify",
        "namespace": "",
        "soap_action": "",
        "version": "1.1",
        "parameters": [],
        "wsdl_url": "",
        "wsdl_document": "",
    }


def test_soap_full_settings() -> None:
    webhook = soap(
        operation="notify_event-2",
        namespace="urn:acme:hooks",
        soap_action="urn:acme:hooks#notify",
        version="1.2",
        parameters=[{"name": "tenant", "value": "acme"}, {"name": "Schlüssel", "value": ""}],
        wsdl_url="https://soap.example/hook?wsdl",
    )
    assert webhook["soap"]["parameters"] == [
        {"name": "tenant", "value": "acme"},
        {"name": "Schlüssel", "value": ""},
    ]
    assert webhook["soap"]["version"] == "1.2"
    assert webhook["soap"]["namespace"] == "urn:acme:hooks"
    assert webhook["soap"]["wsdl_url"] == "https://soap.example/hook?wsdl"


@pytest.mark.parametrize("namespace", ["http://acme.example/ns", "https://a.example", "urn:x:y"])
def test_soap_namespace_accepted(namespace: str) -> None:
    assert soap(operation="Notify", namespace=namespace)["soap"]["namespace"] == namespace


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({}, "webhook.soap.operation"),
        ({"operation": "ns:Notify"}, "webhook.soap.operation"),
        ({"operation": "1Notify"}, "webhook.soap.operation"),
        ({"operation": "No tify"}, "webhook.soap.operation"),
        ({"operation": "N", "namespace": "acme"}, "webhook.soap.namespace"),
        ({"operation": "N", "namespace": "mailto:a@b.c"}, "webhook.soap.namespace"),
        ({"operation": "N", "namespace": "http://a b"}, "webhook.soap.namespace"),
        ({"operation": "N", "soap_action": 'say "hi"'}, "webhook.soap.soap_action"),
        ({"operation": "N", "soap_action": "a\r\nX-Evil: 1"}, "webhook.soap.soap_action"),
        ({"operation": "N", "soap_action": "a" * 2049}, "webhook.soap.soap_action"),
        ({"operation": "N", "version": "2.0"}, "webhook.soap.version"),
        ({"operation": "N", "parameters": [{"name": "a:b"}]}, "webhook.soap.parameters[0].name"),
        ({"operation": "N", "parameters": [{"value": "v"}]}, "webhook.soap.parameters[0].name"),
        (
            {"operation": "N", "parameters": [{"name": "a"}, {"name": "b"}, {"name": "a"}]},
            "webhook.soap.parameters[2].name",
        ),
        (
            {"operation": "N", "parameters": [{"name": "a", "value": "x" * 4097}]},
            "webhook.soap.parameters[0].value",
        ),
        (
            {"operation": "N", "parameters": [{"name": "a", "value": "bell\x07"}]},
            "webhook.soap.parameters[0].value",
        ),
        (
            {"operation": "N", "parameters": [{"name": f"p{i}"} for i in range(51)]},
            "webhook.soap.parameters",
        ),
        ({"operation": "N", "wsdl_url": "http://soap.example/?wsdl"}, "webhook.soap.wsdl_url"),
        (
            {"operation": "N", "wsdl_url": "https://s.example/", "wsdl_document": WSDL_20},
            "webhook.soap.wsdl_document",
        ),
    ],
)
def test_bad_soap_settings(settings: dict[str, Any], field: str) -> None:
    assert soap_field(**settings) == field


def test_soap_parameter_limits_accepted() -> None:
    parameters = [{"name": f"p{i}", "value": "x" * 4096} for i in range(50)]
    assert len(soap(operation="N", parameters=parameters)["soap"]["parameters"]) == 50


def test_wsdl_documents_accepted() -> None:
    assert soap(operation="Notify", wsdl_document=WSDL_11)["soap"]["wsdl_document"] == WSDL_11
    # A WSDL 2.0 document without operations (e.g. imported ones) does not constrain it.
    assert soap(operation="Anything", wsdl_document=WSDL_20)["soap"]["wsdl_document"] == WSDL_20


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("not xml", "webhook.soap.wsdl_document"),
        ("<definitions>unclosed", "webhook.soap.wsdl_document"),
        ("<html xmlns='http://www.w3.org/1999/xhtml'/>", "webhook.soap.wsdl_document"),
        ("<definitions/>", "webhook.soap.wsdl_document"),
        (
            '<!DOCTYPE d [<!ENTITY a "aaaa">]>'
            '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/">&a;</definitions>',
            "webhook.soap.wsdl_document",
        ),
        (
            "<definitions xmlns='http://schemas.xmlsoap.org/wsdl/'>" + " " * (1024 * 1024) + "</x>",
            "webhook.soap.wsdl_document",
        ),
        (WSDL_11.replace("Ping", "Other").replace("Notify", "Send"), "webhook.soap.operation"),
    ],
)
def test_bad_wsdl_documents(document: str, field: str) -> None:
    assert soap_field(operation="Notify", wsdl_document=document) == field


def test_presentation_follows_the_type() -> None:
    rest_hook = rules.validate_webhook(rest("https://x.example/"), allow_http_loopback=False)
    assert rules.webhook_presentation(rest_hook) == ("POST", "JSON", "application/json")
    assert rules.webhook_presentation(soap(operation="N")) == ("POST", "XML", "text/xml")
    assert rules.webhook_presentation(soap(operation="N", version="1.2")) == (
        "POST",
        "XML",
        "application/soap+xml",
    )


# --- authentication -----------------------------------------------------------------------

TOKEN_URL = "https://auth.example/token"


@pytest.mark.parametrize("auth", [None, {}, {"kind": "none"}, {"kind": ""}])
def test_no_authentication(auth: dict[str, Any] | None) -> None:
    assert validate_authentication(auth) == {"kind": "none"}


def test_basic() -> None:
    auth = validate_authentication({"kind": "basic", "username": " ann ", "password": " p w "})
    assert auth == {"kind": "basic", "username": "ann", "password": " p w "}


def test_access_token_default_prefix() -> None:
    auth = validate_authentication({"kind": "oauth2_access_token", "access_token": "t0k"})
    assert auth == {"kind": "oauth2_access_token", "header_prefix": "Bearer", "access_token": "t0k"}
    custom = validate_authentication(
        {"kind": "oauth2_access_token", "header_prefix": "Token", "access_token": "t0k"}
    )
    assert custom["header_prefix"] == "Token"


def test_client_credentials() -> None:
    auth = validate_authentication(
        {
            "kind": "oauth2_client_credentials",
            "token_url": TOKEN_URL,
            "client_id": "id",
            "client_secret": "s3cret",
            "client_secret_set": False,
        }
    )
    assert auth == {
        "kind": "oauth2_client_credentials",
        "token_url": TOKEN_URL,
        "scope": "",
        "client_id": "id",
        "client_secret": "s3cret",
    }


def test_password_credentials() -> None:
    given = {
        "kind": "oauth2_password",
        "token_url": TOKEN_URL,
        "scope": "read:hooks write",
        "client_id": "id",
        "client_secret": "s",
        "username": "ann",
        "password": "pw",
    }
    assert validate_authentication(given) == given


def test_http_token_url_only_to_loopback_when_allowed() -> None:
    given = {
        "kind": "oauth2_client_credentials",
        "token_url": "http://127.0.0.1:9000/token",
        "client_id": "id",
        "client_secret": "s",
    }
    assert validate_authentication(given, allow_http_loopback=True)["token_url"] == (
        "http://127.0.0.1:9000/token"
    )
    assert field_of(lambda: validate_authentication(given)) == (
        "authentication.oauth2_client_credentials.token_url"
    )


CLIENT = {"token_url": TOKEN_URL, "client_id": "id", "client_secret": "s"}
USER = {**CLIENT, "username": "ann", "password": "pw"}


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"kind": "digest"}, "authentication"),
        ({"username": "ann", "password": "pw"}, "authentication"),
        ({"kind": "basic", "password": "pw"}, "authentication.basic.username"),
        ({"kind": "basic", "username": "a:b", "password": "pw"}, "authentication.basic.username"),
        (
            {"kind": "basic", "username": "a" * 257, "password": "p"},
            "authentication.basic.username",
        ),
        ({"kind": "basic", "username": "ann"}, "authentication.basic.password"),
        ({"kind": "basic", "username": "ann", "password": ""}, "authentication.basic.password"),
        ({"kind": "basic", "username": "a", "password": "p\nw"}, "authentication.basic.password"),
        (
            {"kind": "basic", "username": "a", "password": "p" * 1025},
            "authentication.basic.password",
        ),
        ({"kind": "basic", "username": "a", "password": 5}, "authentication.basic.password"),
        ({"kind": "oauth2_access_token"}, "authentication.oauth2_access_token.access_token"),
        (
            {"kind": "oauth2_access_token", "access_token": "t" * 8193},
            "authentication.oauth2_access_token.access_token",
        ),
        (
            {"kind": "oauth2_access_token", "access_token": "tökén"},
            "authentication.oauth2_access_token.access_token",
        ),
        (
            {"kind": "oauth2_access_token", "header_prefix": "Bear er", "access_token": "t"},
            "authentication.oauth2_access_token.header_prefix",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "token_url": ""},
            "authentication.oauth2_client_credentials.token_url",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "client_id": ""},
            "authentication.oauth2_client_credentials.client_id",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "client_id": "i" * 513},
            "authentication.oauth2_client_credentials.client_id",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "client_secret": ""},
            "authentication.oauth2_client_credentials.client_secret",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "client_secret": "s" * 2049},
            "authentication.oauth2_client_credentials.client_secret",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "scope": 'a "b"'},
            "authentication.oauth2_client_credentials.scope",
        ),
        (
            {"kind": "oauth2_client_credentials", **CLIENT, "scope": "s" * 1025},
            "authentication.oauth2_client_credentials.scope",
        ),
        (
            {"kind": "oauth2_password", **CLIENT, "username": "ann"},
            "authentication.oauth2_password.password",
        ),
        (
            {"kind": "oauth2_password", **CLIENT, "password": "pw"},
            "authentication.oauth2_password.username",
        ),
        (
            {"kind": "oauth2_password", **USER, "token_url": "https://u:p@a.example/"},
            "authentication.oauth2_password.token_url",
        ),
    ],
)
def test_bad_authentication(auth: dict[str, Any], field: str) -> None:
    assert field_of(lambda: validate_authentication(auth)) == field


def test_secret_values_never_reach_the_message() -> None:
    for auth in (
        {"kind": "basic", "username": "a", "password": "hunter2\n"},
        {"kind": "oauth2_access_token", "access_token": "hunter2" * 2000},
        {"kind": "oauth2_client_credentials", **CLIENT, "client_secret": "hunter2\x00"},
    ):
        with pytest.raises(InvalidField) as caught:
            validate_authentication(auth)
        assert "hunter2" not in str(caught.value)


def test_secrets_may_be_left_empty_on_update() -> None:
    auth = validate_authentication(
        {"kind": "basic", "username": "ann", "password": ""}, require_secrets=False
    )
    assert auth == {"kind": "basic", "username": "ann", "password": ""}
    # Only secrets: other required fields stay required.
    assert field_of(lambda: validate_authentication({"kind": "basic"}, require_secrets=False)) == (
        "authentication.basic.username"
    )


def test_auth_constants() -> None:
    assert AUTH_KINDS == (
        "none",
        "basic",
        "oauth2_access_token",
        "oauth2_client_credentials",
        "oauth2_password",
    )
    assert SECRET_FIELDS == ("password", "access_token", "client_secret")


# --- retry policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, {"retries": 3, "interval_seconds": 300}),
        ({}, {"retries": 3, "interval_seconds": 300}),
        ({"retries": None, "interval_seconds": None}, {"retries": 3, "interval_seconds": 300}),
        ({"retries": 0}, {"retries": 0, "interval_seconds": 300}),
        ({"retries": 5, "interval_seconds": 10}, {"retries": 5, "interval_seconds": 10}),
        ({"interval_seconds": 86400}, {"retries": 3, "interval_seconds": 86400}),
    ],
)
def test_retry_policy(policy: dict[str, Any] | None, expected: dict[str, int]) -> None:
    assert rules.validate_retry_policy(policy) == expected


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"retries": 7}, "retry_policy.retries"),
        ({"retries": -1}, "retry_policy.retries"),
        ({"retries": "3"}, "retry_policy.retries"),
        ({"retries": True}, "retry_policy.retries"),
        ({"interval_seconds": 9}, "retry_policy.interval_seconds"),
        ({"interval_seconds": 86401}, "retry_policy.interval_seconds"),
        ({"interval_seconds": 1.5}, "retry_policy.interval_seconds"),
    ],
)
def test_bad_retry_policy(policy: dict[str, Any], field: str) -> None:
    assert field_of(lambda: rules.validate_retry_policy(policy)) == field


def test_retry_message() -> None:
    with pytest.raises(InvalidField, match="must be between 0 and 5"):
        rules.validate_retry_policy({"retries": 7})


# --- rate limit ---------------------------------------------------------------------------


def test_a_rate_limit_is_kept_only_when_set() -> None:
    def validated(**extra: Any) -> dict[str, Any]:
        return rules.validate_webhook(
            rest("https://a.example/in", **extra), allow_http_loopback=False
        )

    assert validated(rate_limit_per_second=5)["rate_limit_per_second"] == 5
    assert validated(rate_limit_per_second=10_000)["rate_limit_per_second"] == 10_000
    # None set: no key, so a webhook stored before limits existed compares equal.
    assert "rate_limit_per_second" not in validated(rate_limit_per_second=0)
    assert "rate_limit_per_second" not in validated()
    for bad in (-1, 10_001, True, "5"):
        with pytest.raises(InvalidField) as caught:
            validated(rate_limit_per_second=bad)
        assert caught.value.field == "webhook.rate_limit_per_second", bad
