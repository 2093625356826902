"""Between the API's messages and the application's plain data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1 import common_pb2, subscriptions_pb2
from webhooks_catalogue.authentication import AUTH_FIELDS, SECRET_FIELDS
from webhooks_subscriptions.domain import rules

WEBHOOK_TYPES = {common_pb2.WEBHOOK_TYPE_REST: "REST", common_pb2.WEBHOOK_TYPE_SOAP: "SOAP"}
SOAP_VERSIONS = {common_pb2.SOAP_VERSION_1_1: "1.1", common_pb2.SOAP_VERSION_1_2: "1.2"}
ORDERS = {
    subscriptions_pb2.SUBSCRIPTION_ORDER_UNSPECIFIED: "created_desc",
    subscriptions_pb2.SUBSCRIPTION_ORDER_CREATED_DESC: "created_desc",
    subscriptions_pb2.SUBSCRIPTION_ORDER_CREATED_ASC: "created_asc",
    subscriptions_pb2.SUBSCRIPTION_ORDER_NAME_ASC: "name_asc",
    subscriptions_pb2.SUBSCRIPTION_ORDER_UPDATED_DESC: "updated_desc",
}


# Requests -> plain data


def trigger_data(trigger: common_pb2.TriggerSpec) -> dict[str, Any]:
    return {
        "trigger": trigger.trigger,
        "channels": list(trigger.channels),
        "activity_types": list(trigger.activity_types),
        "status_changes": [
            {"from": change.from_status, "to": change.to_status}
            for change in trigger.status_changes
        ],
        "whatsapp_channels": list(trigger.whatsapp_channels),
        "whatsapp_statuses": list(trigger.whatsapp_statuses),
    }


def webhook_data(webhook: common_pb2.Webhook) -> dict[str, Any]:
    data: dict[str, Any] = {
        # An unknown enum value stays visible as its number, so the rules name it.
        "type": WEBHOOK_TYPES.get(webhook.type, "" if webhook.type == 0 else str(webhook.type)),
        "url": webhook.url,
        "client_certificate_id": webhook.client_certificate_id,
        "soap": None,
        "rate_limit_per_second": webhook.rate_limit_per_second,
    }
    if webhook.HasField("soap"):
        soap = webhook.soap
        data["soap"] = {
            "operation": soap.operation,
            "namespace": soap.namespace,
            "soap_action": soap.soap_action,
            "version": SOAP_VERSIONS.get(
                soap.version, "" if soap.version == 0 else str(soap.version)
            ),
            "parameters": [{"name": p.name, "value": p.value} for p in soap.parameters],
            "wsdl_url": soap.wsdl_url,
            "wsdl_document": soap.wsdl_document,
        }
    return data


def authentication_data(auth: common_pb2.Authentication) -> dict[str, Any]:
    kind = auth.WhichOneof("kind")
    if kind is None or kind == "none":
        return {"kind": "none"}
    chosen = getattr(auth, kind)
    return {"kind": kind, **{key: getattr(chosen, key) for key in AUTH_FIELDS[kind]}}


def spec_data(spec: subscriptions_pb2.SubscriptionSpec) -> dict[str, Any]:
    retry = spec.retry_policy
    return {
        "name": spec.name,
        "entity": spec.entity,
        "triggers": [trigger_data(t) for t in spec.triggers],
        "include_complete_data": spec.include_complete_data,
        "webhook": webhook_data(spec.webhook) if spec.HasField("webhook") else {},
        "authentication": authentication_data(spec.authentication)
        if spec.HasField("authentication")
        else None,
        "retry_policy": {
            "retries": retry.retries if retry.HasField("retries") else None,
            "interval_seconds": retry.interval_seconds
            if retry.HasField("interval_seconds")
            else None,
        },
    }


# Plain data -> messages


def timestamp(value: str | datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(value) if isinstance(value, str) else value)
    return stamp


def trigger_message(trigger: dict[str, Any]) -> common_pb2.TriggerSpec:
    return common_pb2.TriggerSpec(
        trigger=trigger["trigger"],
        channels=trigger.get("channels", []),
        activity_types=trigger.get("activity_types", []),
        status_changes=[
            common_pb2.StatusChange(from_status=c["from"], to_status=c["to"])
            for c in trigger.get("status_changes", [])
        ],
        whatsapp_channels=trigger.get("whatsapp_channels", []),
        whatsapp_statuses=trigger.get("whatsapp_statuses", []),
    )


def webhook_message(webhook: dict[str, Any]) -> common_pb2.Webhook:
    method, fmt, content_type = rules.webhook_presentation(webhook)
    message = common_pb2.Webhook(
        type=common_pb2.WEBHOOK_TYPE_SOAP
        if webhook["type"] == "SOAP"
        else common_pb2.WEBHOOK_TYPE_REST,
        url=webhook["url"],
        client_certificate_id=webhook.get("client_certificate_id") or "",
        method=method,
        format=fmt,
        content_type=content_type,
        rate_limit_per_second=webhook.get("rate_limit_per_second", 0),
    )
    soap = webhook.get("soap")
    if soap:
        message.soap.CopyFrom(
            common_pb2.SoapSettings(
                operation=soap.get("operation", ""),
                namespace=soap.get("namespace", ""),
                soap_action=soap.get("soap_action", ""),
                version=common_pb2.SOAP_VERSION_1_2
                if soap.get("version") == "1.2"
                else common_pb2.SOAP_VERSION_1_1,
                parameters=[
                    common_pb2.SoapParameter(name=p["name"], value=p["value"])
                    for p in soap.get("parameters", [])
                ],
                wsdl_url=soap.get("wsdl_url", ""),
                wsdl_document=soap.get("wsdl_document", ""),
            )
        )
    return message


def authentication_message(auth: dict[str, Any], *, reveal: bool) -> common_pb2.Authentication:
    """``reveal`` copies the stored (sealed) secrets, for the stream; otherwise only flags."""
    kind = auth.get("kind", "none")
    message = common_pb2.Authentication()
    if kind == "none":
        message.none.SetInParent()
        return message
    chosen = getattr(message, kind)
    for key in AUTH_FIELDS[kind]:
        if key in SECRET_FIELDS:
            is_set = bool(auth.get(key)) or bool(auth.get(f"{key}_set"))
            setattr(chosen, f"{key}_set", is_set)
            if reveal:
                setattr(chosen, key, auth.get(key, ""))
        else:
            setattr(chosen, key, auth.get(key, ""))
    return message


def subscription_message(
    view: dict[str, Any], health: common_pb2.Health | None = None
) -> subscriptions_pb2.Subscription:
    """``health`` is not part of the view: it is the platform's live verdict, not stored."""
    secret = view["signing_secret"]
    return subscriptions_pb2.Subscription(
        id=view["id"],
        tenant=view["tenant"],
        name=view["name"],
        entity=view["entity"],
        triggers=[trigger_message(t) for t in view["triggers"]],
        include_complete_data=view["include_complete_data"],
        webhook=webhook_message(view["webhook"]),
        authentication=authentication_message(view["authentication"], reveal=False),
        retry_policy=common_pb2.RetryPolicy(
            retries=view["retry_policy"]["retries"],
            interval_seconds=view["retry_policy"]["interval_seconds"],
        ),
        active=view["active"],
        created_at=timestamp(view["created_at"]),
        updated_at=timestamp(view["updated_at"]),
        version=view["version"],
        signing_secret=subscriptions_pb2.SigningSecretInfo(
            set=secret["set"],
            rotated_at=timestamp(secret["rotated_at"]),
            previous_valid_until=timestamp(secret["previous_valid_until"]),
        ),
        health=health,
    )


def certificate_message(view: dict[str, Any]) -> subscriptions_pb2.Certificate:
    return subscriptions_pb2.Certificate(
        id=view["id"],
        tenant=view["tenant"],
        name=view["name"],
        subject=view["subject"],
        issuer=view["issuer"],
        not_before=timestamp(view["not_before"]),
        not_after=timestamp(view["not_after"]),
        fingerprint_sha256=view["fingerprint_sha256"],
        created_at=timestamp(view["created_at"]),
    )


HIDDEN_EVENT_FIELDS = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "actor",
    "trace",
}
MASK = "***"


def _masked(value: Any, key: str = "") -> Any:
    if key in SECRET_FIELDS or key in ("signing_secret", "previous_signing_secret"):
        return MASK if value else ""
    if isinstance(value, dict):
        return {k: _masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def history_entry(event: Any) -> subscriptions_pb2.SubscriptionHistoryEntry:
    changes = {
        key: _masked(value, key)
        for key, value in vars(event).items()
        if key not in HIDDEN_EVENT_FIELDS
    }
    struct = Struct()
    ParseDict(changes, struct)
    return subscriptions_pb2.SubscriptionHistoryEntry(
        version=event.originator_version,
        event_type=type(event).__name__,
        occurred_at=timestamp(event.timestamp),
        actor=getattr(event, "actor", ""),
        changes=struct,
    )
