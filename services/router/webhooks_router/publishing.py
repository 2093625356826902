"""Publishing delivery jobs onto DELIVERIES: each in its own span, acknowledged by the broker.

Jobs are sent with JetStream's asynchronous publish (no task or request per job, many in
flight on one connection) and their acknowledgements awaited together, so a caller knows
all of an event's jobs are stored before it acknowledges the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from webhooks_messaging import DELIVERIES
from webhooks_router.jobs import OutgoingJob
from webhooks_telemetry import inject_headers

tracer = trace.get_tracer("webhooks.router")
# An acknowledgement that never comes (a broker lost mid-publish) must not hang routing.
CONFIRM_TIMEOUT_SECONDS = 10.0


async def send_job(js: JetStreamContext, outgoing: OutgoingJob) -> asyncio.Future[PubAck]:
    """Sends one job; the returned future resolves when the broker has stored it."""
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
        return await js.publish_async(
            outgoing.subject, job.SerializeToString(), stream=DELIVERIES, headers=headers
        )


async def confirm(acks: Sequence[asyncio.Future[PubAck]]) -> None:
    """Every job stored, or an exception: then the event may not be acknowledged."""
    if acks:
        await asyncio.wait_for(asyncio.gather(*acks), CONFIRM_TIMEOUT_SECONDS)


async def publish_jobs(js: JetStreamContext, jobs: Sequence[OutgoingJob]) -> None:
    await confirm([await send_job(js, job) for job in jobs])
