"""Realistic sample events for every trigger of the catalogue, for tests and the CLI.

The data follows the main fields per entity of the catalogue (``data.py``); the event fields
(channel, activity type, status change, WhatsApp channel and status) agree with the data,
so a sample passes validation and reads like what the platform sends.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue import (
    ACTIVITY_STATUS_CHANGE,
    CHANNELS,
    ON_CERTIFICATE_EXPIRING,
    ON_CIRCUIT_OPENED,
    ON_DISABLED,
    ON_FAILING,
    ON_RECOVERED,
    ON_RETRIES_EXHAUSTED,
    WEBHOOK_ENTITY,
    Component,
    trigger,
)

_WHEN = "2024-05-01T09:30:00.000Z"
_WHATSAPP = next(i for i, n in CHANNELS.items() if n == "WhatsApp")

_IDENTITY = {
    "Id": 5521,
    "StreamProviderId": "972501234567",
    "StreamProviderType": _WHATSAPP,
    "UserName": "+972 50-123-4567",
    "DisplayName": "Dana Levi",
}
_USER = {
    "Id": 90211,
    "UniqueID": "c7d2a5e0-6b1f-4c8e-9a0d-3f4b2e1c7a90",
    "Phone1": "+972501234567",
    "Phone2": "",
    "Email": "dana.levi@example.com",
    "FirstName": "Dana",
    "LastName": "Levi",
    "Gender": 2,
    "Locale": "he-IL",
    "Birthday": "1988-03-14T00:00:00.000Z",
    "Remarks": "Prefers WhatsApp; VIP since 2021",
    "Identity": _IDENTITY,
}
_OBJECT = {
    "Id": 48213377,
    "StreamId": 1205,
    "SubStreamId": 0,
    "Type": 1,
    "StatusID": 1,
    "CreateDate": _WHEN,
    "StreamProviderId": "972501234567",
    "StreamProviderType": _WHATSAPP,
    "Message": "Hi, my order #1042 hasn't arrived yet",
    "Content": "<p>Hi, my order #1042 hasn&#39;t arrived yet</p>",
    "ManagerId": 311,
    "Snippet": "Hi, my order #1042 hasn't arrived…",
    "User": _USER,
}
_CHILDREN = [
    {"Id": 48213378, "Message": "Hi, my order #1042 hasn't arrived yet", "CreateDate": _WHEN,
     "Direction": "Incoming", "User": {"Id": 90211}},
    {"Id": 48213391, "Message": "Sorry about that, Dana: it ships today.",
     "CreateDate": "2024-05-01T09:34:12.000Z", "Direction": "Outgoing", "User": {"Id": 311}},
]  # fmt: skip
_ACTIVITIES = [
    {"Id": 771020, "Type": 6, "CreateDate": "2024-05-01T09:31:05.000Z", "User": {"Id": 311},
     "Data": {"managerId": 311}},
    {"Id": 771044, "Type": ACTIVITY_STATUS_CHANGE, "CreateDate": "2024-05-01T09:35:40.000Z",
     "User": {"Id": 311}, "Data": {"statusId": 2}},
]  # fmt: skip
_TAGS = [{"Id": 41, "Action": "Add"}, {"Id": 17, "Action": "Remove"}]
_TAG = {
    "tagId": "41",
    "groupId": "0",
    "name": "Gold",
    "isObject": True,
    "isUser": False,
    "type": "1",
    "unit": "",
    "defaultValue": "",
}

# A Webhook event's data: every key present, "" or 0 when it does not apply (the contract
# of the platform's operator events; see the catalogue documentation).
_WEBHOOK = {
    "SubscriptionId": "3f6c2b1e-8d4a-4f7e-9b2c-5a1d0e7f9c34",
    "SubscriptionName": "Orders to CRM",
    "Entity": "Object",
    "Url": "https://crm.example.com/hooks/orders",
    "State": "failing",
    "Reason": "",
    "ConsecutiveFailures": 5,
    "FailingSince": "2024-05-01T09:12:03.000Z",
    "LastError": "503 Service Unavailable",
    "DeliveryId": "",
    "EventId": "",
    "CertificateId": "",
    "CertificateName": "",
    "CertificateNotAfter": "",
}
_WEBHOOK_SAMPLES: dict[str, dict[str, Any]] = {
    ON_FAILING: _WEBHOOK,
    ON_CIRCUIT_OPENED: {
        **_WEBHOOK,
        "State": "circuit_open",
        "Reason": "7 of 10 attempts failed in 5 minutes",
        "ConsecutiveFailures": 7,
    },
    ON_DISABLED: {
        **_WEBHOOK,
        "State": "disabled",
        "Reason": "the endpoint answered 410 Gone",
        "ConsecutiveFailures": 1,
        "LastError": "410 Gone",
    },
    ON_RECOVERED: {**_WEBHOOK, "State": "healthy", "ConsecutiveFailures": 0, "LastError": ""},
    ON_RETRIES_EXHAUSTED: {
        **_WEBHOOK,
        "ConsecutiveFailures": 9,
        "DeliveryId": "d-7b0e4c1a9f2d4e6b8a3c5d7e9f1a2b3c",
        "EventId": "evt-0001",
    },
    ON_CERTIFICATE_EXPIRING: {
        **_WEBHOOK,
        "State": "healthy",
        "ConsecutiveFailures": 0,
        "FailingSince": "",
        "LastError": "",
        "CertificateId": "8a1e5d3c-2b7f-4c9a-b6e4-0d2f1a3c5e7b",
        "CertificateName": "crm-client-2024",
        "CertificateNotAfter": "2024-05-11T00:00:00.000Z",
    },
}

_SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    **{(WEBHOOK_ENTITY, name): data for name, data in _WEBHOOK_SAMPLES.items()},
    ("Object", "OnNew"): _OBJECT,
    ("Object", "OnNewChild"): {**_OBJECT, "Children": _CHILDREN},
    ("Object", "OnNewActivity"): {**_OBJECT, "StatusID": 2, "Activities": _ACTIVITIES},
    ("Object", "OnUpdateTag"): {**_OBJECT, "Tags": _TAGS},
    ("User", "OnNew"): _USER,
    ("User", "OnUpdate"): {**_USER, "Email": "dana.l@example.org"},
    ("User", "OnUpdateTag"): {**_USER, "Tags": _TAGS[:1]},
    ("Satisfaction", "OnSubmit"): {
        "ObjectId": 48213377,
        "Score": 5,
        "Description": "Very helpful, thanks!",
        "SurveyId": 12,
        "User": {"Id": 90211},
    },
    ("Tag", "OnAdd"): _TAG,
    ("Tag", "OnUpdate"): {**_TAG, "name": "Gold customer", "defaultValue": "yes"},
    ("Form", "OnSubmit"): {
        "ObjectId": 48213377,
        "FormUrl": "https://forms.example.com/f/contact-us",
        "Properties": {"Name": "Dana Levi", "OrderNumber": "1042", "Subject": "Late delivery"},
    },
    ("Chat", "OnUserExit"): {"User": {"id": 90211}, "Object": {"id": 48213377}},
    ("WhatsApp", "OnMessageStatus"): {
        "messageId": "wamid.HBgMOTcyNTAxMjM0NTY3FQIAERgSQUQ3MUE2QzM0RjQ1",
        "channelId": "wa-972-3-555-0100",
        "recipient": "+972501234567",
        "status": "delivered",
        "statusTime": "2024-05-01T09:30:02.000Z",
    },
}


def sample_data(entity: str, trigger_name: str) -> dict[str, Any]:
    """The data of a realistic event of this trigger (a fresh copy: callers may edit it)."""
    try:
        return copy.deepcopy(_SAMPLES[(entity, trigger_name)])
    except KeyError:
        raise ValueError(f"not a trigger of the catalogue: {entity} {trigger_name}") from None


def sample_event(
    entity: str,
    trigger_name: str,
    *,
    tenant: str = "acme",
    event_id: str = "evt-0001",
    occurred_at: datetime | None = None,
    channel: int | None = None,
    activity_type: int | None = None,
    status_change: common_pb2.StatusChange | None = None,
    whatsapp_channel: str | None = None,
    whatsapp_status: str | None = None,
) -> messages_pb2.PlatformEvent:
    """A complete, valid platform event of this trigger around ``sample_data``.

    The event fields given replace the sample's, and its data follows them (a "read" event's
    data says "read"); a status change comes only with the StatusChange activity type.
    """
    data = sample_data(entity, trigger_name)
    spec = trigger(entity, trigger_name)
    assert spec is not None  # sample_data has already refused unknown triggers
    event = messages_pb2.PlatformEvent(
        event_id=event_id, tenant=tenant, entity=entity, trigger=trigger_name
    )
    event.occurred_at.FromDatetime(occurred_at or datetime(2024, 5, 1, 9, 35, 40, tzinfo=UTC))
    if Component.CHANNELS in spec.components:
        # Object data names its channel; a user's is the one of their identity.
        carrier = data if "StreamProviderType" in data else data["Identity"]
        event.channel = int(carrier["StreamProviderType"]) if channel is None else channel
        _set_channel(data, event.channel)
        event.subchannel = str(data.get("StreamId", ""))
    if Component.ACTIVITY_TYPES in spec.components:
        event.activity_type = ACTIVITY_STATUS_CHANGE if activity_type is None else activity_type
        if event.activity_type == ACTIVITY_STATUS_CHANGE:
            event.status_change.CopyFrom(
                status_change or common_pb2.StatusChange(from_status=1, to_status=2)
            )
        _set_last_activity(data, event)
    if Component.WHATSAPP_CHANNELS in spec.components:
        data["channelId"] = whatsapp_channel or data["channelId"]
        data["status"] = whatsapp_status or data["status"]
        event.whatsapp_channel = data["channelId"]
        event.whatsapp_status = data["status"]
    event.data_json = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return event


def _set_channel(data: dict[str, Any], channel: int) -> None:
    """Every place of the data that names the channel (object, user identity) names this one."""
    for carrier in (data, data.get("Identity"), data.get("User", {}).get("Identity")):
        if isinstance(carrier, dict) and "StreamProviderType" in carrier:
            carrier["StreamProviderType"] = channel


def _set_last_activity(data: dict[str, Any], event: messages_pb2.PlatformEvent) -> None:
    """The data's newest activity is the event's: its type, and its status when it changes one."""
    activities = data.get("Activities")
    if not activities:
        return
    last = activities[-1]
    last["Type"] = event.activity_type
    if event.HasField("status_change"):
        last["Data"] = {"statusId": event.status_change.to_status}
        data["StatusID"] = event.status_change.to_status
    else:
        last["Data"] = {}
