"""The outbox relay: every stored domain event onto the SUBSCRIPTIONS stream, in order, once.

A command's reply waits (briefly) until the relay has published what the command saved,
so an event published after the reply is routed with the change: the router catches up
with SUBSCRIPTIONS before routing. While the broker is unreachable replies do not wait.

Its position is the stream itself: the last relay message's ``Nats-Msg-Id`` names the last
notification published, so a restart (or a kill -9 between a save and its publish) resumes
exactly there. Messages the relay did not publish (garbage, or anything without a relay id
that names a stored notification) are passed over while looking back for it (at most
``POSITION_LOOKBACK`` messages). Each publish also says which stream sequence it expects to
follow (``Nats-Expected-Last-Sequence``): if another replica's relay got ahead, the broker
refuses the publish and this relay re-reads its position instead of reordering the stream.

No single record stops it: a notification that cannot be made into a message, or that the
broker will never take (over max_payload), is set aside (webhooks_messaging.deadletters:
``deadletters.relay.<reason>.notification-<id>``, counted, logged once a minute) and the
relay goes on with the next. That is safe because each message carries its subscription's
whole state: the next change of that subscription publishes a state that supersedes the
skipped one, and every other subscription's changes are not held up meanwhile. (What the
router and the sender keep until then is the subscription's previous state.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from nats.aio.client import Client as NATS
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from webhooks.v1 import messages_pb2
from webhooks_config import Settings
from webhooks_messaging import (
    SUBSCRIPTIONS,
    certificate_subject,
    connect,
    declare_streams,
    subscription_subject,
)
from webhooks_messaging.deadletters import (
    RELAY,
    TOO_LARGE,
    UNPUBLISHABLE,
    DeadLetters,
    Original,
)
from webhooks_messaging.positions import PositionWaiters
from webhooks_messaging.waiting import first_of, sleep_unless
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
# How far back from the stream's end the relay looks for its last message, past messages
# it did not publish; beyond it, it stops and says so rather than publish everything again.
POSITION_LOOKBACK = 10_000
# Room kept under the broker's max_payload for the headers (ids, trace context).
HEADER_ALLOWANCE = 4096
# JetStream API error codes of a message the stream will never take.
_MESSAGE_TOO_LARGE = frozenset({10054, 10097})
PAUSED_LOG_EVERY_SECONDS = 60.0


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
        self._scanned = 0  # last notification id read, published or not
        self._saved_lock = threading.Lock()
        self.saved_up_to = 0  # the last notification id saved by this process
        self._connected = False
        self._published = PositionWaiters()
        self._last_seq = 0  # the stream's last sequence, as far as this relay knows
        self._max_payload = 1024 * 1024  # the broker's, once connected
        self.dead = DeadLetters(RELAY)
        self._set_aside: set[int] = set()  # notification ids after ``position`` set aside

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

    @property
    def scanned(self) -> int:
        """The last notification id read (published, set aside or not to be published)."""
        return self._scanned

    def _advanced(self, scanned: int) -> None:
        self._scanned = scanned
        self._published.reached(scanned)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        paused_at, paused_why = -PAUSED_LOG_EVERY_SECONDS, ""
        while not stop.is_set():
            nc: NATS | None = None
            try:
                nc = await connect(self._settings, "subscriptions-relay")
                js = nc.jetstream()
                await declare_streams(js, self._settings)
                self._max_payload = int(nc.max_payload or self._max_payload)
                self.dead.use(nc)
                await self._read_position(js)
                self._connected = True
                await self._follow(js, stop)
            except Exception as error:  # broker down or refused: retry, the store keeps all
                # Once a minute for the same cause: a broker away for an hour is one line
                # a minute, not one a second.
                now = time.monotonic()
                why = str(error)
                if why != paused_why or now - paused_at >= PAUSED_LOG_EVERY_SECONDS:
                    log.warning("outbox relay paused: %s", error)
                    paused_at, paused_why = now, why
                self._connected = False
                await sleep_unless(stop, 1.0)
            finally:
                self._connected = False
                if stop.is_set():
                    await self.dead.flush(2.0)  # letters still queued, stored (briefly)
                self.dead.use(None)
                if nc is not None:
                    await _close(nc)

    async def _read_position(self, js: JetStreamContext) -> None:
        """The last notification on the stream and the stream's last sequence."""
        info = await js.stream_info(SUBSCRIPTIONS)
        self._folder = AggregateFolder(self._app)
        self._last_seq = info.state.last_seq
        self.position = self._scanned = 0
        self.last_msg_id = ""
        if info.state.last_seq == 0 or info.state.messages == 0:
            return
        newest = await asyncio.to_thread(self._app.recorder.max_notification_id)
        oldest = max(info.state.first_seq, info.state.last_seq - POSITION_LOOKBACK + 1)
        passed = 0
        for seq in range(info.state.last_seq, oldest - 1, -1):
            try:
                message = await js.get_msg(SUBSCRIPTIONS, seq=seq)
            except NotFoundError:
                continue  # deleted
            found = _relay_position(message.headers or {}, message.data or b"", newest or 0)
            if found is not None:
                self.position = self._scanned = found
                self.last_msg_id = f"{MSG_ID_PREFIX}{found}"
                break
            passed += 1
        else:
            if oldest > info.state.first_seq:
                raise RuntimeError(
                    f"none of the last {POSITION_LOOKBACK} messages on {SUBSCRIPTIONS} is the "
                    "relay's: its position is unknown (remove the foreign messages)"
                )
        self._set_aside = {n for n in self._set_aside if n > self.position}
        if passed:
            log.warning(
                "outbox relay: passed over %d messages on %s that it did not publish",
                passed,
                SUBSCRIPTIONS,
            )
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
            await first_of(self._wake.wait(), stop, self._settings.relay_poll_seconds)

    def _next_batch(self) -> tuple[list[Outgoing], int, bool]:
        """The next events to publish, the last notification id read, and whether more wait.
        A notification that cannot be published is set aside here."""
        notifications = self._app.recorder.select_notifications(
            start=self._scanned, limit=BATCH, inclusive_of_start=False
        )
        batch = []
        for notification in notifications:
            if notification.id in self._set_aside:
                continue
            try:
                outgoing = self._outgoing(notification)
            except Exception as error:
                # It cannot be folded, mapped or addressed: publishing it will never work.
                self._set_aside_notification(
                    notification.id, UNPUBLISHABLE, f"{type(error).__name__}: {error}", None
                )
                continue
            if outgoing is None:
                continue  # name reservations are not published
            if len(outgoing.payload) + HEADER_ALLOWANCE > self._max_payload:
                self._set_aside_notification(
                    notification.id,
                    TOO_LARGE,
                    f"{outgoing.event_type}: {len(outgoing.payload)} bytes; the broker takes "
                    f"at most {self._max_payload} (max_payload)",
                    outgoing,
                )
                continue
            batch.append(outgoing)
        scanned = notifications[-1].id if notifications else self._scanned
        return batch, scanned, len(notifications) == BATCH

    def _outgoing(self, notification: Any) -> Outgoing | None:
        event = self._app.mapper.to_domain_event(notification)
        state = self._folder.fold(event)
        message = domain_event_message(notification.id, event, state)
        if message is None:
            return None
        if message.HasField("subscription"):
            state_message = message.subscription
            subject = subscription_subject(state_message.tenant, state_message.id)
        else:
            subject = certificate_subject(message.certificate.tenant, message.certificate.id)
        return Outgoing(
            notification_id=notification.id,
            subject=subject,
            payload=message.SerializeToString(),
            event_type=message.event_type,
            trace=dict(getattr(event, "trace", {}) or {}),
        )

    def _set_aside_notification(
        self, notification_id: int, reason: str, detail: str, outgoing: Outgoing | None
    ) -> None:
        self._set_aside.add(notification_id)
        self.dead.set_aside(
            reason,
            f"notification {notification_id}: {detail}",
            Original(
                subject=outgoing.subject if outgoing else "",
                data=outgoing.payload if outgoing else b"",
                headers={"Webhooks-Event-Type": outgoing.event_type} if outgoing else None,
                notification_id=notification_id,
            ),
        )

    async def _publish_batch(self, js: JetStreamContext, batch: list[Outgoing]) -> bool:
        """Publishes a batch in order; False when the stream moved on without this relay
        (or a message was refused for good and set aside: the rest is published again).

        The publishes are pipelined on one connection, which keeps their order; each names
        the stream sequence it must follow, so if one is refused every later one is refused
        too and nothing lands out of order.
        """
        if not batch:
            return True
        results = await asyncio.gather(
            *(self._publish(js, o, self._last_seq + i) for i, o in enumerate(batch))
        )
        for outgoing, result in zip(batch, results, strict=True):
            if isinstance(result, str):
                self._set_aside_notification(outgoing.notification_id, TOO_LARGE, result, outgoing)
                return False
            if result is None:
                return False
            self.position = outgoing.notification_id
            self.last_msg_id = outgoing.msg_id
            self._last_seq = result
        self._set_aside = {n for n in self._set_aside if n > self.position}
        return True

    async def _publish(
        self, js: JetStreamContext, outgoing: Outgoing, after: int
    ) -> int | str | None:
        """The stream sequence it was stored at; None when refused (the stream is not
        where this relay thought); a string saying why when it will never be taken."""
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
            # Only right after the message this relay knows to be last (two relays
            # starting together, or one behind the other, must not both publish).
            headers["Nats-Expected-Last-Sequence"] = str(after)
            try:
                ack = await js.publish(outgoing.subject, outgoing.payload, headers=headers)
            except MaxPayloadError as error:
                return f"{len(outgoing.payload)} bytes: {error}"
            except APIError as error:
                if error.err_code in _MESSAGE_TOO_LARGE:
                    return f"{len(outgoing.payload)} bytes: {error}"
                log.info("relay publish of %s refused: %s", outgoing.msg_id, error)
                return None
        return int(ack.seq)


def _relay_position(headers: dict[str, str], data: bytes, newest: int) -> int | None:
    """The notification id of a message the relay published, or None for anything else:
    no relay id, a payload that does not carry that notification, or an id beyond what the
    event store holds (a forged position must not make the relay skip changes)."""
    msg_id = headers.get("Nats-Msg-Id", "")
    if not msg_id.startswith(MSG_ID_PREFIX):
        return None
    try:
        notification_id = int(msg_id[len(MSG_ID_PREFIX) :])
        event = messages_pb2.SubscriptionDomainEvent.FromString(data)
    except (ValueError, DecodeError):
        return None
    if event.notification_id != notification_id or not 0 < notification_id <= newest:
        return None
    return notification_id


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
