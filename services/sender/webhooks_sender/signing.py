"""Standard Webhooks signature headers of a delivery.

https://www.standardwebhooks.com/: the sender signs ``<webhook-id>.<webhook-timestamp>.<body>``
with HMAC-SHA256 under each of the subscription's signing secrets (``whsec_`` + base64, as
the subscriptions service generates them) and sends

- ``webhook-id``: the delivery id, the same on every retry so receivers can deduplicate;
- ``webhook-timestamp``: integer Unix seconds of the attempt;
- ``webhook-signature``: ``v1,<base64 signature>`` per secret, separated by a space: the
  current secret and, while a rotation's overlap lasts, the previous one, so a receiver
  verifies with whichever secret it holds.

The HMAC itself is the ``standardwebhooks`` package's (the receivers' reference library), so
sender and receivers cannot disagree on encoding details.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

__all__ = ["signature_headers"]


def signature_headers(
    delivery_id: str, timestamp: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``timestamp``.

    ``timestamp`` must be timezone-aware (naive datetimes are refused rather than guessed
    at); it is sent in whole seconds, rounded down, and signed as sent. ``body`` must be
    UTF-8 (JSON and the SOAP envelopes are): the package signs text, and receivers using it
    verify decoded text. Raises ValueError for an empty id, an empty secrets list, a naive
    timestamp, a body that is not UTF-8 or a secret that is not ``whsec_`` + base64 (the
    message never contains the secret).
    """
    if not delivery_id:
        raise ValueError("webhook-id must not be empty")
    if not secrets:
        raise ValueError("at least one signing secret is needed")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("the timestamp must be timezone-aware")
    seconds = math.floor(timestamp.timestamp())
    # Webhook.sign() does timestamp.replace(tzinfo=utc), which would shift an aware time in
    # another zone; hand it the UTC instant of the whole second we send.
    signed_at = datetime.fromtimestamp(seconds, UTC)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body must be UTF-8 to be signed") from None
    signatures = []
    for index, secret in enumerate(secrets):
        if not _well_formed(secret):
            raise ValueError(f"signing secret #{index + 1} is not whsec_ + base64")
        signatures.append(Webhook(secret).sign(delivery_id, signed_at, text))
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": " ".join(signatures),
    }


def _well_formed(secret: str) -> bool:
    # The package decodes leniently (it drops characters that are not base64), so a damaged
    # secret would still sign, with a key nobody else holds. Check it strictly first; padding
    # may be left out, as the package allows.
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(key) > 0
