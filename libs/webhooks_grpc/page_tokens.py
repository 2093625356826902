"""The wire form of a page token: a JSON array, URL-safe base64 without padding.

What the array holds is the service's (the position after the page, and what the token
must match: an order, a filter's digest); a caller gets it back only as an opaque string.
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any


def encode(fields: list[Any]) -> str:
    raw = json.dumps(fields).encode()
    return urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> Any:
    """The fields ``encode`` was given; ``ValueError`` when ``token`` is not one it made."""
    return json.loads(urlsafe_b64decode(token + "=" * (-len(token) % 4)))
