"""The one vocabulary people see: each catalogue id's display name, and the key that lets a
person type either.

The catalogue's ids (``OnMessageStatus``, ``GoogleMyBusiness``, ``soap_fault``) are what the
API, the router and stored subscriptions use; pages, tables and messages show the display
name (``On Message Status``, ``Google My Business``, ``SOAP fault``) and every filter or
option accepts both, because ``catalogue_key`` of the two is the same. Names follow the user
guide's wording where it has one (WhatsApp statuses with their ✓ marks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from webhooks_catalogue.data import ACTIVITY_TYPES, CHANNELS, OBJECT_STATUSES, TAG_TYPES
from webhooks_catalogue.keys import catalogue_key

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# Product names the split into words would break apart ("Whats App"), kept whole.
_WHOLE_NAMES = ("WhatsApp", "YouTube")

# The guide: "sent (✓), delivered (✓✓), read (✓✓), and failed".
WHATSAPP_STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {"sent": "Sent ✓", "delivered": "Delivered ✓✓", "read": "Read ✓✓", "failed": "Failed"}
)

# The failure classes (webhooks_catalogue.failure_classes), as an error column reads them.
FAILURE_CLASS_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "http_status": "HTTP error status",
        "timeout": "Timed out",
        "dns": "Host name not found",
        "connect": "Could not connect",
        "tls": "TLS / certificate error",
        "soap_fault": "SOAP fault",
        "oauth_token": "OAuth token refused",
        "blocked_destination": "Destination not allowed",
        "subscription_gone": "Webhook deleted or deactivated",
        "configuration": "Webhook settings unusable",
    }
)


def words(name: str) -> str:
    """A catalogue id in words: ``OnNewActivity`` -> ``On New Activity``."""
    found = _WORD.findall(name)
    if not found:
        return name
    text = " ".join(found)
    for whole in _WHOLE_NAMES:
        text = text.replace(_apart(whole), whole)
    return text


def _apart(name: str) -> str:
    return " ".join(_WORD.findall(name))


def trigger_label(name: str) -> str:
    return words(name)


def entity_label(name: str) -> str:
    return words(name)


def _label(values: Mapping[int, str], value_id: int) -> str:
    name = values.get(value_id)
    return words(name) if name is not None else f"unknown ({value_id})"


def channel_label(channel_id: int) -> str:
    return _label(CHANNELS, channel_id)


def activity_type_label(activity_type_id: int) -> str:
    return _label(ACTIVITY_TYPES, activity_type_id)


def object_status_label(status_id: int) -> str:
    return _label(OBJECT_STATUSES, status_id)


def tag_type_label(tag_type_id: int) -> str:
    return _label(TAG_TYPES, tag_type_id)


def whatsapp_status_label(status: str) -> str:
    return WHATSAPP_STATUS_LABELS.get(status.casefold(), status)


def failure_class_label(name: str) -> str:
    """``soap_fault`` -> ``SOAP fault``; an HTTP status code stays as it is."""
    return FAILURE_CLASS_LABELS.get(name, name)


def failure_class_of(text: str) -> str | None:
    """The failure class a person typed, by id or label (``SOAP fault``, ``soap-fault``,
    ``Timed out``), or None."""
    wanted = catalogue_key(text)
    for name, label in FAILURE_CLASS_LABELS.items():
        if wanted in (catalogue_key(name), catalogue_key(label)):
            return name
    return None
