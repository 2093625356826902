"""The RouterService gRPC API: PublishEvents and ReplayEvents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
from nats.js import JetStreamContext

from webhooks.v1 import router_pb2, router_pb2_grpc
from webhooks_catalogue import limits
from webhooks_config import Settings
from webhooks_grpc import abort, current_principal, to_datetime
from webhooks_grpc.boundary import BROKER_ERRORS
from webhooks_router.ingest import EVENTS_REJECTED, REASONS, ingest
from webhooks_router.lanes import TenantLanes
from webhooks_router.publishing import StreamStore
from webhooks_router.replay import (
    EventsExpired,
    ReplayRefused,
    SubscriptionInactive,
    SubscriptionNotFound,
    Window,
    WindowInvalid,
    replay,
)
from webhooks_router.routes import RoutingTable

Context = grpc.aio.ServicerContext[Any, Any]
REFUSALS: dict[type[ReplayRefused], grpc.StatusCode] = {
    SubscriptionNotFound: grpc.StatusCode.NOT_FOUND,
    SubscriptionInactive: grpc.StatusCode.FAILED_PRECONDITION,
    EventsExpired: grpc.StatusCode.FAILED_PRECONDITION,
    WindowInvalid: grpc.StatusCode.INVALID_ARGUMENT,
}


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    def __init__(
        self, js: JetStreamContext, table: RoutingTable, settings: Settings, store: StreamStore
    ) -> None:
        self._js = js
        self._table = table
        self._settings = settings
        self._store = store  # of EVENTS, started
        self._lanes = TenantLanes(settings.tenant_standard_rate, settings.tenant_standard_burst)

    async def PublishEvents(
        self, request: router_pb2.PublishEventsRequest, context: Context
    ) -> router_pb2.PublishEventsResponse:
        limit = self._settings.router_max_batch
        if not request.events:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "at least one event", "events")
        if len(request.events) > limit:
            EVENTS_REJECTED.add(len(request.events), REASONS["too_large"])
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {limit} events per call, got {len(request.events)}",
                "events",
            )
        try:
            results = await ingest(self._store, request.events, current_principal(), self._lanes)
        except BROKER_ERRORS as error:
            # Some events of the call may be stored and others not: the whole call is safe
            # to repeat, since the broker drops an event id it already holds (DUPLICATE).
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"the broker did not store the events ({type(error).__name__}); this is "
                "retryable: send the same call again (already stored events come back "
                "DUPLICATE within the duplicate window)",
            )
        return router_pb2.PublishEventsResponse(results=results)

    async def ReplayEvents(
        self, request: router_pb2.ReplayEventsRequest, context: Context
    ) -> AsyncIterator[router_pb2.ReplayProgress]:
        if not 0 < len(request.subscription_id) <= limits.ID_LENGTH:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"required, at most {limits.ID_LENGTH} characters",
                "subscription_id",
            )
        for field in ("since", "until"):
            if not request.HasField(field):
                await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "required", field)
        window = Window(
            since=to_datetime(request.since, "since"), until=to_datetime(request.until, "until")
        )
        progress = replay(
            self._js,
            self._table,
            current_principal().tenant,
            request.subscription_id,
            window,
            dry_run=request.dry_run,
            max_age_seconds=self._settings.events_max_age_seconds,
        )
        try:
            async for step in progress:
                yield step
        except ReplayRefused as refused:
            await abort(context, REFUSALS[type(refused)], refused.message, refused.field)
