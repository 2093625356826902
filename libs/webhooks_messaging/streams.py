"""The JetStream streams of the platform and their idempotent declaration.

Four carry the platform's work (SUBSCRIPTIONS, EVENTS, DELIVERIES, ATTEMPTS); the fifth,
DEADLETTERS, keeps what a producer or consumer set aside (see deadletters.py), bounded in
age, size and count so that the worst publisher cannot fill the disk with it.

Every service declares all of them at start-up, so whichever starts first creates them and
a configuration change (say a longer EVENTS replay window) is applied by the next start.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from webhooks_config import Settings
from webhooks_messaging.subjects import (
    ATTEMPTS_PREFIX,
    BULK_EVENTS_PREFIX,
    BULK_JOBS_PREFIX,
    EVENTS_PREFIX,
    JOBS_PREFIX,
)

SUBSCRIPTIONS = "SUBSCRIPTIONS"
EVENTS = "EVENTS"
DELIVERIES = "DELIVERIES"
ATTEMPTS = "ATTEMPTS"
DEADLETTERS = "DEADLETTERS"
STREAMS = (SUBSCRIPTIONS, EVENTS, DELIVERIES, ATTEMPTS, DEADLETTERS)
DEADLETTER_SUBJECTS = "deadletters.>"
# Dead letters are for an operator to look at, not a record to keep: a month of them, at
# most this many bytes and letters (the oldest go first). Each letter is at most
# DEADLETTER_MAX_MSG_BYTES (a 64 KiB sample of the message and bounded headers).
DEADLETTERS_MAX_AGE_SECONDS = 30 * 86400
DEADLETTERS_MAX_BYTES = 256 * 1024 * 1024
DEADLETTERS_MAX_MSGS = 100_000
DEADLETTER_MAX_MSG_BYTES = 128 * 1024

# Each lane's subjects (subjects.py): the standard and the bulk lane of events and jobs.
EVENT_SUBJECTS = f"{EVENTS_PREFIX}.>"
BULK_EVENT_SUBJECTS = f"{BULK_EVENTS_PREFIX}.>"
DELIVERY_JOBS_SUBJECTS = f"{JOBS_PREFIX}.>"
DELIVERY_BULK_SUBJECTS = f"{BULK_JOBS_PREFIX}.>"
DELIVERY_RETRY_SUBJECTS = "deliveries.retry.>"
# Every attempt record: attempts.<tenant>.<subscription>, and .ok after it for a first
# attempt that succeeded (subjects.attempts_subject).
ATTEMPT_SUBJECTS = f"{ATTEMPTS_PREFIX}.>"

# JetStream API error code: "stream name already in use with a different configuration".
_STREAM_NAME_EXISTS = 10058

log = logging.getLogger(__name__)


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """The declared configuration of every stream, from the settings.

    Every stream has the same replicas: on a cluster of 3 (or 5) servers each survives the
    loss of one (or two); a single server accepts only 1.
    """
    return [
        _subscriptions(settings),
        _events(settings),
        _deliveries(settings),
        _attempts(settings),
        _deadletters(settings),
    ]


def _duplicate_window(settings: Settings, max_age: int) -> int:
    # The server refuses a duplicate window longer than the stream's max age (0: none).
    dup = settings.duplicate_window_seconds
    return min(dup, max_age) if max_age > 0 else dup


def _subscriptions(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=SUBSCRIPTIONS,
        description="Domain events of subscriptions and certificates (keep all)",
        subjects=["subscriptions.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_msgs=-1,
        max_bytes=-1,
        max_age=0,
        duplicate_window=_duplicate_window(settings, 0),
    )


def _events(settings: Settings) -> StreamConfig:
    events_age = settings.events_max_age_seconds
    return StreamConfig(
        name=EVENTS,
        description="Platform events, kept for replay",
        subjects=[EVENT_SUBJECTS, BULK_EVENT_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_msgs=-1,
        max_bytes=settings.events_max_bytes,
        max_age=events_age,
        duplicate_window=_duplicate_window(settings, events_age),
    )


def _deliveries(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=DELIVERIES,
        description="Delivery jobs for senders, and scheduled retries",
        subjects=[DELIVERY_JOBS_SUBJECTS, DELIVERY_BULK_SUBJECTS, DELIVERY_RETRY_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_msgs=-1,
        max_bytes=-1,
        max_age=0,
        duplicate_window=_duplicate_window(settings, 0),
        # Retries are message schedules (nats-server 2.12+): the target subject must
        # be in this same stream, hence deliveries.retry.> next to deliveries.jobs.>.
        allow_msg_schedules=True,
    )


def _attempts(settings: Settings) -> StreamConfig:
    attempts_age = settings.attempts_max_age_seconds
    return StreamConfig(
        name=ATTEMPTS,
        description="Delivery attempts, the source of the failures read model",
        subjects=[ATTEMPT_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_msgs=-1,
        max_bytes=-1,
        max_age=attempts_age,
        duplicate_window=_duplicate_window(settings, attempts_age),
    )


def _deadletters(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=DEADLETTERS,
        description="What a producer or consumer set aside, for operators to list",
        subjects=[DEADLETTER_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_msgs=DEADLETTERS_MAX_MSGS,
        max_bytes=DEADLETTERS_MAX_BYTES,
        max_age=DEADLETTERS_MAX_AGE_SECONDS,
        max_msg_size=DEADLETTER_MAX_MSG_BYTES,
        # One letter per original message and component: the subject names the original
        # (deadletters.<component>.<reason>.<origin>), so setting the same message aside
        # again (a projection rebuilt at every start) replaces its letter, never adds one.
        max_msgs_per_subject=1,
        duplicate_window=_duplicate_window(settings, DEADLETTERS_MAX_AGE_SECONDS),
    )


async def declare_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or update it to ``config``; safe under concurrent start-ups."""
    try:
        await js.update_stream(config)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
    except BadRequestError as err:
        # Another service created it between our update and create: update it now.
        if err.err_code != _STREAM_NAME_EXISTS:
            raise
        await js.update_stream(config)


async def declare_streams(js: JetStreamContext, settings: Settings) -> None:
    """Create or update every stream (idempotent; run at every start-up)."""
    for config in stream_configs(settings):
        await declare_stream(js, config)
