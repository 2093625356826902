"""The SenderService gRPC API: SendTestEvent.

A test event is a sample event of the subscription's entity (or the caller's data), shaped
as a real delivery and sent now, once, outside the retry machinery: it is not recorded on
ATTEMPTS (it is not a failed event of the organisation) and the answer says what happened:
status code, duration, failure class and message, the response snippet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
from nats.js import JetStreamContext

from webhooks.v1 import messages_pb2, sender_pb2, sender_pb2_grpc
from webhooks_catalogue import entity as catalogue_entity
from webhooks_catalogue import limits
from webhooks_catalogue.event_data import EventDataError, parse_event_data
from webhooks_catalogue.samples import sample_data
from webhooks_grpc import abort, current_principal
from webhooks_messaging.feed import SubscriptionFeed
from webhooks_messaging.jobs import new_delivery_id, new_test_event_id, subscription_job
from webhooks_sender.attempts import attempt_record
from webhooks_sender.delivery import Deliverer, unusable
from webhooks_sender.directory import Directory, EndpointUnusable

Context = grpc.aio.ServicerContext[Any, Any]
# A test event's data is an event's data: the same bound as PublishEvents (limits says why).
CATCH_UP_TIMEOUT_SECONDS = 5.0


class SenderServicer(sender_pb2_grpc.SenderServiceServicer):
    def __init__(
        self,
        js: JetStreamContext,
        directory: Directory,
        feed: SubscriptionFeed[Directory],
        deliverer: Deliverer,
    ) -> None:
        self._js = js
        self._directory = directory
        self._feed = feed
        self._deliverer = deliverer

    async def SendTestEvent(
        self, request: sender_pb2.SendTestEventRequest, context: Context
    ) -> sender_pb2.SendTestEventResponse:
        if not 0 < len(request.subscription_id) <= limits.ID_LENGTH:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"required, at most {limits.ID_LENGTH} characters",
                "subscription_id",
            )
        if len(request.trigger) > limits.CATALOGUE_NAME_LENGTH:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {limits.CATALOGUE_NAME_LENGTH} characters",
                "trigger",
            )
        # A subscription created a moment ago may not be in the directory yet.
        await self._feed.caught_up(self._js, CATCH_UP_TIMEOUT_SECONDS)
        state = self._directory.subscription(request.subscription_id)
        if state is None or state.deleted or state.tenant != current_principal().tenant:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no subscription {request.subscription_id}",
                "subscription_id",
            )
        assert state is not None
        trigger = request.trigger or (state.triggers[0].trigger if state.triggers else "")
        entity = catalogue_entity(state.entity)
        known = {t.name for t in entity.triggers} if entity is not None else set()
        if trigger not in known:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{state.entity} has no trigger {trigger!r}; one of {', '.join(sorted(known))}",
                "trigger",
            )
        data = await _data(request, state.entity, trigger, context)
        job = _test_job(state, trigger, data)
        try:
            endpoint = self._directory.endpoint(state)
        except EndpointUnusable as error:
            result = unusable(job, state.webhook.url, str(error))
        else:
            result = await self._deliverer.attempt(endpoint, job)
        record = attempt_record(job, result, max_attempts=1, next_attempt_at=None)
        return sender_pb2.SendTestEventResponse(attempt=record)


async def _data(
    request: sender_pb2.SendTestEventRequest, entity: str, trigger: str, context: Context
) -> dict[str, Any]:
    if not request.data_json:
        return sample_data(entity, trigger)
    try:
        return parse_event_data(request.data_json)
    except EventDataError as error:
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error), "data_json")


def _test_job(
    state: messages_pb2.SubscriptionState, trigger: str, data: dict[str, Any]
) -> messages_pb2.DeliveryJob:
    return subscription_job(
        state,
        event_id=new_test_event_id(),
        delivery_id=new_delivery_id(),
        trigger=trigger,
        data=data,
        occurred_at=datetime.now(UTC),
        include_complete_data=state.include_complete_data,
    )
