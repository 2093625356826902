"""The SUBSCRIPTIONS stream's messages: aggregate states with their secrets still sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_subscriptions.convert import authentication_message, trigger_message, webhook_message
from webhooks_subscriptions.domain.certificate import ClientCertificate
from webhooks_subscriptions.domain.subscription import Subscription


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def subscription_state(subscription: Subscription) -> messages_pb2.SubscriptionState:
    # The authentication keeps its sealed secrets: the sender opens them with the shared key.
    return messages_pb2.SubscriptionState(
        id=str(subscription.id),
        tenant=subscription.tenant,
        name=subscription.name,
        entity=subscription.entity,
        triggers=[trigger_message(t) for t in subscription.triggers],
        include_complete_data=subscription.include_complete_data,
        webhook=webhook_message(subscription.webhook),
        authentication=authentication_message(subscription.authentication, reveal=True),
        retry_policy=common_pb2.RetryPolicy(
            retries=subscription.retry_policy["retries"],
            interval_seconds=subscription.retry_policy["interval_seconds"],
        ),
        active=subscription.active,
        deleted=subscription.deleted,
        created_at=_timestamp(subscription.created_on),
        updated_at=_timestamp(subscription.modified_on),
        version=subscription.version,
        signing_secret=subscription.signing_secret,
        previous_signing_secret=subscription.previous_signing_secret,
        previous_valid_until=_timestamp(subscription.previous_valid_until),
    )


def certificate_state(certificate: ClientCertificate) -> messages_pb2.CertificateState:
    return messages_pb2.CertificateState(
        id=str(certificate.id),
        tenant=certificate.tenant,
        name=certificate.name,
        certificate_pem=certificate.certificate_pem,
        private_key=certificate.private_key,
        not_after=_timestamp(certificate.not_after),
        deleted=certificate.deleted,
        version=certificate.version,
    )


def domain_event_message(
    notification_id: int, event: Any, state: Any
) -> messages_pb2.SubscriptionDomainEvent | None:
    message = messages_pb2.SubscriptionDomainEvent(
        notification_id=notification_id,
        event_type=f"{type(state).__name__}.{type(event).__name__}",
        occurred_at=_timestamp(event.timestamp),
    )
    if isinstance(state, Subscription):
        message.subscription.CopyFrom(subscription_state(state))
    elif isinstance(state, ClientCertificate):
        message.certificate.CopyFrom(certificate_state(state))
    else:
        return None
    return message
