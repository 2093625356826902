"""The event catalogue as data: entities, their triggers and components, the enumerations.

This is the only place in the repository the catalogue is written down (transcribed from
the product's event catalogue); validation, the router, the CLI and any UI read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from webhooks_catalogue.keys import catalogue_key


class Component(StrEnum):
    """A filter a trigger may carry; the value is the key in trigger dicts and protos."""

    CHANNELS = "channels"
    ACTIVITY_TYPES = "activity_types"
    STATUS_CHANGES = "status_changes"
    WHATSAPP_CHANNELS = "whatsapp_channels"
    WHATSAPP_STATUSES = "whatsapp_statuses"


COMPONENTS: tuple[Component, ...] = tuple(Component)

# The activity type whose activities carry a status change ("from → to").
ACTIVITY_STATUS_CHANGE = 2
# A status change "from" of 0 matches a change from any status.
ANY_STATUS = 0


@dataclass(frozen=True)
class Trigger:
    name: str
    fires_when: str
    components: tuple[Component, ...] = ()
    # Two triggers of the same name in one subscription must not overlap on this
    # component (user guide: chosen values are "greyed out" for further triggers).
    # None: the trigger has nothing to tell copies apart, so it may appear once.
    distinct_by: Component | None = None
    # Payload field the trigger adds to the entity's summary (the triggering child,
    # activity or tag), if any.
    summary_adds: str | None = None


@dataclass(frozen=True)
class Entity:
    name: str
    description: str
    triggers: tuple[Trigger, ...]
    # Fields sent when "Include Complete Data" is off.
    summary_fields: tuple[str, ...]

    def trigger(self, name: str) -> Trigger | None:
        """The trigger of this entity called ``name`` (its id or display name, in any case:
        ``On Message Status`` is ``OnMessageStatus``), or None."""
        wanted = catalogue_key(name)
        return next((t for t in self.triggers if catalogue_key(t.name) == wanted), None)


_C = Component


# The platform's own events about an organisation's webhooks (issue 15): raised by the
# sender and the subscriptions service, never by a publisher (the router refuses them in
# PublishEvents and NATS denies the publisher user their subjects).
WEBHOOK_ENTITY = "Webhook"
ON_FAILING = "OnFailing"
ON_CIRCUIT_OPENED = "OnCircuitOpened"
ON_DISABLED = "OnDisabled"
ON_RECOVERED = "OnRecovered"
ON_RETRIES_EXHAUSTED = "OnRetriesExhausted"
ON_CERTIFICATE_EXPIRING = "OnCertificateExpiring"
# The key of a Webhook event's data naming the webhook it is about: the router never
# delivers the event to that webhook (no loop of a webhook announcing itself).
WEBHOOK_ABOUT_FIELD = "SubscriptionId"


def _on_channels(name: str, fires_when: str, summary_adds: str | None = None) -> Trigger:
    """A trigger filtered by channels only; copies must cover disjoint channels."""
    return Trigger(name, fires_when, (_C.CHANNELS,), _C.CHANNELS, summary_adds)


ENTITIES: tuple[Entity, ...] = (
    Entity(
        "Object",
        "A conversation (object) and what happens on it: messages, activities, tags.",
        (
            _on_channels("OnNew", "a conversation (object) is created"),
            _on_channels("OnNewChild", "a message is added to a conversation", "Children"),
            Trigger(
                "OnNewActivity",
                "an activity is logged on a conversation",
                (_C.ACTIVITY_TYPES, _C.CHANNELS, _C.STATUS_CHANGES),
                distinct_by=_C.ACTIVITY_TYPES,
                summary_adds="Activities",
            ),
            _on_channels("OnUpdateTag", "a tag is added to / removed from a conversation", "Tags"),
        ),
        ("Id", "StreamId", "SubStreamId", "Type", "StatusID", "CreateDate"),
    ),
    Entity(
        "User",
        "A customer (user) and their details and tags.",
        (
            _on_channels("OnNew", "a customer (user) is created"),
            _on_channels("OnUpdate", "a customer's details change"),
            Trigger("OnUpdateTag", "a tag is added to / removed from a customer"),
        ),
        ("Id", "UniqueID", "Email", "Phone1", "FirstName", "LastName"),
    ),
    Entity(
        "Satisfaction",
        "Satisfaction surveys customers submit.",
        (Trigger("OnSubmit", "a satisfaction survey is submitted"),),
        ("ObjectId", "Score", "Description"),
    ),
    Entity(
        "Tag",
        "Tag definitions in the organisation's tag settings.",
        (
            Trigger("OnAdd", "a tag is created in the organisation's tag settings"),
            Trigger("OnUpdate", "a tag definition is changed"),
        ),
        ("tagId", "groupId", "name", "type"),
    ),
    Entity(
        "Form",
        "Forms customers submit.",
        (Trigger("OnSubmit", "a customer submits a form"),),
        ("ObjectId", "FormUrl"),
    ),
    Entity(
        "Chat",
        "Web chat sessions.",
        (Trigger("OnUserExit", "the customer closes the chat or disconnects"),),
        ("User", "Object"),
    ),
    Entity(
        "WhatsApp",
        "Status of WhatsApp messages sent through a channel, including via the API.",
        (
            Trigger(
                "OnMessageStatus",
                "a WhatsApp message sent through a channel changes status",
                (_C.WHATSAPP_CHANNELS, _C.WHATSAPP_STATUSES),
                distinct_by=_C.WHATSAPP_CHANNELS,
            ),
        ),
        ("messageId", "channelId", "status", "statusTime", "error"),
    ),
    Entity(
        WEBHOOK_ENTITY,
        "The organisation's own webhooks: their health, as the platform sees it.",
        (
            Trigger(
                ON_FAILING,
                "a webhook's attempts have failed several times in a row (once a streak)",
            ),
            Trigger(
                ON_CIRCUIT_OPENED,
                "a webhook's circuit breaker opens: its deliveries wait (once a streak)",
            ),
            Trigger(
                ON_DISABLED,
                "the platform disables a webhook (it answered 410 Gone, or failed for days)",
            ),
            Trigger(
                ON_RECOVERED, "a webhook announced failing or with its circuit open delivers again"
            ),
            Trigger(
                ON_RETRIES_EXHAUSTED,
                "a delivery to a webhook failed its last attempt (at most hourly)",
            ),
            Trigger(
                ON_CERTIFICATE_EXPIRING,
                "a webhook's client certificate expires within the warning period (30 days)",
            ),
        ),
        ("SubscriptionId", "SubscriptionName", "State", "Reason"),
    ),
)


def _values(*names: tuple[int, str]) -> Mapping[int, str]:
    return MappingProxyType(dict(names))


CHANNELS: Mapping[int, str] = _values(
    *enumerate(
        (
            "Commbox", "Facebook", "Twitter", "YouTube", "Mail", "Telephone", "Anonymous",
            "WhatsApp", "Web", "AppleAppStore", "Instagram", "Google", "Telegram",
            "GoogleMyBusiness", "Microsoft365", "Gmail", "WhatsAppCloud", "Salesforce",
        )
    )
)  # fmt: skip

ACTIVITY_TYPES: Mapping[int, str] = _values(
    *enumerate(
        (
            "Remark", "StatusChange", "Forward", "ForwardReply", "StreamChange",
            "AssignChange", "UpdateObjectTag", "FollowUp", "UpdateObjectIntent",
            "Attachment", "RuleExecuted", "Custom", "UpdateObjectPublicity", "Debug",
            "InvalidExtensionFile", "InvalidFileSize", "DisallowedFileUpload",
            "InactivityLogout", "ParticipantChange", "TargetStreamChange",
            "ConversationSummary", "LogError", "RedactChild",
        ),
        start=1,
    )
)  # fmt: skip

# 12 is not a status the platform uses; the gap is deliberate.
OBJECT_STATUSES: Mapping[int, str] = _values(
    (1, "Open"), (2, "Resolved"), (3, "Forward"), (4, "Irrelevant"), (5, "Deleted"),
    (6, "ForwardReply"), (7, "Draft"), (8, "InProcess"), (9, "Scheduled"),
    (10, "FollowUp"), (11, "Automated"), (13, "Sent"), (14, "Archive"), (15, "Pending"),
)  # fmt: skip

TAG_TYPES: Mapping[int, str] = _values(
    (1, "Tag"), (2, "Goal"), (3, "Miss"), (4, "SupportTag"), (5, "TopicsTag"),
    (100, "Intents"), (101, "CustomerSatisfaction"), (102, "SLA"),
    (103, "CustomerSatisfactionOpenAnswer"),
)  # fmt: skip

WHATSAPP_STATUSES: tuple[str, ...] = ("sent", "delivered", "read", "failed")
