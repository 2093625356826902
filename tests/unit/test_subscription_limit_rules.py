"""The bounds of webhooks_catalogue.limits as the subscription rules apply them: each value
at its bound passes, one past it is refused naming the field and the bound, and the whole
subscription is refused when it would not fit one NATS message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import webhooks_catalogue
from webhooks_catalogue import limits
from webhooks_secrets import SecretBox, new_key
from webhooks_subscriptions.application import Caller, Policy, Subscriptions
from webhooks_subscriptions.certificates import parse_certificate
from webhooks_subscriptions.domain import rules
from webhooks_subscriptions.domain.authentication import validate_authentication
from webhooks_subscriptions.domain.errors import InvalidField

CALLER = Caller(tenant="acme", actor="acme-admin", trace={})


def refusal(call: Callable[[], object]) -> InvalidField:
    with pytest.raises(InvalidField) as caught:
        call()
    return caught.value


def channel_ids(count: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i}".ljust(limits.WHATSAPP_CHANNEL_ID_LENGTH, "x") for i in range(count)]


def whatsapp(channels: list[str] | None = None, statuses: list[str] | None = None) -> Any:
    trigger = {"trigger": "OnMessageStatus"}
    return [trigger | {"whatsapp_channels": channels or [], "whatsapp_statuses": statuses or []}]


# --- the numbers themselves ----------------------------------------------------------------


def test_component_bounds_follow_the_catalogue() -> None:
    assert limits.CHANNELS_PER_TRIGGER == len(webhooks_catalogue.CHANNELS) == 18
    assert len(webhooks_catalogue.ACTIVITY_TYPES) == limits.ACTIVITY_TYPES_PER_TRIGGER
    assert len(webhooks_catalogue.WHATSAPP_STATUSES) == limits.WHATSAPP_STATUSES_PER_TRIGGER
    # Every distinct status change: from "any" or one status, to a different status.
    statuses = [webhooks_catalogue.ANY_STATUS, *webhooks_catalogue.OBJECT_STATUSES]
    pairs = {(a, b) for a in statuses for b in webhooks_catalogue.OBJECT_STATUSES if a != b}
    assert len(pairs) == limits.STATUS_CHANGES_PER_TRIGGER
    # Far under NATS's default max_payload (1 MiB), which the relay must never meet.
    assert limits.SUBSCRIPTION_STATE_BYTES * 4 <= 1024 * 1024


# --- trigger components --------------------------------------------------------------------


def test_the_20000_whatsapp_channels_of_finding_1_are_refused() -> None:
    error = refusal(lambda: rules.validate_triggers("WhatsApp", whatsapp(channel_ids(20_000))))
    assert error.field == "triggers[0].whatsapp_channels"
    assert error.message == "at most 100 values, got 20000"


def test_whatsapp_channels_at_their_bound_pass() -> None:
    ids = channel_ids(limits.WHATSAPP_CHANNELS_PER_TRIGGER)
    _, triggers = rules.validate_triggers("WhatsApp", whatsapp(ids))
    assert triggers[0]["whatsapp_channels"] == sorted(ids)
    too_long = ["c".ljust(limits.WHATSAPP_CHANNEL_ID_LENGTH + 1, "x")]
    error = refusal(lambda: rules.validate_triggers("WhatsApp", whatsapp(too_long)))
    assert error.field == "triggers[0].whatsapp_channels[0]"
    assert "1 to 128 characters" in error.message


ALL_CHANNELS = sorted(webhooks_catalogue.CHANNELS)
ALL_ACTIVITIES = sorted(webhooks_catalogue.ACTIVITY_TYPES)


@pytest.mark.parametrize(
    ("entity", "trigger", "component", "at_bound", "bound"),
    [
        ("Object", "OnNew", "channels", ALL_CHANNELS, limits.CHANNELS_PER_TRIGGER),
        (
            "Object",
            "OnNewActivity",
            "activity_types",
            ALL_ACTIVITIES,
            limits.ACTIVITY_TYPES_PER_TRIGGER,
        ),
        (
            "WhatsApp",
            "OnMessageStatus",
            "whatsapp_statuses",
            list(webhooks_catalogue.WHATSAPP_STATUSES),
            limits.WHATSAPP_STATUSES_PER_TRIGGER,
        ),
    ],
)
def test_enumerated_components_hold_each_value_once_at_most(
    entity: str, trigger: str, component: str, at_bound: list[Any], bound: int
) -> None:
    _, triggers = rules.validate_triggers(entity, [{"trigger": trigger, component: at_bound}])
    assert len(triggers[0][component]) == bound
    # One more (a repeat) is past the bound, whatever the values.
    over = [{"trigger": trigger, component: [*at_bound, at_bound[0]]}]
    error = refusal(lambda: rules.validate_triggers(entity, over))
    assert (error.field, error.message) == (
        f"triggers[0].{component}",
        f"at most {bound} values, got {bound + 1}",
    )


def test_status_changes_are_bounded() -> None:
    change = {"from": 1, "to": 2}
    over = [{"trigger": "OnNewActivity", "status_changes": [change] * 1000}]
    error = refusal(lambda: rules.validate_triggers("Object", over))
    assert error.field == "triggers[0].status_changes"
    assert error.message == f"at most {limits.STATUS_CHANGES_PER_TRIGGER} values, got 1000"


def test_triggers_are_bounded() -> None:
    over = [{"trigger": "OnNew", "channels": [1]}] * (limits.TRIGGERS + 1)
    error = refusal(lambda: rules.validate_triggers("Object", over))
    assert (error.field, error.message) == ("triggers", "at most 50 triggers, got 51")


@pytest.mark.parametrize(
    ("entity", "triggers", "field"),
    [
        ("x" * 100_000, [{"trigger": "OnNew"}], "entity"),
        ("Object", [{"trigger": "x" * 100_000}], "triggers[0].trigger"),
        ("WhatsApp", whatsapp(statuses=["r" * 100_000]), "triggers[0].whatsapp_statuses[0]"),
    ],
)
def test_long_catalogue_words_are_refused_without_being_quoted(
    entity: str, triggers: list[dict[str, Any]], field: str
) -> None:
    error = refusal(lambda: rules.validate_triggers(entity, triggers))
    assert error.field == field
    assert error.message.startswith("at most ")
    assert len(error.message) < 100


# --- webhook and authentication ------------------------------------------------------------


def soap(**settings: Any) -> dict[str, Any]:
    webhook = {"type": "SOAP", "url": "https://soap.example/hook", "soap": settings}
    return rules.validate_webhook(webhook, allow_http_loopback=False)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"operation": "o" * (limits.XML_NAME_LENGTH + 1)}, "webhook.soap.operation"),
        (
            {"operation": "N", "parameters": [{"name": "p" * 1000, "value": ""}]},
            "webhook.soap.parameters[0].name",
        ),
        (
            {"operation": "N", "parameters": [{"name": f"p{i}", "value": ""} for i in range(51)]},
            "webhook.soap.parameters",
        ),
        ({"operation": "N", "namespace": "urn:a:" + "x" * 3000}, "webhook.soap.namespace"),
        (
            {
                "operation": "N",
                "wsdl_document": "<definitions><!--"
                + "x" * limits.WSDL_DOCUMENT_BYTES
                + "--></definitions>",
            },
            "webhook.soap.wsdl_document",
        ),
    ],
)
def test_soap_settings_past_their_bounds(settings: dict[str, Any], field: str) -> None:
    error = refusal(lambda: soap(**settings))
    assert error.field == field
    assert "at most" in error.message
    assert len(error.message) < 200


def test_xml_names_at_their_bound_pass() -> None:
    name = "o" * limits.XML_NAME_LENGTH
    canonical = soap(operation=name, parameters=[{"name": name, "value": "v"}])
    assert canonical["soap"]["operation"] == name


@pytest.mark.parametrize(
    ("kind", "field", "bound"),
    [
        ("basic", "username", limits.USERNAME_LENGTH),
        ("basic", "password", limits.PASSWORD_LENGTH),
        ("oauth2_access_token", "access_token", limits.ACCESS_TOKEN_LENGTH),
        ("oauth2_client_credentials", "scope", limits.OAUTH_SCOPE_LENGTH),
        ("oauth2_client_credentials", "client_id", limits.OAUTH_CLIENT_ID_LENGTH),
        ("oauth2_client_credentials", "client_secret", limits.OAUTH_CLIENT_SECRET_LENGTH),
    ],
)
def test_authentication_fields_past_their_bounds(kind: str, field: str, bound: int) -> None:
    base = {
        "basic": {"username": "u", "password": "p"},
        "oauth2_access_token": {"access_token": "t"},
        "oauth2_client_credentials": {
            "token_url": "https://login.example/token",
            "client_id": "c",
            "client_secret": "s",
        },
    }[kind]
    auth = {"kind": kind, **base, field: "a" * (bound + 1)}
    error = refusal(lambda: validate_authentication(auth))
    assert error.field == f"authentication.{kind}.{field}"
    assert error.message == f"must be at most {bound} characters, got {bound + 1}"


# --- certificates --------------------------------------------------------------------------


def test_pem_bounds_count_bytes() -> None:
    # 40,000 two-byte characters: under the bound in characters, over it in bytes.
    error = refusal(lambda: parse_certificate("é" * 40_000, "key"))
    assert error.field == "certificate_pem"
    assert error.message == f"must be at most {limits.PEM_BYTES} bytes, got 80000"
    error = refusal(lambda: parse_certificate("cert", "k" * (limits.PEM_BYTES + 1)))
    assert error.field == "private_key_pem"


# --- the whole subscription ----------------------------------------------------------------


def test_state_size_rule() -> None:
    rules.check_state_size(limits.SUBSCRIPTION_STATE_BYTES)
    error = refusal(lambda: rules.check_state_size(limits.SUBSCRIPTION_STATE_BYTES + 1))
    assert error.field == "subscription"
    assert f"at most {limits.SUBSCRIPTION_STATE_BYTES} bytes" in error.message


@pytest.fixture
def app() -> Iterator[Subscriptions]:
    subscriptions = Subscriptions(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        secrets=SecretBox([new_key()]),
        policy=Policy(),
    )
    yield subscriptions
    subscriptions.close()


def wide_triggers(count: int) -> list[dict[str, Any]]:
    per = limits.WHATSAPP_CHANNELS_PER_TRIGGER
    return [
        {"trigger": "OnMessageStatus", "whatsapp_channels": channel_ids(per, f"t{n}-")}
        for n in range(count)
    ]


def spec(triggers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "Wide",
        "entity": "WhatsApp",
        "triggers": triggers,
        "webhook": {"type": "REST", "url": "https://a.example/in"},
    }


def test_a_subscription_too_big_to_publish_is_not_saved(app: Subscriptions) -> None:
    error = refusal(lambda: app.create_subscription(CALLER, spec(wide_triggers(limits.TRIGGERS))))
    assert error.field == "subscription"
    # Nothing saved: not even the name is taken.
    app.create_subscription(CALLER, spec(wide_triggers(1)))


def test_an_update_that_would_outgrow_the_state_bound_changes_nothing(app: Subscriptions) -> None:
    created, _ = app.create_subscription(CALLER, spec(wide_triggers(1)))
    change = spec(wide_triggers(limits.TRIGGERS))
    error = refusal(lambda: app.update_subscription(CALLER, str(created.id), change, ["triggers"]))
    assert error.field == "subscription"
    stored = app.get_subscription("acme", str(created.id))
    assert (stored.version, len(stored.triggers)) == (1, 1)


def test_update_masks_and_ids_are_bounded(app: Subscriptions) -> None:
    created, _ = app.create_subscription(CALLER, spec(wide_triggers(1)))
    error = refusal(lambda: app.update_subscription(CALLER, str(created.id), {}, ["name"] * 1000))
    assert (error.field, error.message) == ("update_mask", "at most 7 paths, got 1000")
    error = refusal(lambda: app.update_subscription(CALLER, str(created.id), {}, ["x" * 10_000]))
    assert error.field == "update_mask"
    assert len(error.message) < 100
    error = refusal(lambda: app.get_subscription("acme", "0" * 10_000))
    assert error.field == "id"
    assert len(error.message) < 100


# --- the contracts say the same numbers ---------------------------------------------------

PROTOS = Path(__file__).resolve().parents[2] / "protos" / "webhooks" / "v1"
KIB = 1024
# (file, the field's declaration, the bound its comment must state)
DOCUMENTED: list[tuple[str, str, str]] = [
    ("common.proto", "string trigger = 1;", f"at most {limits.CATALOGUE_NAME_LENGTH}"),
    ("common.proto", "repeated int32 channels = 2;", f"at most {limits.CHANNELS_PER_TRIGGER}"),
    (
        "common.proto",
        "repeated int32 activity_types = 3;",
        f"at most {limits.ACTIVITY_TYPES_PER_TRIGGER}",
    ),
    (
        "common.proto",
        "repeated StatusChange status_changes = 4;",
        f"at most {limits.STATUS_CHANGES_PER_TRIGGER}",
    ),
    (
        "common.proto",
        "repeated string whatsapp_channels = 5;",
        f"at most {limits.WHATSAPP_CHANNELS_PER_TRIGGER}, each 1 to "
        f"{limits.WHATSAPP_CHANNEL_ID_LENGTH}",
    ),
    (
        "common.proto",
        "repeated string whatsapp_statuses = 6;",
        f"at most {limits.WHATSAPP_STATUSES_PER_TRIGGER}",
    ),
    ("common.proto", "string name = 1;  // an XML name", f"at most {limits.XML_NAME_LENGTH}"),
    ("common.proto", "string value = 2;", f"at most {limits.SOAP_PARAMETER_VALUE_LENGTH}"),
    ("common.proto", "string operation = 1;", f"at most {limits.XML_NAME_LENGTH}"),
    ("common.proto", "string soap_action = 3;", f"at most {limits.SOAP_ACTION_LENGTH}"),
    ("common.proto", "repeated SoapParameter parameters = 5;", f"at most {limits.SOAP_PARAMETERS}"),
    ("common.proto", "string wsdl_url = 6;", f"at most {limits.URL_LENGTH}"),
    (
        "common.proto",
        "string wsdl_document = 7;",
        f"at most {limits.WSDL_DOCUMENT_BYTES // KIB} KiB",
    ),
    ("common.proto", "string url = 2;", f"at most {limits.URL_LENGTH}"),
    ("common.proto", "string access_token = 2;", f"at most {limits.ACCESS_TOKEN_LENGTH}"),
    ("common.proto", "string header_prefix = 1;", f"at most {limits.HEADER_PREFIX_LENGTH}"),
    ("common.proto", "string scope = 2;", f"at most {limits.OAUTH_SCOPE_LENGTH}"),
    ("common.proto", "string client_id = 3;", f"at most {limits.OAUTH_CLIENT_ID_LENGTH}"),
    ("common.proto", "string client_secret = 4;", f"at most {limits.OAUTH_CLIENT_SECRET_LENGTH}"),
    ("common.proto", "string username = 1;", f"at most {limits.USERNAME_LENGTH}"),
    ("common.proto", "string password = 2;", f"at most {limits.PASSWORD_LENGTH}"),
    (
        "subscriptions.proto",
        "message SubscriptionSpec {",
        f"{limits.SUBSCRIPTION_STATE_BYTES // KIB} KiB",
    ),
    ("subscriptions.proto", "repeated TriggerSpec triggers = 3;", f"1 to {limits.TRIGGERS}"),
    ("subscriptions.proto", "string name = 1;  ", f"1 to {limits.NAME_LENGTH} characters"),
    ("subscriptions.proto", "string entity = 2;", f"at most {limits.CATALOGUE_NAME_LENGTH}"),
    ("subscriptions.proto", "string page_token = 5;", f"at most {limits.PAGE_TOKEN_LENGTH}"),
    ("subscriptions.proto", "string name_contains = 3;", f"at most {limits.NAME_CONTAINS_LENGTH}"),
    ("subscriptions.proto", "int32 page_size = 4;", f"at most {limits.SUBSCRIPTIONS_PAGE_SIZE}"),
    (
        "subscriptions.proto",
        "string certificate_pem = 2;",
        f"at most {limits.PEM_BYTES // KIB} KiB",
    ),
    (
        "subscriptions.proto",
        "string private_key_pem = 3;",
        f"at most {limits.PEM_BYTES // KIB} KiB",
    ),
]


@pytest.mark.parametrize(("file", "declaration", "bound"), DOCUMENTED)
def test_each_bound_is_documented_on_its_field(file: str, declaration: str, bound: str) -> None:
    lines = (PROTOS / file).read_text().splitlines()
    at = [
        i
        for i, line in enumerate(lines)
        if line.strip().startswith(declaration.strip()) and declaration in line
    ]
    assert at, f"{declaration!r} not found in {file}"
    # The comment is on the declaration's line or on the comment lines just above it.
    i = at[0]
    comment = [lines[i]]
    while i > 0 and lines[i - 1].strip().startswith("//"):
        i -= 1
        comment.insert(0, lines[i])
    assert bound in " ".join(line.strip() for line in comment), (file, declaration)
