"""Standard Webhooks headers: verified with the receivers' own library, ``standardwebhooks``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks_sender.signing import signature_headers
from webhooks_subscriptions.application import new_signing_secret

BODY = json.dumps({"event": "Object.OnNew", "data": {"id": 42, "name": "Zoë"}}).encode()
DELIVERY = "0b3a4c1e-5f6d-4e7a-8b9c-0d1e2f3a4b5c"


def now() -> datetime:
    return datetime.now(UTC)


def test_headers_verify_with_the_standardwebhooks_package() -> None:
    secret = new_signing_secret()
    headers = signature_headers(DELIVERY, now(), BODY, [secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_id_is_the_delivery_id_and_timestamp_integer_seconds() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 987654, tzinfo=UTC)
    headers = signature_headers(DELIVERY, at, BODY, [new_signing_secret()])
    assert headers["webhook-id"] == DELIVERY
    assert headers["webhook-timestamp"] == str(int(at.replace(microsecond=0).timestamp()))
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])


def test_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    """The spec's construction, computed independently of the package."""
    secret = new_signing_secret()
    headers = signature_headers(DELIVERY, now(), BODY, [secret])
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{DELIVERY}.{headers['webhook-timestamp']}.".encode() + BODY
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


def test_same_delivery_signed_again_keeps_its_id() -> None:
    secret = new_signing_secret()
    first = signature_headers(DELIVERY, now() - timedelta(seconds=90), BODY, [secret])
    retry = signature_headers(DELIVERY, now(), BODY, [secret])
    assert first["webhook-id"] == retry["webhook-id"] == DELIVERY
    assert first["webhook-timestamp"] != retry["webhook-timestamp"]
    Webhook(secret).verify(BODY, retry)


def test_altered_body_fails() -> None:
    secret = new_signing_secret()
    headers = signature_headers(DELIVERY, now(), BODY, [secret])
    altered = BODY.replace(b"42", b"43")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(altered, headers)


def test_altered_timestamp_fails() -> None:
    secret = new_signing_secret()
    headers = signature_headers(DELIVERY, now(), BODY, [secret])
    headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers)


def test_altered_id_fails() -> None:
    secret = new_signing_secret()
    headers = signature_headers(DELIVERY, now(), BODY, [secret])
    headers["webhook-id"] = DELIVERY[:-1] + "d"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers)


def test_other_secret_fails() -> None:
    headers = signature_headers(DELIVERY, now(), BODY, [new_signing_secret()])
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(BODY, headers)


def test_rotation_carries_both_signatures_and_each_secret_alone_verifies() -> None:
    current, previous = new_signing_secret(), new_signing_secret()
    headers = signature_headers(DELIVERY, now(), BODY, [current, previous])
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert signatures[0] != signatures[1]
    for secret in (current, previous):
        Webhook(secret).verify(BODY, headers)
        alone = signature_headers(DELIVERY, now(), BODY, [secret])
        assert alone["webhook-signature"] in signatures
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(BODY, headers)


def test_aware_timestamp_in_another_zone_is_the_same_instant() -> None:
    """The package's sign() replaces tzinfo; the header and signature must still agree."""
    secret = new_signing_secret()
    at = now().astimezone(timezone(timedelta(hours=-7)))
    headers = signature_headers(DELIVERY, at, BODY, [secret])
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    Webhook(secret).verify(BODY, headers)


def test_stale_timestamp_is_refused_by_receivers() -> None:
    secret = new_signing_secret()
    headers = signature_headers(DELIVERY, now() - timedelta(minutes=10), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers)


def test_non_json_utf8_body_verifies() -> None:
    secret = new_signing_secret()
    envelope = "<soap:Envelope><Name>Zoë</Name></soap:Envelope>".encode()
    headers = signature_headers(DELIVERY, now(), envelope, [secret])
    assert Webhook(secret).verify(envelope, headers, json_parse=False) is None


def test_empty_secrets_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        signature_headers(DELIVERY, now(), BODY, [])


def test_bad_input_refused_without_quoting_the_secret() -> None:
    with pytest.raises(ValueError, match="timezone"):
        signature_headers(DELIVERY, datetime(2030, 1, 1), BODY, [new_signing_secret()])
    with pytest.raises(ValueError, match="webhook-id"):
        signature_headers("", now(), BODY, [new_signing_secret()])
    with pytest.raises(ValueError, match="UTF-8"):
        signature_headers(DELIVERY, now(), b"\xff\xfe", [new_signing_secret()])
    bad = "whsec_Zm9vYmFyX2Jh-not-base64-a"
    with pytest.raises(ValueError, match="#2") as raised:
        signature_headers(DELIVERY, now(), BODY, [new_signing_secret(), bad])
    assert "Zm9v" not in str(raised.value)
    with pytest.raises(ValueError, match="#1"):
        signature_headers(DELIVERY, now(), BODY, ["whsec_"])
