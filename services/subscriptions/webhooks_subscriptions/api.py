"""The SubscriptionService gRPC API: requests in, application commands, messages out.

The only place domain errors become status codes. The event-sourcing library blocks, so
each command runs in a worker thread and never on the loop that serves RPCs and NATS.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import grpc
import grpc.aio

from webhooks.v1 import common_pb2, subscriptions_pb2, subscriptions_pb2_grpc
from webhooks_catalogue import entity as catalogue_entity
from webhooks_catalogue import limits
from webhooks_catalogue.proto import catalogue_message
from webhooks_grpc import abort, abort_fields, current_principal
from webhooks_subscriptions.application import Caller, Subscriptions
from webhooks_subscriptions.convert import (
    ORDERS,
    certificate_message,
    history_entry,
    spec_data,
    subscription_message,
)
from webhooks_subscriptions.domain.errors import (
    CertificateInUse,
    DomainError,
    InvalidField,
    NameTaken,
    NotFound,
    StaleVersion,
)
from webhooks_subscriptions.domain.subscription import Subscription
from webhooks_subscriptions.domain.update_mask import UPDATABLE_FIELDS
from webhooks_subscriptions.health import HealthWatch
from webhooks_subscriptions.listing import ListQuery
from webhooks_subscriptions.projector import ListingProjector
from webhooks_subscriptions.relay import OutboxRelay
from webhooks_subscriptions.views import certificate_view, subscription_view
from webhooks_telemetry import inject_headers

log = logging.getLogger(__name__)
T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]
# The fields of SubscriptionSpec: their errors are reported under "subscription.".
SPEC_FIELDS = frozenset(UPDATABLE_FIELDS)
MAX_PAGE_SIZE = limits.SUBSCRIPTIONS_PAGE_SIZE
DEFAULT_PAGE_SIZE = 50
LIST_IDS = 5000  # ids (or exclude_ids) of one ListSubscriptions


def _caller() -> Caller:
    principal = current_principal()
    # The trace context of this RPC travels with the domain events it causes.
    return Caller(tenant=principal.tenant, actor=principal.name, trace=inject_headers({}))


def _spec_field(field: str) -> str:
    root = field.split(".", 1)[0].split("[", 1)[0]
    return f"subscription.{field}" if root in SPEC_FIELDS else field


async def _fail(context: Context, error: DomainError, in_spec: bool) -> NoReturn:
    if isinstance(error, InvalidField):  # and InvalidFields: every violation at once
        violations = [
            (_spec_field(one.field) if in_spec else one.field, one.message)
            for one in error.violations
        ]
        await abort_fields(context, grpc.StatusCode.INVALID_ARGUMENT, violations)
    if isinstance(error, NameTaken):
        await abort(context, grpc.StatusCode.ALREADY_EXISTS, str(error))
    if isinstance(error, NotFound):
        await abort(context, grpc.StatusCode.NOT_FOUND, str(error))
    if isinstance(error, StaleVersion):
        await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(error), error.field)
    if isinstance(error, CertificateInUse):
        await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(error))
    await abort(context, grpc.StatusCode.ABORTED, str(error))


class SubscriptionsServicer(subscriptions_pb2_grpc.SubscriptionServiceServicer):
    def __init__(
        self,
        app: Subscriptions,
        projector: ListingProjector,
        relay: OutboxRelay,
        health: HealthWatch,
        workers: int,
    ) -> None:
        self._app = app
        self._projector = projector
        self._relay = relay
        self._health = health
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="app")

    async def _run(
        self, context: Context, work: Callable[..., T], *args: Any, in_spec: bool = False
    ) -> T:
        try:
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, work, *args)
            return await loop.run_in_executor(self._executor, call)
        except DomainError as error:
            await _fail(context, error, in_spec)

    async def _command(
        self, context: Context, work: Callable[..., T], *args: Any, in_spec: bool = False
    ) -> T:
        """A change: replied once it is on SUBSCRIPTIONS (see the relay), so whoever the
        reply reaches can publish events that the change must route."""
        result = await self._run(context, work, *args, in_spec=in_spec)
        await self._relay.published(self._relay.saved_up_to)
        return result

    def _message(
        self, view: dict[str, Any], now: datetime | None = None
    ) -> subscriptions_pb2.Subscription:
        health = self._health.health(view, now or datetime.now(UTC))
        message = subscription_message(view, health)
        if health is None:
            message.health.state = common_pb2.HEALTH_STATE_HEALTHY
        return message

    async def _reset_health(self, subscription: Subscription, since: datetime) -> None:
        """A change that reset the webhook's health (an activation or a new endpoint, made
        by this command: after ``since``) clears the platform's record: a new start."""
        if subscription.deleted or subscription.health_reset_at >= since:
            await self._health.reset(subscription.tenant, str(subscription.id))

    async def CreateSubscription(
        self, request: subscriptions_pb2.CreateSubscriptionRequest, context: Context
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        active = request.active if request.HasField("active") else True
        subscription, secret = await self._command(
            context,
            self._app.create_subscription,
            _caller(),
            spec_data(request.subscription),
            active,
            in_spec=True,
        )
        return subscriptions_pb2.CreateSubscriptionResponse(
            subscription=self._message(subscription_view(subscription)),
            signing_secret=secret,
        )

    async def GetSubscription(
        self, request: subscriptions_pb2.GetSubscriptionRequest, context: Context
    ) -> subscriptions_pb2.Subscription:
        tenant = current_principal().tenant
        subscription = await self._run(context, self._app.get_subscription, tenant, request.id)
        return self._message(subscription_view(subscription))

    async def ListSubscriptions(
        self, request: subscriptions_pb2.ListSubscriptionsRequest, context: Context
    ) -> subscriptions_pb2.ListSubscriptionsResponse:
        query = await self._list_query(request, context)
        tenant = current_principal().tenant
        views, next_token, total = await self._run(
            context, lambda: self._projector.fresh().list_page(tenant, query)
        )
        now = datetime.now(UTC)
        return subscriptions_pb2.ListSubscriptionsResponse(
            subscriptions=[self._message(view, now) for view in views],
            next_page_token=next_token,
            total_size=total or 0,
        )

    async def _list_query(
        self, request: subscriptions_pb2.ListSubscriptionsRequest, context: Context
    ) -> ListQuery:
        field, problem = "", ""
        entity = request.entity
        if len(entity) > limits.CATALOGUE_NAME_LENGTH:
            field, problem = "entity", f"at most {limits.CATALOGUE_NAME_LENGTH} characters"
        elif entity:
            found = catalogue_entity(entity)
            if found is None:
                field, problem = "entity", f"unknown entity {entity!r}"
            else:
                entity = found.name
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            field, problem = "page_size", f"must be between 0 and {MAX_PAGE_SIZE}"
        if request.order_by not in ORDERS:
            field, problem = "order_by", f"unknown order {request.order_by}"
        if len(request.name_contains) > limits.NAME_CONTAINS_LENGTH:
            field, problem = "name_contains", f"at most {limits.NAME_CONTAINS_LENGTH} characters"
        if len(request.page_token) > limits.PAGE_TOKEN_LENGTH:
            field, problem = "page_token", f"at most {limits.PAGE_TOKEN_LENGTH} characters"
        for name in ("ids", "exclude_ids"):
            ids = getattr(request, name)
            if len(ids) > LIST_IDS or any(len(i) > limits.ID_LENGTH for i in ids):
                field, problem = name, f"at most {LIST_IDS} ids of {limits.ID_LENGTH} characters"
        if field:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, problem, field)
        return ListQuery(
            entity=entity,
            active=request.active if request.HasField("active") else None,
            # As typed ("R " is not "R"); only an all-blank text is no filter.
            name_contains=request.name_contains if request.name_contains.strip() else "",
            page_size=request.page_size or DEFAULT_PAGE_SIZE,
            page_token=request.page_token,
            order=ORDERS[request.order_by],
            ids=tuple(request.ids) if request.ids else None,
            exclude_ids=tuple(request.exclude_ids),
            include_total=request.include_total,
        )

    async def UpdateSubscription(
        self, request: subscriptions_pb2.UpdateSubscriptionRequest, context: Context
    ) -> subscriptions_pb2.Subscription:
        expected = request.expected_version if request.HasField("expected_version") else None
        since = datetime.now(UTC)
        subscription = await self._command(
            context,
            self._app.update_subscription,
            _caller(),
            request.id,
            spec_data(request.subscription),
            list(request.update_mask.paths),
            expected,
            in_spec=True,
        )
        await self._reset_health(subscription, since)
        return self._message(subscription_view(subscription))

    async def SetSubscriptionActive(
        self, request: subscriptions_pb2.SetSubscriptionActiveRequest, context: Context
    ) -> subscriptions_pb2.Subscription:
        expected = request.expected_version if request.HasField("expected_version") else None
        since = datetime.now(UTC)
        subscription = await self._command(
            context, self._app.set_active, _caller(), request.id, request.active, expected
        )
        await self._reset_health(subscription, since)
        return self._message(subscription_view(subscription))

    async def DeleteSubscription(
        self, request: subscriptions_pb2.DeleteSubscriptionRequest, context: Context
    ) -> subscriptions_pb2.DeleteSubscriptionResponse:
        expected = request.expected_version if request.HasField("expected_version") else None
        subscription = await self._command(
            context, self._app.delete_subscription, _caller(), request.id, expected
        )
        await self._reset_health(subscription, datetime.now(UTC))
        return subscriptions_pb2.DeleteSubscriptionResponse(
            id=str(subscription.id), version=subscription.version
        )

    async def GetSubscriptionHistory(
        self, request: subscriptions_pb2.GetSubscriptionHistoryRequest, context: Context
    ) -> subscriptions_pb2.GetSubscriptionHistoryResponse:
        tenant = current_principal().tenant
        events = await self._run(context, self._app.history, tenant, request.id)
        return subscriptions_pb2.GetSubscriptionHistoryResponse(
            entries=[history_entry(event) for event in events]
        )

    async def RotateSigningSecret(
        self, request: subscriptions_pb2.RotateSigningSecretRequest, context: Context
    ) -> subscriptions_pb2.RotateSigningSecretResponse:
        overlap = request.overlap_seconds if request.HasField("overlap_seconds") else None
        subscription, secret = await self._command(
            context, self._app.rotate_signing_secret, _caller(), request.id, overlap
        )
        return subscriptions_pb2.RotateSigningSecretResponse(
            subscription=self._message(subscription_view(subscription)),
            signing_secret=secret,
        )

    async def GetCatalogue(
        self, request: subscriptions_pb2.GetCatalogueRequest, context: Context
    ) -> common_pb2.Catalogue:
        return catalogue_message()

    async def UploadCertificate(
        self, request: subscriptions_pb2.UploadCertificateRequest, context: Context
    ) -> subscriptions_pb2.Certificate:
        certificate = await self._command(
            context,
            self._app.upload_certificate,
            _caller(),
            request.name,
            request.certificate_pem,
            request.private_key_pem,
        )
        return certificate_message(certificate_view(certificate))

    async def ListCertificates(
        self, request: subscriptions_pb2.ListCertificatesRequest, context: Context
    ) -> subscriptions_pb2.ListCertificatesResponse:
        tenant = current_principal().tenant
        views = await self._run(context, lambda: self._projector.fresh().list_certificates(tenant))
        return subscriptions_pb2.ListCertificatesResponse(
            certificates=[certificate_message(view) for view in views]
        )

    async def DeleteCertificate(
        self, request: subscriptions_pb2.DeleteCertificateRequest, context: Context
    ) -> subscriptions_pb2.DeleteCertificateResponse:
        await self._command(context, self._app.delete_certificate, _caller(), request.id)
        return subscriptions_pb2.DeleteCertificateResponse()
