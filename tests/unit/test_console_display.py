"""The console's readable pages without a service: a webhook's summary (SOAP settings as
fields, authentication in words without secrets, the certificate by its name, retries as
a phrase), its History (only what each entry changed, under the form's labels) and a
failed event's errors and attempts in words."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from tests.support.console_vocabulary import problems_in
from webhooks.v1.common_pb2 import (
    Authentication,
    BasicAuth,
    OAuth2ClientCredentials,
    RetryPolicy,
    SoapParameter,
    SoapSettings,
    SoapVersion,
    Webhook,
    WebhookType,
)
from webhooks.v1.messages_pb2 import AttemptOutcome, AttemptRecord, FailureClass
from webhooks.v1.subscriptions_pb2 import Certificate, Subscription, SubscriptionHistoryEntry
from webhooks_catalogue.proto import catalogue_message
from webhooks_client.protos import timestamp
from webhooks_console.display import time_html
from webhooks_console.failure_detail_views import attempts, error_text
from webhooks_console.subscription_history import history_rows
from webhooks_console.subscription_summary import (
    authentication_text,
    retries_text,
    summary,
)

CATALOGUE = catalogue_message()
CERT_ID = "0b5e3c1e-6a52-4c53-a8a6-3c1f0f1e9d11"
AT = datetime(2026, 12, 7, 11, 2, 3, tzinfo=UTC)


def test_a_time_is_an_element_the_script_makes_local() -> None:
    assert str(time_html(timestamp(AT))) == (
        '<time class="local" datetime="2026-12-07T11:02:03Z">7 Dec 2026, 11:02 UTC</time>'
    )
    assert time_html(Subscription().created_at) == "—"


def test_retries_and_authentication_read_as_phrases_without_secrets() -> None:
    assert retries_text(RetryPolicy()) == "3 retries, 5 minutes apart", "the defaults"
    assert retries_text(RetryPolicy(retries=1, interval_seconds=90)) == "1 retry, 90 seconds apart"
    assert retries_text(RetryPolicy(retries=0)) == "No retries: one attempt only"
    basic = Authentication(basic=BasicAuth(username="erp", password_set=True))
    assert authentication_text(basic) == "Basic, user erp"
    oauth = Authentication(
        oauth2_client_credentials=OAuth2ClientCredentials(
            token_url="https://id.example/token", client_id="erp", client_secret_set=True
        )
    )
    assert authentication_text(oauth) == (
        "OAuth 2.0 client credentials, token URL https://id.example/token, client ID erp"
    )
    assert authentication_text(Authentication()) == "None"


def soap_subscription() -> Subscription:
    return Subscription(
        id="5f0c1e8e-1111-4a4a-9b9b-000000000001",
        name="ERP audit",
        entity="WhatsApp",
        active=True,
        webhook=Webhook(
            type=WebhookType.WEBHOOK_TYPE_SOAP,
            url="https://erp.example/soap",
            format="XML",
            content_type="text/xml",
            method="POST",
            client_certificate_id=CERT_ID,
            soap=SoapSettings(
                operation="Audit",
                namespace="urn:erp",
                soap_action="urn:erp/Audit",
                version=SoapVersion.SOAP_VERSION_1_1,
                parameters=[SoapParameter(name="source", value="webhooks")],
                wsdl_url="https://erp.example/audit?wsdl",
            ),
        ),
    )


def test_the_summary_shows_soap_settings_as_fields_and_the_certificate_by_name() -> None:
    cert = Certificate(id=CERT_ID, name="ERP client", subject="CN=erp")
    cert.not_after.CopyFrom(timestamp(AT))
    with Flask(__name__).test_request_context():
        sections = summary(soap_subscription(), 1, [cert])
    fields = {f.label: str(f.value) for s in sections for f in s.fields}
    assert fields["Entity"] == "WhatsApp" and fields["Status"] == "Active · healthy"
    assert fields["Type"] == "SOAP" and fields["SOAP version"] == "1.1"
    assert (fields["Operation"], fields["Namespace"]) == ("Audit", "urn:erp")
    assert fields["SOAPAction"] == "urn:erp/Audit" and fields["Parameters"] == "source = webhooks"
    assert fields["Client certificate"].startswith("ERP client — CN=erp, expires <time")
    assert fields["Rate limit"] == "No limit"
    everything = " ".join(fields.values())
    assert "SOAP_VERSION" not in everything and "{" not in everything
    assert CERT_ID not in everything.replace(fields["Subscription ID"], "")
    assert [f.label for s in sections for f in s.fields if f.css == "id"] == ["Subscription ID"]
    with Flask(__name__).test_request_context():
        gone = summary(soap_subscription(), 1, [])
    shown = {f.label: str(f.value) for s in gone for f in s.fields}["Client certificate"]
    assert shown.startswith("A certificate no longer uploaded")


def entry(version: int, event: str, changes: dict[str, Any]) -> SubscriptionHistoryEntry:
    struct = Struct()
    ParseDict(changes, struct)
    found = SubscriptionHistoryEntry(
        version=version, event_type=event, actor="admin-a", changes=struct
    )
    found.occurred_at.CopyFrom(timestamp(AT))
    return found


def webhook(url: str, wsdl: str, cert: str = "") -> dict[str, Any]:
    return {
        "type": "SOAP",
        "url": url,
        "client_certificate_id": cert,
        "rate_limit_per_second": 0,
        "soap": {"operation": "Audit", "version": "1.1", "wsdl_url": wsdl, "parameters": []},
    }


def test_history_lists_what_each_entry_changed_under_the_forms_labels() -> None:
    entries = [
        entry(
            1,
            "Created",
            {
                "name": "ERP",
                "tenant": "t",
                "entity": "Object",
                "triggers": [{"trigger": "OnNewActivity", "channels": [13]}],
                "webhook": webhook("https://a.example/soap", "https://a.example/wsdl"),
                "authentication": {"kind": "basic", "username": "erp", "password": "***"},
                "retry_policy": {"retries": 2, "interval_seconds": 600},
                "signing_secret": "***",
            },
        ),
        entry(
            2,
            "EndpointChanged",
            {"webhook": webhook("https://a.example/soap", "https://b.example/wsdl", CERT_ID)},
        ),
    ]
    newest, created = history_rows(entries, "Object", CATALOGUE, {CERT_ID: "ERP client"})
    assert newest["happened"] == "Webhook settings changed"
    assert [(k, str(v)) for k, v in newest["changes"]] == [
        ("WSDL URL", "https://b.example/wsdl"),
        ("Client certificate", "ERP client"),
    ], "only what changed, by the form's labels, in the form's order"
    lines = {k: str(v) for k, v in created["changes"]}
    assert lines["Trigger 1"] == "On New Activity — Channels: Google My Business"
    assert lines["Webhook URL"] == "https://a.example/soap"
    assert lines["SOAP version"] == "1.1" and lines["Authentication"] == "Basic"
    assert lines["Password"] == "set (not shown)" and lines["Signing secret"] == "set (not shown)"
    assert lines["Number of retries"] == "2" and lines["Interval between retries"] == "10 minutes"
    assert "Tenant" not in lines and not any("." in label for label in lines)
    assert created["actor"] == "admin-a" and 'datetime="2026-12-07T11:02:03Z"' in created["at"]


def test_a_failed_attempt_reads_in_words() -> None:
    assert error_text(FailureClass.FAILURE_CLASS_HTTP_STATUS, 500) == (
        "HTTP 500 Internal Server Error"
    )
    assert error_text(FailureClass.FAILURE_CLASS_SOAP_FAULT, 500) == (
        "SOAP fault (HTTP 500 Internal Server Error)"
    )
    assert error_text(FailureClass.FAILURE_CLASS_TIMEOUT, 0) == "Timed out"
    failed = AttemptRecord(
        attempt=1,
        max_attempts=2,
        outcome=AttemptOutcome.ATTEMPT_OUTCOME_FAILED,
        failure_class=FailureClass.FAILURE_CLASS_HTTP_STATUS,
        status_code=503,
        will_retry=True,
        response_snippet=b'{"error": "down"}',
        request_body=b'{"id": 1}',
        duration_ms=1234,
    )
    failed.next_attempt_at.CopyFrom(timestamp(AT))
    marker = AttemptRecord(
        outcome=AttemptOutcome.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED, requested_by="admin-a"
    )
    last = AttemptRecord(attempt=2, max_attempts=2, outcome=AttemptOutcome.ATTEMPT_OUTCOME_FAILED)
    first, again, final = attempts([failed, marker, last])
    assert (first.attempt, first.error, first.duration) == (
        "1 of 2",
        "HTTP 503 Service Unavailable",
        "1,234 ms",
    )
    assert str(first.result).startswith("Failed — next attempt at <time")
    assert (first.response, first.request) == ('{"error": "down"}', '{"id": 1}')
    assert again.heading == "Sent again by admin-a"
    assert final.result == "Failed — no retries left"


def test_the_forbidden_names_are_the_ones_meant() -> None:
    """The net of the console walk (tests/e2e/test_console_vocabulary.py) catches what the
    issue saw, and not the display names."""
    for seen in ("OnNew", "GoogleMyBusiness", "InProcess", "OnMessageStatus", "StatusChange"):
        assert problems_in(f"Trigger: {seen}"), seen
    for seen in ("http_status", "soap_fault", "SOAP_VERSION_1_1", "FAILURE_CLASS_TIMEOUT"):
        assert problems_in(f"Class: {seen}"), seen
    for seen in ("HEALTH_STATE_FAILING", "INVALID_ARGUMENT: x", "webhook.soap.wsdl_url"):
        assert problems_in(seen), seen
    assert problems_in("triggers[0] overlaps") and problems_in("an empty status_changes list")
    assert problems_in(f"id {uuid.uuid4()}")
    fine = (
        "On New Activity — Channels: Google My Business · Status: In Process → Resolved\n"
        "SOAP fault (HTTP 500 Internal Server Error) · Read ✓✓ · Client ID erp · "
        "https://127.0.0.1:4443/soap · 7 Dec 2026, 11:02 UTC · Not found"
    )
    assert problems_in(fine) == []
