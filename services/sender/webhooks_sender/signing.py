"""Standard Webhooks signature headers of a delivery.

https://www.standardwebhooks.com/: the sender signs ``<webhook-id>.<webhook-timestamp>.<body>``
with HMAC-SHA256 under each of the subscription's signing secrets (``whsec_`` + base64, as
the subscriptions service generates them) and sends

- ``webhook-id``: the delivery id, the same on every retry so receivers can deduplicate;
- ``webhook-timestamp``: integer Unix seconds of the attempt;
- ``webhook-signature``: ``v1,<base64 signature>`` per secret, separated by a space: the
  current secret and, while a rotation's overlap lasts, the previous one, so a receiver
  verifies with whichever secret it holds.

The signature is the one the ``standardwebhooks`` package (the receivers' reference library)
computes, ``base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))``, written here with the
one-shot ``hmac.digest`` over the body's bytes and each secret's key decoded once (the
package's ``Webhook.sign`` decodes the secret per signer, re-encodes the text and uses the
Python HMAC class: ~3 times the cost); the tests check it against the package.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Sequence
from datetime import datetime

__all__ = ["signature_headers"]

# Keys decoded per secret (a subscription's, or its previous one during a rotation): beyond
# this many the cache starts again.
KEYS_CACHE_SIZE = 10_000
_keys: dict[str, bytes] = {}


def signature_headers(
    delivery_id: str, timestamp: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``timestamp``.

    ``timestamp`` must be timezone-aware (naive datetimes are refused rather than guessed
    at); it is sent in whole seconds, rounded down, and signed as sent. ``body`` must be
    UTF-8 (JSON and the SOAP envelopes are): receivers using the package verify decoded
    text. Raises ValueError for an empty id, an empty secrets list, a naive timestamp, a
    body that is not UTF-8 or a secret that is not ``whsec_`` + base64 (the message never
    contains the secret).
    """
    if not delivery_id:
        raise ValueError("webhook-id must not be empty")
    if not secrets:
        raise ValueError("at least one signing secret is needed")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("the timestamp must be timezone-aware")
    seconds = str(math.floor(timestamp.timestamp()))
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body must be UTF-8 to be signed") from None
    signed = f"{delivery_id}.{seconds}.".encode() + body
    signatures = []
    for index, secret in enumerate(secrets):
        key = _keys.get(secret)
        if key is None:
            key = _key(secret, index)
        digest = hmac.digest(key, signed, "sha256")
        signatures.append("v1," + base64.b64encode(digest).decode("ascii"))
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": seconds,
        "webhook-signature": " ".join(signatures),
    }


def _key(secret: str, index: int) -> bytes:
    """The HMAC key of ``secret``, checked and decoded once, then kept."""
    # The package decodes leniently (it drops characters that are not base64), so a damaged
    # secret would still sign, with a key nobody else holds. Decode it strictly; padding
    # may be left out, as the package allows.
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError(f"signing secret #{index + 1} is not whsec_ + base64")
    if len(_keys) >= KEYS_CACHE_SIZE:
        _keys.clear()
    _keys[secret] = key
    return key
