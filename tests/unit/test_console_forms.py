"""The console's subscription form both ways, in memory: what a browser posts becomes the
same request the CLI would build, a stored subscription comes back without its secrets,
and a server-side field violation finds its input. Also the History's sentences and the
one-time signing secret's stash."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from flask import Flask, session
from werkzeug.datastructures import MultiDict

from webhooks.v1.common_pb2 import (
    Authentication,
    BasicAuth,
    SoapVersion,
    StatusChange,
    TriggerSpec,
    Webhook,
    WebhookType,
)
from webhooks.v1.subscriptions_pb2 import Subscription
from webhooks_catalogue.proto import catalogue_message
from webhooks_client.subscription_spec import MASK_ORDER
from webhooks_console.display import MAX_BACK_PAGES, Pages, trigger_text, url_breaks, words
from webhooks_console.form_errors import form_inputs, step_of, violation_input
from webhooks_console.forms import (
    FormProblems,
    build_spec,
    distinct_component,
    form_of,
    parse_form,
)
from webhooks_console.pages import local_path
from webhooks_console.secret_views import (
    STASH_KEY,
    STASH_SECONDS,
    duration_text,
    overlap_choices,
    stash_secret,
    take_secret,
)
from webhooks_console.subscription_details_views import change_lines, what_happened
from webhooks_secrets import SecretBox

CATALOGUE = catalogue_message()


def rest_post() -> MultiDict[str, str]:
    return MultiDict(
        [
            ("name", " CRM sync "),
            ("entity", "Object"),
            ("trigger_count", "2"),
            ("triggers[0].trigger", "OnNewActivity"),
            ("triggers[0].activity_types", "2"),
            ("triggers[0].channels", "7"),
            ("triggers[0].status_changes.from", "1"),
            ("triggers[0].status_changes.to", "2"),
            ("triggers[0].status_changes.from", "0"),
            ("triggers[0].status_changes.to", ""),  # the empty row: ignored
            ("triggers[1].trigger", "OnNewActivity"),
            ("triggers[1].activity_types", "3"),
            ("triggers[1].whatsapp_statuses", "read"),  # not a component of the trigger
            ("include_complete_data", "on"),
            ("webhook.type", "rest"),
            ("webhook.url", "https://crm.example.com/hooks"),
            ("webhook.soap.operation", "Leftover"),  # typed before switching to REST
            ("authentication", "basic"),
            ("authentication.basic.username", "crm"),
            ("authentication.basic.password", " s3cret "),
            ("authentication.oauth2_password.username", "other kind: ignored"),
            ("retry_policy.retries", "5"),
            ("retry_policy.interval_seconds", "60"),
        ]
    )


def test_a_rest_post_becomes_the_whole_spec() -> None:
    spec, mask = build_spec(parse_form(rest_post()), CATALOGUE)
    assert spec.name == "CRM sync" and spec.entity == "Object"
    assert list(spec.triggers) == [
        TriggerSpec(
            trigger="OnNewActivity",
            channels=[7],
            activity_types=[2],
            status_changes=[StatusChange(from_status=1, to_status=2)],
        ),
        TriggerSpec(trigger="OnNewActivity", activity_types=[3]),
    ]
    assert spec.include_complete_data
    assert spec.webhook == Webhook(type=WebhookType.WEBHOOK_TYPE_REST, url=spec.webhook.url)
    assert spec.authentication == Authentication(
        basic=BasicAuth(username="crm", password=" s3cret ")
    ), "a secret is taken as typed"
    assert (spec.retry_policy.retries, spec.retry_policy.interval_seconds) == (5, 60)
    assert list(mask.paths) == list(MASK_ORDER)


def test_a_soap_post_with_client_credentials() -> None:
    form = MultiDict(
        [
            ("name", "ERP"),
            ("entity", "User"),
            ("triggers[0].trigger", "OnNew"),
            ("webhook.type", "soap"),
            ("webhook.url", "https://erp.example.com/soap"),
            ("webhook.soap.operation", "Notify"),
            ("webhook.soap.namespace", "urn:example:erp"),
            ("webhook.soap.version", "1.2"),
            ("webhook.soap.parameters.name", "source"),
            ("webhook.soap.parameters.value", "console"),
            ("webhook.soap.parameters.name", ""),
            ("webhook.soap.parameters.value", ""),
            ("authentication", "oauth2_client_credentials"),
            ("authentication.oauth2_client_credentials.token_url", "https://login/token"),
            ("authentication.oauth2_client_credentials.scope", "hooks"),
            ("authentication.oauth2_client_credentials.client_id", "erp"),
            ("authentication.oauth2_client_credentials.client_secret", "cs"),
        ]
    )
    spec, _ = build_spec(parse_form(form), CATALOGUE)
    soap = spec.webhook.soap
    assert spec.webhook.type == WebhookType.WEBHOOK_TYPE_SOAP
    assert (soap.operation, soap.namespace, soap.version) == (
        "Notify",
        "urn:example:erp",
        SoapVersion.SOAP_VERSION_1_2,
    )
    assert [(p.name, p.value) for p in soap.parameters] == [("source", "console")]
    credentials = spec.authentication.oauth2_client_credentials
    assert (credentials.token_url, credentials.scope, credentials.client_id) == (
        "https://login/token",
        "hooks",
        "erp",
    )
    assert credentials.client_secret == "cs"
    assert spec.triggers[0] == TriggerSpec(trigger="OnNew")


def stored() -> Subscription:
    return Subscription(
        id="3f1c",
        name="CRM sync",
        entity="User",
        triggers=[TriggerSpec(trigger="OnNew", channels=[7, 4])],
        webhook=Webhook(type=WebhookType.WEBHOOK_TYPE_REST, url="https://crm/hooks"),
        authentication=Authentication(basic=BasicAuth(username="crm", password_set=True)),
        version=4,
    )


def test_a_stored_subscription_comes_back_without_its_secrets() -> None:
    form = form_of(stored())
    assert form.auth == "basic" and form.auth_value("basic", "username") == "crm"
    assert form.auth_value("basic", "password") == ""
    assert ("basic", "password") in form.secrets_set
    assert form.triggers[0].channels == [7, 4] and form.version == 4
    assert (form.retries, form.interval) == ("3", "300"), "unset: the defaults"


def test_an_edit_with_the_password_left_empty_keeps_it() -> None:
    post = MultiDict(
        [
            ("name", "CRM sync"),
            ("entity", "User"),
            ("triggers[0].trigger", "OnNew"),
            ("triggers[0].channels", "7"),
            ("webhook.type", "rest"),
            ("webhook.url", "https://crm/v2"),
            ("authentication", "basic"),
            ("authentication.basic.username", "crm"),
            ("authentication.basic.password", ""),
            ("retry_policy.retries", "3"),
            ("retry_policy.interval_seconds", "300"),
        ]
    )
    spec, mask = build_spec(parse_form(post), CATALOGUE, stored())
    # An empty secret of an unchanged kind: the API keeps the stored one.
    assert spec.authentication == Authentication(basic=BasicAuth(username="crm"))
    assert spec.webhook.url == "https://crm/v2"
    assert spec.triggers[0].channels == [7]
    assert "authentication" in mask.paths


def test_retries_that_are_not_numbers_stay_on_the_form() -> None:
    post = MultiDict([("name", "x"), ("retry_policy.retries", "three")])
    with pytest.raises(FormProblems) as raised:
        build_spec(parse_form(post), CATALOGUE)
    assert raised.value.problems == {"retry_policy.retries": "must be a whole number"}


def test_a_soap_parameter_without_a_name_is_refused_before_the_service() -> None:
    post = MultiDict(
        [
            ("webhook.type", "soap"),
            ("webhook.soap.parameters.name", ""),
            ("webhook.soap.parameters.value", "orphan"),
        ]
    )
    with pytest.raises(FormProblems) as raised:
        build_spec(parse_form(post), CATALOGUE)
    assert list(raised.value.problems) == ["webhook.soap.parameters"]


def test_violations_find_their_inputs() -> None:
    form = parse_form(rest_post())
    inputs = form_inputs(form)
    assert violation_input("subscription.webhook.url", inputs) == "webhook.url"
    assert (
        violation_input("subscription.triggers[1].status_changes[0]", inputs)
        == "triggers[1].status_changes"
    )
    assert (
        violation_input("subscription.authentication.basic.password", inputs)
        == "authentication.basic.password"
    )
    assert (
        violation_input("subscription.webhook.soap.parameters[2].name", inputs)
        == "webhook.soap.parameters"
    )
    assert violation_input("x-webhooks-tenant", inputs) == ""
    assert step_of("authentication.basic.password") == "authentication"
    assert step_of("webhook.soap.operation") == "webhook"
    assert step_of("retry_policy.retries") == "retries"
    assert step_of("triggers[0].channels") == "details"


def test_greyed_out_values_follow_the_catalogue() -> None:
    assert distinct_component("Object", "OnNewActivity") == "activity_types"
    assert distinct_component("WhatsApp", "OnMessageStatus") == "whatsapp_channels"
    assert distinct_component("Nope", "OnNew") == ""


def test_a_back_or_next_path_never_leaves_the_console() -> None:
    assert local_path("/webhooks?q=crm", "/home") == "/webhooks?q=crm"
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None):
        assert local_path(elsewhere, "/home") == "/home"


def test_a_trigger_reads_as_its_name_and_labelled_components() -> None:
    trigger = TriggerSpec(
        trigger="OnNewActivity",
        channels=[7],
        activity_types=[1, 2],
        status_changes=[StatusChange(from_status=1, to_status=2), StatusChange(to_status=14)],
    )
    shown = trigger_text(trigger, "Object", CATALOGUE)
    assert shown.text == (
        "On New Activity — Channels: WhatsApp · Activity types: Remark, Status Change"
        " · Status: Open → Resolved, Any → Archive"
    )
    assert shown.title == "On New Activity: fires when an activity is logged on a conversation"
    assert trigger_text(TriggerSpec(trigger="onnew"), "User", CATALOGUE).text == "On New"
    whatsapp = TriggerSpec(
        trigger="OnMessageStatus", whatsapp_channels=["wa-1"], whatsapp_statuses=["read"]
    )
    assert trigger_text(whatsapp, "WhatsApp", CATALOGUE).text == (
        "On Message Status — WhatsApp channels: wa-1 · WhatsApp statuses: Read ✓✓"
    )
    unknown = trigger_text(TriggerSpec(trigger="OnSomethingNew", channels=[99]), "X", CATALOGUE)
    assert (unknown.text, unknown.title) == (
        "On Something New — Channels: unknown (99)",
        "On Something New",
    )
    assert words("OnUpdateTag") == "On Update Tag" and words("OnUserExit") == "On User Exit"


def test_a_url_wraps_only_after_its_separators_and_stays_escaped() -> None:
    assert str(url_breaks("https://crm.example.com/hooks/in?a=1&b=<2>")) == (
        "https://<wbr>crm.example.com/<wbr>hooks/<wbr>in?<wbr>a=<wbr>1&amp;<wbr>b=<wbr>&lt;2&gt;"
    )


def test_pages_keep_the_tokens_before_them_for_previous() -> None:
    first = Pages.of("", ["ignored"], "t1")
    assert first.first and first.previous_args() is None
    assert first.next_args() == {"page": "t1", "back": [""]}
    second = Pages.of("t1", [""], "t2")
    assert second.previous_args() == {"page": None, "back": []}, "back to the first page"
    assert second.next_args() == {"page": "t2", "back": ["", "t1"]}
    third = Pages.of("t2", ["", "t1"], "")
    assert third.previous_args() == {"page": "t1", "back": [""]}
    assert third.next_args() is None
    deep = Pages.of("t99", [f"t{n}" for n in range(99)], "t100")
    assert len(deep.back) == MAX_BACK_PAGES and deep.previous_args() == {
        "page": "t98",
        "back": [f"t{n}" for n in range(79, 98)],
    }
    next_args = deep.next_args()
    assert next_args is not None and len(next_args["back"]) == MAX_BACK_PAGES  # type: ignore[arg-type]
    assert Pages.of("t1", [], "").previous_args() is None, "tokens ran out: First page only"


def test_history_triggers_read_as_the_list_writes_them() -> None:
    changes = {
        "name": "CRM sync",
        "triggers": [
            {"trigger": "OnNewActivity", "channels": [7], "activity_types": [3]},
            {"trigger": "OnNewActivity", "status_changes": [{"from": 1, "to": 2}, {"to": 14}]},
        ],
        "authentication": {"kind": "basic", "password": "***"},
    }
    lines = dict(change_lines(changes, "Object", CATALOGUE))
    assert lines["Trigger 1"] == "On New Activity — Channels: WhatsApp · Activity types: Forward"
    assert lines["Trigger 2"] == "On New Activity — Status: Open → Resolved, Any → Archive"
    assert lines["Authentication"] == "Basic"
    assert lines["Password"] == "set (not shown)", "the form's labels, a secret never"
    retyped = {"entity": "User", "triggers": [{"trigger": "OnNew"}]}
    assert dict(change_lines(retyped, "Object", CATALOGUE))["Trigger 1"] == "On New"


def test_history_entries_read_as_sentences() -> None:
    url = "https://a.example/hook"
    assert what_happened("Created", {"name": "CRM"}, None) == "Created as “CRM”"
    assert what_happened("Renamed", {"name": "ERP"}, None) == "Renamed to “ERP”"
    assert what_happened("Deactivated", {}, None) == "Deactivated"
    assert what_happened("EndpointChanged", {"webhook": {"url": url}}, "https://b.example/") == (
        f"Webhook URL changed to {url}"
    )
    assert what_happened("EndpointChanged", {"webhook": {"url": url}}, url) == (
        "Webhook settings changed"
    )
    assert what_happened("AuthChanged", {}, None) == "Authentication changed (secrets not shown)"
    assert what_happened("SomethingNew", {}, None) == "Something New"


def test_overlaps_in_words() -> None:
    assert [duration_text(s) for s in (0, 90, 3600, 86400, 7 * 86400, 2 * 86400)] == [
        "0 seconds",
        "90 seconds",
        "1 hour",
        "24 hours",
        "7 days",
        "2 days",
    ]
    assert [value for value, _ in overlap_choices(1800)] == [0, 1800, 3600, 86400, 604800]


@pytest.fixture
def console_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test"
    box = SecretBox([Fernet.generate_key().decode()])
    app.extensions["sessions"] = SimpleNamespace(box=box)
    return app


def test_a_signing_secret_is_stashed_sealed_and_taken_once(console_app: Flask) -> None:
    secret = "whsec_" + "A" * 32
    with console_app.test_request_context():
        stash_secret("sub-1", secret, rotated=True)
        assert secret not in json.dumps(dict(session)), "sealed, never in plaintext"
        assert take_secret("sub-2") is None, "another subscription's page shows nothing"
        assert STASH_KEY not in session, "and the stash is gone"
        stash_secret("sub-1", secret, rotated=True)
        shown = take_secret("sub-1")
        assert shown is not None and (shown.secret, shown.rotated) == (secret, True)
        assert take_secret("sub-1") is None, "once"
        stash_secret("sub-1", secret, rotated=False)
        later = time.time() + STASH_SECONDS + 1
        with mock.patch("webhooks_console.secret_views.time.time", return_value=later):
            assert take_secret("sub-1") is None, "a stale stash is dropped unread"
        session[STASH_KEY] = "not sealed"
        assert take_secret("sub-1") is None
