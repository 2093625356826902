"""The sender run for real, for the tests that need the whole delivery path without routing:
``tests.support.platform_stack`` with no router and no failures service (a nats-server,
``webhooks serve subscriptions`` and one ``webhooks serve sender`` as separate processes,
as compose runs them), under the names the sender's tests use.

Subscriptions are made through the subscriptions API; jobs are put on DELIVERIES as the
router would put them; what comes out is what the receivers got and what ATTEMPTS holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from tests.support import NatsServer
from tests.support.platform_stack import (
    FAILED,
    FC,
    RPC_TIMEOUT,
    SENDER_TIMEOUT_MS,
    SUCCEEDED,
    AttemptLog,
    Metadata,
    Platform,
    new_tenant,
    platform,
    rest,
    running_platform,
)
from tests.support.receivers import TestPki
from tests.support.service_process import ServiceProcess
from webhooks.v1 import messages_pb2, sender_pb2_grpc, subscriptions_pb2, subscriptions_pb2_grpc

__all__ = [
    "FAILED",
    "FC",
    "RPC_TIMEOUT",
    "SENDER_TIMEOUT_MS",
    "SUCCEEDED",
    "AttemptLog",
    "Metadata",
    "Stack",
    "new_tenant",
    "platform",
    "rest",
    "running_stack",
]


@dataclass
class Stack:
    """A ``Platform`` seen from the sender's tests: ``sender`` is the process, ``senders``
    its gRPC stub, ``publish(job)`` puts a job on DELIVERIES."""

    platform: Platform

    @property
    def nats(self) -> NatsServer:
        assert self.platform.nats is not None
        return self.platform.nats

    @property
    def pki(self) -> TestPki:
        return self.platform.pki

    @property
    def subscriptions(self) -> ServiceProcess:
        return self.platform.subscriptions

    @property
    def sender(self) -> ServiceProcess:
        return self.platform.senders[0]

    @property
    def nc(self) -> NATS:
        return self.platform.nc

    @property
    def js(self) -> JetStreamContext:
        return self.platform.js

    @property
    def env(self) -> dict[str, str]:
        """The services' environment."""
        return self.platform.env

    @property
    def tmp(self) -> Path:
        """Where logs and data go."""
        return self.platform.tmp

    @property
    def subs(self) -> subscriptions_pb2_grpc.SubscriptionServiceStub:
        return self.platform.subs

    @property
    def senders(self) -> sender_pb2_grpc.SenderServiceStub:
        return self.platform.sender

    async def create(
        self, tenant: str, spec: subscriptions_pb2.SubscriptionSpec
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        """Create a subscription and wait until it is on SUBSCRIPTIONS."""
        return await self.platform.create_subscription(tenant, spec)

    async def attempts(self, tenant: str) -> AttemptLog:
        return await self.platform.attempts(tenant)

    def job(
        self,
        subscription: subscriptions_pb2.Subscription,
        *,
        trigger: str = "OnNew",
        event_id: str | None = None,
    ) -> messages_pb2.DeliveryJob:
        """A job as the router makes it (not yet published)."""
        return self.platform.job(subscription, trigger=trigger, event_id=event_id)

    async def publish(self, job: messages_pb2.DeliveryJob) -> None:
        """Put ``job`` on DELIVERIES the way the router does (stored when this returns)."""
        await self.platform.put_job(job)

    async def send(
        self,
        subscription: subscriptions_pb2.Subscription,
        *,
        trigger: str = "OnNew",
        event_id: str | None = None,
    ) -> messages_pb2.DeliveryJob:
        """Put one job on DELIVERIES the way the router does."""
        job = self.job(subscription, trigger=trigger, event_id=event_id)
        await self.publish(job)
        return job


@contextlib.asynccontextmanager
async def running_stack(tmp: Path, **settings: str) -> AsyncIterator[Stack]:
    """A nats-server, the subscriptions service and one sender; ``settings`` are extra
    environment variables of both services (``WEBHOOKS_SENDER_TIMEOUT_MS="2000"``)."""
    async with running_platform(tmp, routers=0, failures=False, env=settings) as running:
        yield Stack(running)
