"""The sender run for real, for the tests that need the whole path: a nats-server, ``webhooks
serve subscriptions`` and ``webhooks serve sender`` as separate processes, as compose runs
them. The sender trusts a test CA through WEBHOOKS_CA_BUNDLE and admits loopback through
WEBHOOKS_OUTBOUND_ALLOW, as an operator would; receivers (``tests.support.receivers``) run
in the test's event loop under that CA.

Subscriptions are made through the subscriptions API; jobs are put on DELIVERIES as the
router would put them; what comes out is what the receivers got and what ATTEMPTS holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from tests.support import NatsServer
from tests.support.receivers import TestPki
from tests.support.service_process import ServiceProcess
from webhooks.v1 import (
    common_pb2,
    messages_pb2,
    sender_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhooks_catalogue.samples import sample_data
from webhooks_catalogue.shaping import shape_payload
from webhooks_messaging import SUBSCRIPTIONS, delivery_job_subject, subscription_subject
from webhooks_secrets import new_key

PLATFORM_TOKEN = "sender-test-platform-" + uuid.uuid4().hex
RPC_TIMEOUT = 20.0
SENDER_TIMEOUT_MS = 3000
FC = messages_pb2.FailureClass
SUCCEEDED = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
FAILED = messages_pb2.ATTEMPT_OUTCOME_FAILED
Metadata = tuple[tuple[str, str], ...]


def platform(tenant: str) -> Metadata:
    return (("authorization", f"Bearer {PLATFORM_TOKEN}"), ("x-webhooks-tenant", tenant))


def new_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class AttemptLog:
    """Every AttemptRecord of one tenant, as it is stored on ATTEMPTS."""

    records: list[messages_pb2.AttemptRecord] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_message(self, msg: Msg) -> None:
        self.records.append(messages_pb2.AttemptRecord.FromString(msg.data))
        self.arrived.set()

    def of(self, delivery_id: str) -> list[messages_pb2.AttemptRecord]:
        return sorted(
            (r for r in self.records if r.delivery_id == delivery_id),
            key=lambda r: (r.series, r.attempt),
        )

    async def wait(
        self,
        done: Callable[[], bool],
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for a condition, not a call
        what: str = "attempts",
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what} not seen in {timeout} s: {self.records[-5:]}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(left, 0.5))


@dataclass
class Stack:
    nats: NatsServer
    pki: TestPki
    subscriptions: ServiceProcess
    sender: ServiceProcess
    nc: NATS
    js: JetStreamContext
    env: dict[str, str] = field(default_factory=dict)  # the services' environment
    tmp: Path = Path()  # where logs and data go

    @property
    def subs(self) -> subscriptions_pb2_grpc.SubscriptionServiceStub:
        assert self.subscriptions.channel is not None
        return subscriptions_pb2_grpc.SubscriptionServiceStub(self.subscriptions.channel)

    @property
    def senders(self) -> sender_pb2_grpc.SenderServiceStub:
        assert self.sender.channel is not None
        return sender_pb2_grpc.SenderServiceStub(self.sender.channel)

    async def create(
        self, tenant: str, spec: subscriptions_pb2.SubscriptionSpec
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        """Create a subscription and wait until it is on SUBSCRIPTIONS: the router routes
        only subscriptions it has seen there, so a job never comes before its subscription
        (the API answers before the relay has published)."""
        response: subscriptions_pb2.CreateSubscriptionResponse = await self.subs.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(subscription=spec),
            metadata=platform(tenant),
            timeout=RPC_TIMEOUT,
        )
        subject = subscription_subject(tenant, response.subscription.id)
        deadline = time.monotonic() + RPC_TIMEOUT
        while True:
            try:
                await self.js.get_msg(SUBSCRIPTIONS, subject=subject)
                return response
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{subject} not on {SUBSCRIPTIONS}") from None
                await asyncio.sleep(0.02)

    async def attempts(self, tenant: str) -> AttemptLog:
        log = AttemptLog()
        await self.js.subscribe(
            f"attempts.{tenant}.>", stream="ATTEMPTS", cb=log.on_message, ordered_consumer=True
        )
        return log

    def job(
        self,
        subscription: subscriptions_pb2.Subscription,
        *,
        trigger: str = "OnNew",
        event_id: str | None = None,
    ) -> messages_pb2.DeliveryJob:
        """A job as the router makes it (not yet published)."""
        event_id = event_id or f"ev-{uuid.uuid4().hex}"
        delivery_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        job = messages_pb2.DeliveryJob(
            job_id=f"{event_id}:{subscription.id}",
            delivery_id=delivery_id,
            event_id=event_id,
            tenant=subscription.tenant,
            subscription_id=subscription.id,
            subscription_version=subscription.version,
            subscription_name=subscription.name,
            entity=subscription.entity,
            trigger=trigger,
            channel=7,
            subchannel="sales",
            payload_json=shape_payload(
                entity=subscription.entity,
                trigger=trigger,
                tenant=subscription.tenant,
                event_id=event_id,
                delivery_id=delivery_id,
                subscription_name=subscription.name,
                occurred_at=now,
                data=sample_data(subscription.entity, trigger),
                include_complete_data=False,
            ),
            attempt=1,
        )
        job.occurred_at.FromDatetime(now)
        return job

    async def publish(self, job: messages_pb2.DeliveryJob) -> None:
        """Put ``job`` on DELIVERIES the way the router does (stored when this returns)."""
        await self.js.publish(
            delivery_job_subject(job.tenant, job.subscription_id),
            job.SerializeToString(),
            headers={"Nats-Msg-Id": job.job_id},
        )

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


def rest(
    name: str,
    url: str,
    *,
    retries: int = 0,
    interval: int = 1,
    authentication: common_pb2.Authentication | None = None,
    certificate_id: str = "",
) -> subscriptions_pb2.SubscriptionSpec:
    spec = subscriptions_pb2.SubscriptionSpec(
        name=name,
        entity="Object",
        triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_REST, url=url, client_certificate_id=certificate_id
        ),
        retry_policy=common_pb2.RetryPolicy(retries=retries, interval_seconds=interval),
    )
    if authentication is not None:
        spec.authentication.CopyFrom(authentication)
    return spec


def sender_env(tmp: Path, nats_url: str, pki: TestPki, secret_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    env.update(
        {
            "WEBHOOKS_DATA_DIR": str(tmp / "data"),
            "WEBHOOKS_NATS_URL": nats_url,
            "WEBHOOKS_TOKENS": json.dumps(
                [{"name": "platform", "token": PLATFORM_TOKEN, "tenant": "*"}]
            ),
            "WEBHOOKS_SECRET_KEYS": secret_key,
            "WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS": "1",
            "WEBHOOKS_SENDER_TIMEOUT_MS": str(SENDER_TIMEOUT_MS),
            "WEBHOOKS_OUTBOUND_ALLOW": "127.0.0.0/8,::1/128",
            "WEBHOOKS_CA_BUNDLE": str(pki.ca_file),
            "WEBHOOKS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.asynccontextmanager
async def running_stack(tmp: Path, **settings: str) -> AsyncIterator[Stack]:
    """A nats-server, the subscriptions service and one sender; ``settings`` are extra
    environment variables of both services (``WEBHOOKS_SENDER_TIMEOUT_MS="2000"``)."""
    server = NatsServer(tmp / "nats")
    server.start()
    pki = TestPki.create(tmp / "pki")
    env = sender_env(tmp, server.url, pki, new_key()) | settings
    subscriptions = ServiceProcess("subscriptions", env, tmp / "subscriptions.log")
    sender = ServiceProcess("sender", env, tmp / "sender.log")
    nc = await nats.connect(server.url)
    try:
        await subscriptions.start()
        await sender.start()
        yield Stack(server, pki, subscriptions, sender, nc, nc.jetstream(), env, tmp)
    finally:
        await nc.close()
        await sender.stop()
        await subscriptions.stop()
        server.stop()
