"""Bounds on everything a tenant or a publisher sends: the one place each number is written.

Every string, list and map a request carries has a bound here, with why it is that number.
The services enforce them (INVALID_ARGUMENT naming the field and the bound) and the .proto
comments repeat them for callers. Lengths of strings are in characters unless the name says
BYTES. Plain constants: no I/O, importable from anywhere.
"""

from __future__ import annotations

from webhooks_catalogue.data import (
    ACTIVITY_TYPES,
    CHANNELS,
    OBJECT_STATUSES,
    WHATSAPP_STATUSES,
)

# ---- Whole messages

# The relay publishes a subscription's whole state (plus the event's few fields) as one NATS
# message, and NATS refuses anything over max_payload (1 MiB by default). A quarter of that
# leaves room for sealed secrets, headers and a server configured below the default, and is
# still far above a real subscription (a few KiB).
SUBSCRIPTION_STATE_BYTES = 256 * 1024

# ---- Subscriptions: names and catalogue words

# A name is read in a list and a heading; 200 is a long sentence.
NAME_LENGTH = 200
# Entity and trigger names are catalogue words ("OnMessageStatus"); 64 is ample and keeps an
# unknown one short enough to quote back in the error.
CATALOGUE_NAME_LENGTH = 64
# Copies of one trigger must cover disjoint values (OnNewActivity split by activity type
# needs at most 23); the console offers 10. WhatsApp copies split by channel are bounded
# together by SUBSCRIPTION_STATE_BYTES.
TRIGGERS = 50

# ---- Trigger components: each list holds distinct catalogue values, so its bound is the
# size of the enumeration it draws from (a longer list can only repeat values).

CHANNELS_PER_TRIGGER = len(CHANNELS)
ACTIVITY_TYPES_PER_TRIGGER = len(ACTIVITY_TYPES)
# Every distinct (from, to) pair: from "any" or a status, to another status.
STATUS_CHANGES_PER_TRIGGER = (len(OBJECT_STATUSES) + 1) * len(OBJECT_STATUSES) - len(
    OBJECT_STATUSES
)
WHATSAPP_STATUSES_PER_TRIGGER = len(WHATSAPP_STATUSES)
# A WhatsApp status word is one of four short words; longer input is not quoted back.
WHATSAPP_STATUS_LENGTH = 16
# WhatsApp channel ids are free-form (the tenant's numbers or account ids), so no enumeration
# bounds them: an organisation runs a handful of WhatsApp channels, 100 is generous.
WHATSAPP_CHANNELS_PER_TRIGGER = 100
# Channel ids as the platform sends them (phone-number ids, "waba:..." account ids).
WHATSAPP_CHANNEL_ID_LENGTH = 128

# ---- Webhook

# Browsers and most servers stop at 2,048 characters of URL; a receiver's URL is far shorter.
URL_LENGTH = 2048
# SOAPAction travels in an HTTP header; usually a URI.
SOAP_ACTION_LENGTH = 2048
# XML names (operation, parameter names): real ones are identifiers of a few dozen characters.
XML_NAME_LENGTH = 256
# Extra SOAP body elements: a handful in practice (a system id, a tenant key).
SOAP_PARAMETERS = 50
SOAP_PARAMETER_VALUE_LENGTH = 4096
# An inline WSDL travels in every state of the subscription (SUBSCRIPTION_STATE_BYTES); a
# larger one is given by wsdl_url, which the sender fetches itself.
WSDL_DOCUMENT_BYTES = 128 * 1024
# Deliveries per second a subscription's webhook takes (0: no limit). Every sender replica
# spaces its deliveries through one shared slot per webhook (a KV round trip each), so a
# limit beyond 10,000/s would be set by that round trip, not by the number written here.
RATE_LIMIT_PER_SECOND = 10_000

# ---- Authentication (each secret is sealed at rest, which grows it by about a third)

USERNAME_LENGTH = 256  # RFC 7617 user-ids are short; LDAP DNs stay well under 256
PASSWORD_LENGTH = 1024
HEADER_PREFIX_LENGTH = 32  # an auth scheme word such as "Bearer"
ACCESS_TOKEN_LENGTH = (
    8192  # JWTs with many claims reach a few KiB; HTTP servers cap headers at 8 KiB
)
OAUTH_SCOPE_LENGTH = 1024  # space-separated scope names
OAUTH_CLIENT_ID_LENGTH = 512
OAUTH_CLIENT_SECRET_LENGTH = 2048

# ---- Client certificates

# A PEM certificate or private key: an RSA-8192 key is about 6.5 KiB; 64 KiB also admits a
# certificate with long extensions. Both travel in one CertificateState message.
PEM_BYTES = 64 * 1024

# ---- Requests in general

# Ids are UUIDs (36 characters); anything longer is refused before it is parsed or quoted.
ID_LENGTH = 64
# ListSubscriptions name_contains searches names, so it needs no more than a name.
NAME_CONTAINS_LENGTH = NAME_LENGTH
# Page tokens are opaque strings the service made; its own are far shorter.
PAGE_TOKEN_LENGTH = 1024
SUBSCRIPTIONS_PAGE_SIZE = 1000
# google.protobuf.Timestamp's documented range, 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59Z: beyond it ToDatetime raises, and an SQLite integer overflows.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799

# ---- Platform events (PublishEvents, and events published straight onto NATS)
# The number of events per PublishEvents call is a setting (WEBHOOKS_ROUTER_MAX_BATCH), sized
# by the operator to the gRPC message limit (WEBHOOKS_GRPC_MAX_MESSAGE_BYTES).

# The publisher's own id becomes the Nats-Msg-Id and part of every job id; UUIDs and
# "<system>:<id>" forms are far shorter.
EVENT_ID_LENGTH = 128
# A name within a channel (a mailbox, a queue), shown in the failures view.
SUBCHANNEL_LENGTH = 256
# The event's data (a JSON object). Each delivery job carries it shaped, once: at a quarter
# of NATS max_payload a job still fits one message with its headers and trace context.
EVENT_DATA_BYTES = 256 * 1024
# Objects and arrays inside the data. Real payloads are a few levels deep; a deeper one
# would cost every hop that walks it (shaping, the SOAP envelope builder recurses per
# level and ran out of stack at ~500) and does nothing for the receiver.
EVENT_DATA_DEPTH = 64

# ---- Failed events (FailuresService filters and pages; SendTestEvent shares the above)

# A filter may name every subscription a console page shows at once, and then some.
FILTER_SUBSCRIPTION_IDS = 1000
# Error codes are HTTP statuses and the few failure classes: a few dozen in all.
FILTER_ERROR_CODES = 50
# One error code: "503" or a failure class such as "blocked_destination".
ERROR_CODE_LENGTH = 32
# The view has four states; a longer list can only repeat them (room for a few new ones).
FILTER_STATES = 16
# Free-text filters (subchannel, message contains) are a search phrase, not a document.
FILTER_TEXT_LENGTH = 200
# min_retry_attempts: a series has at most 5 retries, but each manual redelivery starts
# another, so the count has no natural end; a million is beyond any real history.
FILTER_RETRY_ATTEMPTS = 1_000_000
# Rows of one ListFailedEvents page (0 asks for the default, 50).
FAILED_EVENTS_PAGE_SIZE = 500
