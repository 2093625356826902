"""Publishing delivery jobs onto DELIVERIES: each in its own span, acknowledged by the broker.

Publishes are pipelined (many in flight on one connection) and every one is awaited, so a
caller knows all of an event's jobs are stored before it acknowledges the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from webhooks_messaging import DELIVERIES
from webhooks_router.jobs import OutgoingJob
from webhooks_telemetry import inject_headers

tracer = trace.get_tracer("webhooks.router")


async def publish_job(js: JetStreamContext, outgoing: OutgoingJob) -> None:
    job = outgoing.job
    with tracer.start_as_current_span(
        f"publish {DELIVERIES}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": outgoing.subject,
            "webhooks.delivery_id": job.delivery_id,
            "webhooks.subscription_id": job.subscription_id,
        },
    ):
        headers = inject_headers({"Nats-Msg-Id": outgoing.msg_id})
        job.trace_context.update({k: v for k, v in headers.items() if k != "Nats-Msg-Id"})
        await js.publish(
            outgoing.subject, job.SerializeToString(), stream=DELIVERIES, headers=headers
        )


async def publish_jobs(js: JetStreamContext, jobs: Sequence[OutgoingJob]) -> None:
    """Every job stored on DELIVERIES, or an exception: then none may be acknowledged."""
    if jobs:
        await asyncio.gather(*(publish_job(js, job) for job in jobs))
