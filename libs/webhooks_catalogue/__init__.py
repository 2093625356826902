"""The event catalogue: what a subscription can listen to, and the rules for its triggers.

One data module (``data``) that validation, the router, the CLI and any UI all read, with
lookups (``lookup``) and trigger validation (``validation``, ``overlaps``). Pure: no I/O
and no protobuf; ``webhooks_catalogue.proto`` builds the GetCatalogue message. The payloads
are catalogue matters too: ``shaping`` builds the delivered envelope (router, sender's test
events) and ``samples`` a realistic event of every trigger (CLI, tests, test events).
"""

from webhooks_catalogue.data import (
    ACTIVITY_STATUS_CHANGE,
    ACTIVITY_TYPES,
    ANY_STATUS,
    CHANNELS,
    COMPONENTS,
    ENTITIES,
    OBJECT_STATUSES,
    ON_CERTIFICATE_EXPIRING,
    ON_CIRCUIT_OPENED,
    ON_DISABLED,
    ON_FAILING,
    ON_RECOVERED,
    ON_RETRIES_EXHAUSTED,
    TAG_TYPES,
    WEBHOOK_ABOUT_FIELD,
    WEBHOOK_ENTITY,
    WHATSAPP_STATUSES,
    Component,
    Entity,
    Trigger,
)
from webhooks_catalogue.errors import CatalogueError, CatalogueErrors
from webhooks_catalogue.lookup import (
    activity_type_name,
    channel_name,
    entity,
    entity_names,
    object_status_name,
    parse_activity_type,
    parse_channel,
    parse_object_status,
    parse_status_change,
    parse_tag_type,
    parse_whatsapp_status,
    tag_type_name,
    trigger,
)
from webhooks_catalogue.validation import (
    MAX_TRIGGERS,
    WHATSAPP_CHANNEL_ID,
    validate_rate_limit,
    validate_triggers,
)

__all__ = [
    "ACTIVITY_STATUS_CHANGE",
    "ACTIVITY_TYPES",
    "ANY_STATUS",
    "CHANNELS",
    "COMPONENTS",
    "ENTITIES",
    "MAX_TRIGGERS",
    "OBJECT_STATUSES",
    "ON_CERTIFICATE_EXPIRING",
    "ON_CIRCUIT_OPENED",
    "ON_DISABLED",
    "ON_FAILING",
    "ON_RECOVERED",
    "ON_RETRIES_EXHAUSTED",
    "TAG_TYPES",
    "WEBHOOK_ABOUT_FIELD",
    "WEBHOOK_ENTITY",
    "WHATSAPP_CHANNEL_ID",
    "WHATSAPP_STATUSES",
    "CatalogueError",
    "CatalogueErrors",
    "Component",
    "Entity",
    "Trigger",
    "activity_type_name",
    "channel_name",
    "entity",
    "entity_names",
    "object_status_name",
    "parse_activity_type",
    "parse_channel",
    "parse_object_status",
    "parse_status_change",
    "parse_tag_type",
    "parse_whatsapp_status",
    "tag_type_name",
    "trigger",
    "validate_rate_limit",
    "validate_triggers",
]
