"""Each secret's key is decoded once and kept (bounded); the signatures are the package's."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks_sender import signing
from webhooks_sender.signing import signature_headers
from webhooks_subscriptions.application import new_signing_secret

BODY = json.dumps({"event": "Object.OnNew", "data": {"name": "Zoë"}}).encode()


def test_signs_as_the_package_does() -> None:
    secret = new_signing_secret()
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    for n in range(3):
        delivery = f"d-{n}"
        headers = signature_headers(delivery, at, BODY, [secret])
        assert headers["webhook-signature"] == Webhook(secret).sign(delivery, at, BODY.decode())
    assert secret in signing._keys


def test_a_malformed_secret_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="not whsec_"):
            signature_headers("d", datetime.now(UTC), BODY, ["whsec_not*base64"])
    assert "whsec_not*base64" not in signing._keys


def test_the_keys_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "KEYS_CACHE_SIZE", 4)
    monkeypatch.setattr(signing, "_keys", {})
    secrets = [new_signing_secret() for _ in range(10)]
    for secret in secrets:
        headers = signature_headers("d", datetime.now(UTC), BODY, [secret])
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
        assert len(signing._keys) <= 4


def test_both_signatures_of_a_rotation_are_the_packages() -> None:
    current, previous = new_signing_secret(), new_signing_secret()
    at = datetime.now(UTC)
    headers = signature_headers("d-9", at, BODY, [current, previous])
    seconds = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    assert headers["webhook-signature"].split(" ") == [
        Webhook(secret).sign("d-9", seconds, BODY.decode()) for secret in (current, previous)
    ]
    for secret in (current, previous):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
