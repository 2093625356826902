"""The FailuresService gRPC API: list, details, counts, redelivery and rebuild of the view.

Every query acts for ``current_principal().tenant`` only: another tenant's failed event is
not found, never forbidden (its existence is not revealed). Before answering, a call gives
the projector a moment (``CATCH_UP_SECONDS``) to apply what ATTEMPTS already holds, so a
failure recorded just before the call is in the answer.

Redelivery publishes, per failed event, first a REDELIVERY_REQUESTED record on ATTEMPTS
(attempt 0 of a new series: the view shows the event REDELIVERED and the trial history who
asked) and then a fresh DeliveryJob (attempt 1 of that series, marked manual) on
DELIVERIES. The job keeps the delivery's ``delivery_id``, so the receiver sees the same
``webhook-id`` as on the first attempts and the new attempts join the event's trial
history: a manual redelivery is a deliberate resend of that delivery, and a receiver that
already processed it may recognise it. Message ids ``<delivery>:<series>:0`` and
``<delivery>:<series>:manual`` make two identical requests racing each other (both seeing
the same next series) publish once. One call redelivers at most
``MAX_REDELIVERIES_PER_CALL`` events; the answer's ``matched`` tells whether more remain,
and calling again continues with them (those already redelivered no longer match the
default FAILED state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
from nats.js import JetStreamContext
from opentelemetry import trace

from webhooks.v1 import failures_pb2, failures_pb2_grpc, messages_pb2
from webhooks_catalogue import CHANNELS, entity_names, limits
from webhooks_catalogue import entity as catalogue_entity
from webhooks_failures import deadletters as dead_letters
from webhooks_failures.model import (
    DEFAULT_PAGE_SIZE,
    FAILED,
    MAX_PAGE_SIZE,
    Filter,
    InvalidPageToken,
    RedeliveryTarget,
    failure_name,
)
from webhooks_failures.projector import Projector
from webhooks_failures.rebuild import rebuild
from webhooks_failures.view import FailuresView
from webhooks_grpc import InvalidField, abort, current_principal, to_datetime
from webhooks_messaging import (
    ATTEMPTS,
    DELIVERIES,
    attempts_subject,
    delivery_job_subject,
)
from webhooks_messaging.jobs import delivery_job, redelivery_job_id
from webhooks_telemetry import inject_headers

Context = grpc.aio.ServicerContext[Any, Any]
log = logging.getLogger(__name__)
tracer = trace.get_tracer("webhooks.failures")

# Long enough for the projector to apply a burst of attempts, short enough that a query
# never waits noticeably when the projector is behind (or the broker away).
CATCH_UP_SECONDS = 1.0
# The bounds on requests, and why each is that number, are in webhooks_catalogue.limits.
MAX_FILTER_SUBSCRIPTIONS = limits.FILTER_SUBSCRIPTION_IDS
MAX_ERROR_CODES = limits.FILTER_ERROR_CODES
MAX_TEXT = limits.FILTER_TEXT_LENGTH  # message_contains, subchannel
MAX_RETRY_ATTEMPTS = limits.FILTER_RETRY_ATTEMPTS
MAX_ID = limits.ID_LENGTH  # subscription and delivery ids (UUIDs)
MAX_PAGE_TOKEN = limits.PAGE_TOKEN_LENGTH
MAX_REDELIVERIES_PER_CALL = 10_000
PUBLISH_BATCH = 500  # publishes in flight before their acknowledgements are awaited
CONFIRM_TIMEOUT_SECONDS = 10.0
KNOWN_STATES = frozenset(value for value in failures_pb2.FailedEventState.values() if value != 0)
# Error codes that are not an HTTP status: the failure classes that have no status code
# (an HTTP_STATUS failure always has one, so its error code is the status itself).
FAILURE_CODES = frozenset(
    failure_name(value)
    for value in messages_pb2.FailureClass.values()
    if value not in (messages_pb2.FAILURE_CLASS_UNSPECIFIED, messages_pb2.FAILURE_CLASS_HTTP_STATUS)
)


# A request field that cannot be used; ``field`` is its path (``filter.until``). The same
# class as the timestamp conversion raises, so one ``except`` covers both.
InvalidRequest = InvalidField


def _ids(values: Sequence[str], field: str) -> tuple[str, ...]:
    if len(values) > MAX_FILTER_SUBSCRIPTIONS:
        raise InvalidRequest(
            field, f"at most {MAX_FILTER_SUBSCRIPTIONS} subscription ids, got {len(values)}"
        )
    ids: list[str] = []
    for value in values:
        if not value:
            raise InvalidRequest(field, "an empty subscription id")
        if len(value) > MAX_ID:
            raise InvalidRequest(field, f"a subscription id has at most {MAX_ID} characters")
        if value not in ids:
            ids.append(value)
    return tuple(ids)


def _error_code(value: str) -> str:
    if len(value) > limits.ERROR_CODE_LENGTH:
        raise InvalidRequest(
            "filter.error_codes", f"an error code has at most {limits.ERROR_CODE_LENGTH} characters"
        )
    code = value.strip().lower()
    if code.isdigit() and 100 <= int(code) <= 599:
        return str(int(code))
    if code in FAILURE_CODES:
        return code
    raise InvalidRequest(
        "filter.error_codes",
        f"{value[:40]!r} is neither an HTTP status (100-599) nor one of "
        + ", ".join(sorted(FAILURE_CODES)),
    )


def _entity_and_trigger(entity: str, trigger: str) -> tuple[str, str]:
    """The catalogue's spelling of both, so a filter matches whatever case was typed."""
    for field, word in (("filter.entity", entity), ("filter.trigger", trigger)):
        if len(word) > limits.CATALOGUE_NAME_LENGTH:
            raise InvalidRequest(field, f"at most {limits.CATALOGUE_NAME_LENGTH} characters")
    name = ""
    if entity:
        found = catalogue_entity(entity)
        if found is None:
            raise InvalidRequest(
                "filter.entity",
                f"unknown entity {entity[:40]!r}; one of {', '.join(entity_names())}",
            )
        name = found.name
    if not trigger:
        return name, ""
    if name:
        found = catalogue_entity(name)
        assert found is not None
        known = found.trigger(trigger)
        if known is None:
            raise InvalidRequest(
                "filter.trigger",
                f"{name} has no trigger {trigger[:40]!r}; one of "
                + ", ".join(t.name for t in found.triggers),
            )
        return name, known.name
    for each in entity_names():
        found = catalogue_entity(each)
        assert found is not None
        known = found.trigger(trigger)
        if known is not None:
            return "", known.name
    raise InvalidRequest("filter.trigger", f"no entity has a trigger {trigger[:40]!r}")


def filter_of(request: failures_pb2.FailedEventFilter) -> Filter:
    """The validated Filter of a request's filter, or InvalidRequest naming the field."""
    if len(request.states) > limits.FILTER_STATES:
        raise InvalidRequest(
            "filter.states", f"at most {limits.FILTER_STATES} states, got {len(request.states)}"
        )
    states: list[int] = []
    for state in request.states:
        if state not in KNOWN_STATES:
            raise InvalidRequest(
                "filter.states",
                f"unknown state {state}; one of "
                + ", ".join(
                    failures_pb2.FailedEventState.Name(s)  # type: ignore[arg-type]
                    for s in sorted(KNOWN_STATES)
                ),
            )
        if state not in states:
            states.append(state)
    if len(request.error_codes) > MAX_ERROR_CODES:
        raise InvalidRequest(
            "filter.error_codes",
            f"at most {MAX_ERROR_CODES} error codes, got {len(request.error_codes)}",
        )
    codes = tuple(dict.fromkeys(_error_code(code) for code in request.error_codes))
    channel: int | None = None
    if request.HasField("channel"):
        if request.channel not in CHANNELS:
            raise InvalidRequest("filter.channel", f"unknown channel id {request.channel}")
        channel = request.channel
    if len(request.subchannel) > MAX_TEXT:
        raise InvalidRequest("filter.subchannel", f"at most {MAX_TEXT} characters")
    if len(request.message_contains) > MAX_TEXT:
        raise InvalidRequest("filter.message_contains", f"at most {MAX_TEXT} characters")
    since = to_datetime(request.since, "filter.since") if request.HasField("since") else None
    until = to_datetime(request.until, "filter.until") if request.HasField("until") else None
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(
            "filter.until",
            f"must be after filter.since ({since.isoformat()}), got {until.isoformat()}",
        )
    min_retries: int | None = None
    if request.HasField("min_retry_attempts"):
        if not 0 <= request.min_retry_attempts <= MAX_RETRY_ATTEMPTS:
            raise InvalidRequest(
                "filter.min_retry_attempts",
                f"between 0 and {MAX_RETRY_ATTEMPTS}, got {request.min_retry_attempts}",
            )
        min_retries = request.min_retry_attempts
    entity, trigger = _entity_and_trigger(request.entity.strip(), request.trigger.strip())
    return Filter(
        subscription_ids=_ids(request.subscription_ids, "filter.subscription_ids"),
        entity=entity,
        trigger=trigger,
        channel=channel,
        subchannel=request.subchannel,
        error_codes=codes,
        states=tuple(states),
        since=since,
        until=until,
        message_contains=request.message_contains,
        min_retry_attempts=min_retries,
    )


def page_size_of(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidRequest("page_size", f"between 0 and {MAX_PAGE_SIZE}, got {value}")
    return value or DEFAULT_PAGE_SIZE


def redelivery_filter(request: failures_pb2.FailedEventFilter) -> Filter:
    """A redelivery filter without states means the FAILED ones: an event still retrying
    has its next attempt scheduled, and a recovered one was delivered."""
    found = filter_of(request)
    if found.states:
        return found
    return replace(found, states=(FAILED,))


def marker_record(target: RedeliveryTarget, series: int, requested_by: str) -> bytes:
    record = messages_pb2.AttemptRecord(
        delivery_id=target.delivery_id,
        series=series,
        attempt=0,
        tenant=target.tenant,
        subscription_id=target.subscription_id,
        subscription_name=target.subscription_name,
        event_id=target.event_id,
        entity=target.entity,
        trigger=target.trigger,
        subchannel=target.subchannel,
        outcome=messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED,
        manual=True,
        replay=target.replay,
        subscription_version=target.subscription_version,
        requested_by=requested_by,
    )
    record.started_at.FromDatetime(datetime.now(UTC))
    if target.channel is not None:
        record.channel = target.channel
    if target.occurred_at is not None:
        record.occurred_at.FromDatetime(target.occurred_at)
    return record.SerializeToString()


def manual_job(target: RedeliveryTarget, series: int, trace_context: dict[str, str]) -> bytes:
    job = delivery_job(
        job_id=redelivery_job_id(target.event_id, target.subscription_id, series),
        delivery_id=target.delivery_id,
        event_id=target.event_id,
        tenant=target.tenant,
        subscription_id=target.subscription_id,
        subscription_version=target.subscription_version,
        subscription_name=target.subscription_name,
        entity=target.entity,
        trigger=target.trigger,
        subchannel=target.subchannel,
        channel=target.channel,
        occurred_at=target.occurred_at,
        payload_json=target.payload_json,
        replay=target.replay,
        manual=True,
        series=series,
        trace_context=trace_context,
    )
    return job.SerializeToString()


class FailuresServicer(failures_pb2_grpc.FailuresServiceServicer):
    def __init__(self, js: JetStreamContext, view: FailuresView, projector: Projector) -> None:
        self._js = js
        self._view = view
        self._projector = projector
        self._rebuilding = asyncio.Lock()

    async def _caught_up(self) -> None:
        # Still behind after the wait, or the broker unreachable (the stream's end is a
        # round trip): answer from what is applied rather than fail the call.
        try:
            await asyncio.wait_for(
                self._projector.caught_up(self._js, CATCH_UP_SECONDS), 2 * CATCH_UP_SECONDS
            )
        except Exception as error:
            log.debug("answering without catching up: %s", error)

    async def ListFailedEvents(
        self, request: failures_pb2.ListFailedEventsRequest, context: Context
    ) -> failures_pb2.ListFailedEventsResponse:
        try:
            found = filter_of(request.filter)
            size = page_size_of(request.page_size)
            if len(request.page_token) > MAX_PAGE_TOKEN:
                raise InvalidRequest(
                    "page_token", f"not a page token of this listing (at most {MAX_PAGE_TOKEN})"
                )
        except InvalidRequest as invalid:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field)
        await self._caught_up()
        tenant = current_principal().tenant
        try:
            page = await asyncio.to_thread(
                self._view.list_failed, tenant, found, size, request.page_token
            )
        except InvalidPageToken as error:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                str(error) or "not a page token of this listing",
                "page_token",
            )
        return failures_pb2.ListFailedEventsResponse(
            failed_events=page.failed_events, next_page_token=page.next_page_token
        )

    async def GetFailedEvent(
        self, request: failures_pb2.GetFailedEventRequest, context: Context
    ) -> failures_pb2.FailedEventDetails:
        if not 0 < len(request.delivery_id) <= MAX_ID:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a delivery id is required, at most {MAX_ID} characters",
                "delivery_id",
            )
        await self._caught_up()
        tenant = current_principal().tenant
        details = await asyncio.to_thread(self._view.details, tenant, request.delivery_id)
        if details is None:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no failed event {request.delivery_id}",
                "delivery_id",
            )
        return details

    async def CountFailures(
        self, request: failures_pb2.CountFailuresRequest, context: Context
    ) -> failures_pb2.CountFailuresResponse:
        try:
            ids = _ids(request.subscription_ids, "subscription_ids")
        except InvalidRequest as invalid:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field)
        await self._caught_up()
        tenant = current_principal().tenant
        counts = await asyncio.to_thread(self._view.counts, tenant, list(ids))
        return failures_pb2.CountFailuresResponse(counts=counts)

    async def RedeliverFailedEvents(
        self, request: failures_pb2.RedeliverFailedEventsRequest, context: Context
    ) -> failures_pb2.RedeliverFailedEventsResponse:
        which = request.WhichOneof("target")
        found: Filter | None = None
        if which is None:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "give a delivery_id or a filter",
                "target",
            )
        if which == "delivery_id" and not 0 < len(request.delivery_id) <= MAX_ID:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"not a delivery id (1 to {MAX_ID} characters)",
                "delivery_id",
            )
        if which == "filter":
            try:
                found = redelivery_filter(request.filter)
            except InvalidRequest as invalid:
                await abort(
                    context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field
                )
        await self._caught_up()
        principal = current_principal()
        if found is None:
            targets = await asyncio.to_thread(
                self._view.redelivery_targets, principal.tenant, delivery_id=request.delivery_id
            )
            if not targets:
                await abort(
                    context,
                    grpc.StatusCode.NOT_FOUND,
                    f"no failed event {request.delivery_id}",
                    "delivery_id",
                )
            matched = len(targets)
        else:
            matched = await asyncio.to_thread(self._view.count_matching, principal.tenant, found)
            if request.dry_run:
                return failures_pb2.RedeliverFailedEventsResponse(matched=matched)
            targets = await asyncio.to_thread(
                self._view.redelivery_targets,
                principal.tenant,
                filter=found,
                limit=MAX_REDELIVERIES_PER_CALL,
            )
        if request.dry_run:
            return failures_pb2.RedeliverFailedEventsResponse(matched=matched)
        done: list[str] = []
        try:
            await self._redeliver(targets, principal.name, done)
        except Exception as error:  # the broker refused or did not confirm in time
            log.warning("redelivery by %s stopped after %d: %s", principal.name, len(done), error)
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"redelivery stopped after {len(done)} of {len(targets)}: the broker did not "
                f"confirm ({type(error).__name__}); asking again continues",
            )
        log.info(
            "redelivery by %s for %s: %d of %d matched",
            principal.name,
            principal.tenant,
            len(done),
            matched,
        )
        return failures_pb2.RedeliverFailedEventsResponse(
            matched=matched, redelivered=len(done), delivery_ids=done
        )

    async def _redeliver(
        self, targets: Sequence[RedeliveryTarget], requested_by: str, done: list[str]
    ) -> None:
        """Publishes each target's marker, then its job; adds the ids published to ``done``."""
        with tracer.start_as_current_span(
            "redeliver failed events", attributes={"webhooks.count": len(targets)}
        ):
            for start in range(0, len(targets), PUBLISH_BATCH):
                batch = targets[start : start + PUBLISH_BATCH]
                # Every marker stored before any job of the batch is: the job's attempts
                # (recorded by a sender on ATTEMPTS) must follow the marker there.
                await self._confirm(
                    [
                        await self._js.publish_async(
                            attempts_subject(t.tenant, t.subscription_id),
                            marker_record(t, t.next_series, requested_by),
                            stream=ATTEMPTS,
                            headers=inject_headers(
                                {"Nats-Msg-Id": f"{t.delivery_id}:{t.next_series}:0"}
                            ),
                        )
                        for t in batch
                    ]
                )
                acks = []
                for t in batch:
                    trace_context = inject_headers({})
                    acks.append(
                        await self._js.publish_async(
                            delivery_job_subject(t.tenant, t.subscription_id),
                            manual_job(t, t.next_series, trace_context),
                            stream=DELIVERIES,
                            headers={
                                **trace_context,
                                "Nats-Msg-Id": f"{t.delivery_id}:{t.next_series}:manual",
                            },
                        )
                    )
                await self._confirm(acks)
                done.extend(t.delivery_id for t in batch)

    @staticmethod
    async def _confirm(acks: Sequence[asyncio.Future[Any]]) -> None:
        if acks:
            await asyncio.wait_for(asyncio.gather(*acks), CONFIRM_TIMEOUT_SECONDS)

    async def RebuildReadModel(
        self, request: failures_pb2.RebuildReadModelRequest, context: Context
    ) -> failures_pb2.RebuildReadModelResponse:
        principal = current_principal()
        if not principal.platform:
            # The view holds every tenant's failed events: rebuilding it is an operator's act.
            await abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "rebuilding the failures view needs a platform token",
            )
        if self._rebuilding.locked():
            await abort(
                context, grpc.StatusCode.ABORTED, "a rebuild is already running; try again later"
            )
        async with self._rebuilding:
            log.info("rebuild of the failures view asked by %s", principal.name)
            applied, failed_events = await rebuild(self._js, self._view, self._projector)
        return failures_pb2.RebuildReadModelResponse(
            applied_attempts=applied, failed_events=failed_events
        )

    async def ListDeadLetters(
        self, request: failures_pb2.ListDeadLettersRequest, context: Context
    ) -> failures_pb2.ListDeadLettersResponse:
        if not current_principal().platform:
            # Letters hold every tenant's messages: listing them is an operator's act.
            await abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "listing dead letters needs a platform token",
            )
        try:
            listing = dead_letters.listing_of(request)
        except dead_letters.InvalidListing as invalid:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field)
        try:
            return await dead_letters.list_dead_letters(self._js, listing)
        except Exception as error:  # the broker is away or did not answer in time
            log.warning("listing dead letters failed: %s", error)
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"the broker did not answer ({type(error).__name__}); try again",
            )
