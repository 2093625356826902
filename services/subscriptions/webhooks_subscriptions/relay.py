"""The outbox relay: every stored domain event onto the SUBSCRIPTIONS stream, in order, once.

A command's reply waits (briefly) until the relay has published what the command saved,
so an event published after the reply is routed with the change: the router catches up
with SUBSCRIPTIONS before routing. While the broker is unreachable replies do not wait.

Its position is the stream itself: the last message's ``Nats-Msg-Id`` names the last
notification published, so a restart (or a kill -9 between a save and its publish) resumes
exactly there. Each publish also says which message it expects to follow
(``Nats-Expected-Last-Msg-Id``): if another replica's relay got ahead, the broker refuses the
publish and this relay re-reads its position instead of reordering the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from webhooks_config import Settings
from webhooks_messaging import (
    SUBSCRIPTIONS,
    certificate_subject,
    connect,
    declare_streams,
    subscription_subject,
)
from webhooks_messaging.positions import PositionWaiters
from webhooks_subscriptions.application import Subscriptions
from webhooks_subscriptions.folding import AggregateFolder
from webhooks_subscriptions.published import domain_event_message
from webhooks_telemetry import extract_context, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("webhooks.subscriptions.relay")
MSG_ID_PREFIX = "subscriptions:"
BATCH = 500
# How long a command's reply waits for its change to be on the stream; beyond it the reply
# goes anyway (the change is stored and the relay publishes it when it can).
PUBLISH_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Outgoing:
    notification_id: int
    subject: str
    payload: bytes
    event_type: str
    trace: dict[str, str]

    @property
    def msg_id(self) -> str:
        return f"{MSG_ID_PREFIX}{self.notification_id}"


class OutboxRelay:
    def __init__(self, app: Subscriptions, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._folder = AggregateFolder(app)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.position = 0  # last notification id on the stream
        self.last_msg_id = ""
        self._empty_last_seq = 0  # the stream's last sequence while it holds no message
        self._scanned = 0  # last notification id read, published or not
        self._saved_lock = threading.Lock()
        self.saved_up_to = 0  # the last notification id saved by this process
        self._connected = False
        self._published = PositionWaiters()

    def wake(self, notification_id: int = 0) -> None:
        """Called from the thread that saved: publish now rather than at the next poll."""
        with self._saved_lock:
            self.saved_up_to = max(self.saved_up_to, notification_id)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def published(self, notification_id: int) -> bool:
        """Waits until everything up to ``notification_id`` is on the stream (or was read
        and is not published); False when it was not within PUBLISH_WAIT_SECONDS or the
        broker is unreachable."""
        if self._scanned >= notification_id:
            return True
        if not self._connected:
            return False
        try:
            await asyncio.wait_for(self._published.wait(notification_id), PUBLISH_WAIT_SECONDS)
        except TimeoutError:
            return False
        return True

    def _advanced(self, scanned: int) -> None:
        self._scanned = scanned
        self._published.reached(scanned)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            nc: NATS | None = None
            try:
                nc = await connect(self._settings, "subscriptions-relay")
                js = nc.jetstream()
                await declare_streams(js, self._settings)
                await self._read_position(js)
                self._connected = True
                await self._follow(js, stop)
            except Exception as error:  # broker down or refused: retry, the store keeps all
                log.warning("outbox relay paused: %s", error)
                self._connected = False
                await _sleep_unless(stop, 1.0)
            finally:
                self._connected = False
                if nc is not None:
                    await _close(nc)

    async def _read_position(self, js: JetStreamContext) -> None:
        info = await js.stream_info(SUBSCRIPTIONS)
        self._folder = AggregateFolder(self._app)
        if info.state.last_seq == 0 or info.state.messages == 0:
            self.position, self.last_msg_id, self._scanned = 0, "", 0
            self._empty_last_seq = info.state.last_seq
            return
        message = await js.get_msg(SUBSCRIPTIONS, seq=info.state.last_seq)
        msg_id = (message.headers or {}).get("Nats-Msg-Id", "")
        if not msg_id.startswith(MSG_ID_PREFIX):
            raise RuntimeError(f"last message on {SUBSCRIPTIONS} has no relay id: {msg_id!r}")
        self.position = self._scanned = int(msg_id[len(MSG_ID_PREFIX) :])
        self.last_msg_id = msg_id
        log.info("outbox relay resumes after notification %d", self.position)

    async def _follow(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch, scanned, full = await asyncio.to_thread(self._next_batch)
            if not await self._publish_batch(js, batch):
                await self._read_position(js)
                continue
            self._advanced(scanned)
            if full:
                continue
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper},
                timeout=self._settings.relay_poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            stopper.cancel()

    def _next_batch(self) -> tuple[list[Outgoing], int, bool]:
        """The next events to publish, the last notification id read, and whether more wait."""
        notifications = self._app.recorder.select_notifications(
            start=self._scanned, limit=BATCH, inclusive_of_start=False
        )
        batch = []
        for notification in notifications:
            event = self._app.mapper.to_domain_event(notification)
            state = self._folder.fold(event)
            message = domain_event_message(notification.id, event, state)
            if message is None:
                continue  # name reservations are not published
            if message.HasField("subscription"):
                state_message = message.subscription
                subject = subscription_subject(state_message.tenant, state_message.id)
            else:
                subject = certificate_subject(message.certificate.tenant, message.certificate.id)
            batch.append(
                Outgoing(
                    notification_id=notification.id,
                    subject=subject,
                    payload=message.SerializeToString(),
                    event_type=message.event_type,
                    trace=dict(getattr(event, "trace", {}) or {}),
                )
            )
        scanned = notifications[-1].id if notifications else self._scanned
        return batch, scanned, len(notifications) == BATCH

    async def _publish_batch(self, js: JetStreamContext, batch: list[Outgoing]) -> bool:
        """Publishes a batch in order; False when the stream moved on without this relay.

        The publishes are pipelined on one connection, which keeps their order; each names
        the message it must follow, so if one is refused every later one is refused too and
        nothing lands out of order.
        """
        if not batch:
            return True
        expected = [self.last_msg_id] + [outgoing.msg_id for outgoing in batch[:-1]]
        results = await asyncio.gather(
            *(self._publish(js, o, after) for o, after in zip(batch, expected, strict=True))
        )
        for outgoing, published in zip(batch, results, strict=True):
            if not published:
                return False
            self.position = outgoing.notification_id
            self.last_msg_id = outgoing.msg_id
        return True

    async def _publish(self, js: JetStreamContext, outgoing: Outgoing, after: str) -> bool:
        with tracer.start_as_current_span(
            f"publish {SUBSCRIPTIONS}",
            context=extract_context(outgoing.trace),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": outgoing.subject,
                "webhooks.event_type": outgoing.event_type,
                "webhooks.notification_id": outgoing.notification_id,
            },
        ):
            headers = inject_headers(
                {"Nats-Msg-Id": outgoing.msg_id, "Webhooks-Event-Type": outgoing.event_type}
            )
            if after:
                headers["Nats-Expected-Last-Msg-Id"] = after
            else:
                # The first message: only onto a stream still empty (two relays starting
                # together must not both publish a first message).
                headers["Nats-Expected-Last-Sequence"] = str(self._empty_last_seq)
            try:
                await js.publish(outgoing.subject, outgoing.payload, headers=headers)
            except (APIError, NotFoundError) as error:
                log.warning("relay publish of %s refused: %s", outgoing.msg_id, error)
                return False
        return True


async def _close(nc: NATS) -> None:
    """Drains a connected client; closes one that is down (drain refuses it while it
    reconnects, and that must not end the relay: the broker is simply away for a while)."""
    if nc.is_closed:
        return
    if nc.is_connected:
        try:
            await nc.drain()
            return
        except Exception as error:
            log.warning("outbox relay: drain failed, closing: %s", error)
    with contextlib.suppress(Exception):
        await nc.close()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
