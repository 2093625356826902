"""Who may do what on NATS: the platform's users and their permissions, as data.

One NATS user per service, each allowed exactly the subjects and JetStream API calls that
service makes, a *publisher* for platform services that write events straight onto
EVENTS, and an *admin* for operators and test harnesses. ``webhooks_messaging.auth``
renders this table into a nats-server configuration; nothing else spells a permission.

The JetStream API is plain request/reply on ``$JS.API.<operation>.<stream>...``, so a
permission on a subject is a permission on an operation: a service may declare its
streams (INFO, CREATE, UPDATE at every start-up, see streams.declare_streams), create and
pull from its own consumers, and acknowledge on its own streams, but never delete or
purge a stream. Replies come to the service's own inbox prefix (``_INBOX_<user>``), so no
service can read another's replies (a JetStream message delivered to a push consumer is a
reply like any other).
"""

from __future__ import annotations

from dataclasses import dataclass

from webhooks_messaging.deadletters import (
    FAILURES_PROJECTOR,
    RELAY,
    ROUTER,
    ROUTER_TABLE,
    SENDER,
    SENDER_DIRECTORY,
)
from webhooks_messaging.streams import (
    ATTEMPT_SUBJECTS,
    ATTEMPTS,
    BULK_EVENT_SUBJECTS,
    DEADLETTERS,
    DELIVERIES,
    DELIVERY_BULK_SUBJECTS,
    DELIVERY_JOBS_SUBJECTS,
    DELIVERY_RETRY_SUBJECTS,
    EVENT_SUBJECTS,
    EVENTS,
    STREAMS,
    SUBSCRIPTIONS,
)

API = "$JS.API"
# The durable pull consumers of the routers (on EVENTS) and the senders (on DELIVERIES),
# one per lane; the services' consumer modules name them the same (a test checks they agree).
ROUTER_DURABLE = "router"
ROUTER_BULK_DURABLE = "router-bulk"
SENDER_DURABLE = "sender"
SENDER_BULK_DURABLE = "sender-bulk"

SUBSCRIPTIONS_USER = "subscriptions"
ROUTER_USER = "router"
SENDER_USER = "sender"
FAILURES_USER = "failures"
PUBLISHER_USER = "publisher"
ADMIN_USER = "admin"
SERVICE_USERS = (SUBSCRIPTIONS_USER, ROUTER_USER, SENDER_USER, FAILURES_USER)
USERS = (*SERVICE_USERS, PUBLISHER_USER, ADMIN_USER)

# The KV buckets of endpoint health (issue 15), as webhooks_health names them (a test checks
# they agree; this module cannot import that package, which builds on this one). Each is the
# stream KV_<bucket> holding the keys $KV.<bucket>.<key>.
HEALTH_BUCKETS = ("WEBHOOK_HEALTH", "WEBHOOK_NOTICES", "WEBHOOK_RATE_SLOTS")
# The platform's operator events (the catalogue's Webhook entity), standard lane: raised by
# the sender and the subscriptions service only, never by a publisher.
WEBHOOK_EVENT_SUBJECTS = "events.*.Webhook.>"

# The default inbox of NATS clients: the publisher's acknowledgements (and an operator's
# tools) come there. Services use an inbox of their own (inbox_prefix).
DEFAULT_INBOX = "_INBOX"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Carved out of ``publish`` (the server checks deny after allow).
    publish_deny: tuple[str, ...] = ()


def inbox_prefix(user: str) -> str:
    """The inbox a service's connection uses: replies only it may receive."""
    return f"{DEFAULT_INBOX}_{user}"


def user_of_connection(name: str) -> str:
    """The user a connection named ``name`` belongs to: connection names begin with their
    service's name (``router``, ``subscriptions-relay``)."""
    return name.partition("-")[0]


def _declare() -> list[str]:
    # Every service declares every stream at start-up (whichever starts first creates them).
    return [f"{API}.STREAM.{op}.{s}" for s in STREAMS for op in ("INFO", "CREATE", "UPDATE")]


def _pull(stream: str, consumer: str) -> list[str]:
    """A pull consumer: create (both request forms of nats-py), look up, fetch, acknowledge.
    ``consumer`` ``*`` stands for the ephemeral consumers of one-off reads."""
    created = (
        [f"{API}.CONSUMER.CREATE.{stream}", f"{API}.CONSUMER.CREATE.{stream}.>"]
        if consumer == "*"
        else [
            f"{API}.CONSUMER.CREATE.{stream}.{consumer}",
            f"{API}.CONSUMER.CREATE.{stream}.{consumer}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
        ]
    )
    return [
        *created,
        f"{API}.CONSUMER.INFO.{stream}.{consumer}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"{API}.CONSUMER.DELETE.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


def _follow(stream: str) -> list[str]:
    """An ordered push consumer (nats-py ``ordered_consumer``): ephemeral consumers made
    and remade at will, flow control answered, and the stream's end looked up."""
    return [
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"{API}.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",
        f"{API}.STREAM.INFO.{stream}",
    ]


def _read(stream: str) -> list[str]:
    """Single messages by sequence or subject (``js.get_msg``, direct gets)."""
    return [
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
    ]


def _watch(stream: str) -> list[str]:
    """The backlog of a stream (webhooks_messaging.backlog): its consumers listed, and the
    oldest unacknowledged message of each read for its stored time (the read sees the
    message's content too: JetStream has no timestamp-only request)."""
    return [f"{API}.CONSUMER.LIST.{stream}", f"{API}.STREAM.MSG.GET.{stream}"]


def _key_value(bucket: str) -> list[str]:
    """A KV bucket as nats-py uses it: the stream declared or looked up (create_key_value,
    key_value), keys read (a direct get, or a stream message get when the stream has no
    direct gets), written, compared-and-set and deleted (publishes on ``$KV.<bucket>.<key>``
    with headers), and watched (an ordered push consumer whose info the watch asks once)."""
    stream = f"KV_{bucket}"
    return [
        *(f"{API}.STREAM.{op}.{stream}" for op in ("INFO", "CREATE", "UPDATE")),
        f"$KV.{bucket}.>",
        *_read(stream),
        *_follow(stream),
        f"{API}.CONSUMER.INFO.{stream}.>",
    ]


def _health() -> list[str]:
    """Endpoint health: the three buckets, and its operator events onto EVENTS."""
    return [WEBHOOK_EVENT_SUBJECTS, *(s for bucket in HEALTH_BUCKETS for s in _key_value(bucket))]


def _set_aside(*components: str) -> list[str]:
    """Letters on DEADLETTERS (``deadletters.<component>.<reason>.<origin>``), each service
    under its own components only: none can pass for another or bury another's letters
    (the stream keeps one letter per subject)."""
    return [f"deadletters.{component}.>" for component in components]


def _service(user: str, *publish: str) -> Permissions:
    allowed = [*publish, *_declare()]
    return Permissions(
        publish=tuple(dict.fromkeys(allowed)), subscribe=(f"{inbox_prefix(user)}.>",)
    )


def permission_table() -> dict[str, Permissions]:
    """Every user and what it may publish and subscribe to."""
    return {
        # Its outbox relay: subscription and certificate changes, and the last one stored.
        # Endpoint health: disables a webhook the senders found dead, re-enabling clears its
        # record, and it raises OnCertificateExpiring.
        SUBSCRIPTIONS_USER: _service(
            SUBSCRIPTIONS_USER,
            "subscriptions.>",
            *_read(SUBSCRIPTIONS),
            *_set_aside(RELAY),
            *_health(),
        ),
        # Ingest onto EVENTS (either lane), route (the shared durable of each lane), replay
        # (one-off consumers and the oldest event kept), jobs onto DELIVERIES (either lane),
        # the routing table from SUBSCRIPTIONS.
        ROUTER_USER: _service(
            ROUTER_USER,
            EVENT_SUBJECTS,
            BULK_EVENT_SUBJECTS,
            DELIVERY_JOBS_SUBJECTS,
            DELIVERY_BULK_SUBJECTS,
            *_pull(EVENTS, ROUTER_DURABLE),
            *_pull(EVENTS, ROUTER_BULK_DURABLE),
            *_pull(EVENTS, "*"),
            *_read(EVENTS),
            *_follow(SUBSCRIPTIONS),
            *_set_aside(ROUTER, ROUTER_TABLE),
        ),
        # Take jobs (the shared durable of each lane), record attempts (a first attempt that
        # succeeded on attempts.<tenant>.<subscription>.ok), schedule retries (a
        # schedule on deliveries.retry.> that puts the job back on its lane's subject), the
        # directory of subscriptions and certificates from SUBSCRIPTIONS.
        SENDER_USER: _service(
            SENDER_USER,
            ATTEMPT_SUBJECTS,
            DELIVERY_RETRY_SUBJECTS,
            DELIVERY_JOBS_SUBJECTS,
            DELIVERY_BULK_SUBJECTS,
            *_pull(DELIVERIES, SENDER_DURABLE),
            *_pull(DELIVERIES, SENDER_BULK_DURABLE),
            *_follow(SUBSCRIPTIONS),
            *_set_aside(SENDER, SENDER_DIRECTORY),
            # Endpoint health: each attempt's verdict, shared rate slots, operator events.
            *_health(),
        ),
        FAILURES_USER: _failures(),
        **_outside_users(),
    }


def _failures() -> Permissions:
    """The failed-events view from ATTEMPTS (the end of the subjects it reads, first
    attempts that succeeded left out, is a message get: following.subjects_end),
    redelivery (its marker on ATTEMPTS, then the job on DELIVERIES), dead letters, the
    backlog of every stream (its gauges)."""
    return _service(
        FAILURES_USER,
        ATTEMPT_SUBJECTS,
        DELIVERY_JOBS_SUBJECTS,
        *_follow(ATTEMPTS),
        f"{API}.STREAM.MSG.GET.{ATTEMPTS}",
        *_read(DEADLETTERS),
        *(subject for stream in STREAMS for subject in _watch(stream)),
        *_set_aside(FAILURES_PROJECTOR),
    )


def _outside_users() -> dict[str, Permissions]:
    """The users that are not a service of the platform."""
    return {
        # Platform services writing events straight onto EVENTS; acknowledgements only. Not
        # the Webhook entity's: an organisation is told about its webhooks by the platform.
        PUBLISHER_USER: Permissions(
            publish=(EVENT_SUBJECTS,),
            subscribe=(f"{DEFAULT_INBOX}.>",),
            publish_deny=(WEBHOOK_EVENT_SUBJECTS,),
        ),
        ADMIN_USER: Permissions(publish=(">",), subscribe=(">",)),
    }
