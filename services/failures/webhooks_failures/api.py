"""The FailuresService gRPC API: requests and replies mapped to the view, the filters
(``filters``), redelivery (``redelivery``), rebuild and dead letters, and their errors to
gRPC status codes.

Every query acts for ``current_principal().tenant`` only: another tenant's failed event is
not found, never forbidden (its existence is not revealed). Before answering, a call gives
the projector a moment (``CATCH_UP_SECONDS``) to apply what ATTEMPTS already holds, so a
failure recorded just before the call is in the answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import grpc.aio
from nats.js import JetStreamContext

from webhooks.v1 import failures_pb2, failures_pb2_grpc
from webhooks_failures import deadletters as dead_letters
from webhooks_failures import redelivery
from webhooks_failures.filters import MAX_ID, InvalidRequest, listing_of, subscription_ids
from webhooks_failures.model import InvalidPageToken
from webhooks_failures.projector import Projector
from webhooks_failures.rebuild import rebuild
from webhooks_failures.view import FailuresView
from webhooks_grpc import abort, current_principal

Context = grpc.aio.ServicerContext[Any, Any]
log = logging.getLogger(__name__)

# Long enough for the projector to apply a burst of attempts, short enough that a query
# never waits noticeably when the projector is behind (or the broker away).
CATCH_UP_SECONDS = 1.0


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
            found, size, token = listing_of(request)
        except InvalidRequest as invalid:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field)
        await self._caught_up()
        tenant = current_principal().tenant
        try:
            page = await asyncio.to_thread(self._view.list_failed, tenant, found, size, token)
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
            ids = subscription_ids(request.subscription_ids, "subscription_ids")
        except InvalidRequest as invalid:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field)
        await self._caught_up()
        tenant = current_principal().tenant
        counts = await asyncio.to_thread(self._view.counts, tenant, list(ids))
        return failures_pb2.CountFailuresResponse(counts=counts)

    async def RedeliverFailedEvents(
        self, request: failures_pb2.RedeliverFailedEventsRequest, context: Context
    ) -> failures_pb2.RedeliverFailedEventsResponse:
        try:
            target = redelivery.target_of(request)
        except InvalidRequest as invalid:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid.message, invalid.field)
        await self._caught_up()
        principal = current_principal()
        try:
            selection = await asyncio.to_thread(
                redelivery.select, self._view, principal.tenant, target, request.dry_run
            )
        except redelivery.UnknownFailedEvent as unknown:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no failed event {unknown.delivery_id}",
                "delivery_id",
            )
        matched = selection.matched
        if request.dry_run:
            return failures_pb2.RedeliverFailedEventsResponse(matched=matched)
        try:
            done = await redelivery.publish(self._js, selection.targets, principal.name)
        except redelivery.RedeliveryStopped as stopped:
            log.warning(
                "redelivery by %s stopped after %d: %s",
                principal.name,
                len(stopped.done),
                stopped.cause,
            )
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"redelivery stopped after {len(stopped.done)} of {stopped.total}: the broker "
                f"did not confirm ({type(stopped.cause).__name__}); asking again continues",
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
