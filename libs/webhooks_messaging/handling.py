"""A message whose handling keeps failing: tried again while it may yet work, then set aside.

A durable consumer (the router's of EVENTS, the sender's of DELIVERIES) that fails to
handle a message naks it, and the broker delivers it again. That is right when the
failure is the broker's or the network's: it passes, and the message must not be lost.
It is wrong for any other exception (a bug, a value the code did not foresee): it fails
the same way on every delivery, for ever, and logs each time. So:

- transient (``is_transient``): a NATS error (``nats.errors.Error`` and its JetStream
  subclasses), a timeout, a connection or other OS error. Nakked, never set aside,
  however often it comes back;
- anything else: nakked until the message has been delivered ``MAX_DELIVERIES`` times,
  then terminated and set aside (deadletters.py, reason NOT_APPLIED, the error as the
  detail), and the stream goes on. Skipping it is safe for the same reasons as for a
  malformed message: it concerns one event or one job, it is kept on DEADLETTERS, and
  the event is still on EVENTS to be replayed once the cause is fixed.

``gives_up`` is the rule, pure. ``Retrying`` applies it to a message and logs the repeated
failure at most once per kind (error type, transient or not) and minute.
"""

from __future__ import annotations

import contextlib
import logging

import nats.errors
from nats.aio.msg import Msg

from webhooks_messaging.deadletters import NOT_APPLIED, DeadLetters
from webhooks_telemetry.logs import LogEvery

log = logging.getLogger(__name__)

# Deliveries of a message whose handling failed for a reason not the broker's before it
# is set aside. More than one: a failure may still be a race with something that passes
# (a subscription changing under the job), and redeliveries are seconds apart, so five
# is a few seconds to ten. Few enough that a poison message stops costing a consumer
# slot and a retry loop within a minute.
MAX_DELIVERIES = 5

# The broker's or the network's: nats.errors.Error covers nats.js.errors.Error (and
# nats.errors.TimeoutError); TimeoutError is also asyncio's; ConnectionError is an OSError.
TRANSIENT = (nats.errors.Error, TimeoutError, OSError)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may pass by itself (broker away, network down, a timeout)."""
    return isinstance(error, TRANSIENT)


def gives_up(*, transient: bool, deliveries: int) -> bool:
    """Whether a message whose handling failed on its ``deliveries``-th delivery is set
    aside now rather than delivered again. ``deliveries`` < 1 (not known) counts as 1."""
    return not transient and max(deliveries, 1) >= MAX_DELIVERIES


def describe(error: BaseException) -> str:
    """The error as a letter's detail and in logs: its type, then its text."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def deliveries(msg: Msg) -> int:
    """How many times the broker has delivered ``msg`` (0: not a JetStream message)."""
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # no reply subject, or not one of JetStream's
        return 0


class Retrying:
    """Settles the messages one consumer failed to handle: nak (with ``delay``) or, by
    ``gives_up``, terminate and set aside on ``dead``."""

    def __init__(self, dead: DeadLetters, *, delay: float) -> None:
        self._dead = dead
        self._delay = delay
        self._log_every = LogEvery()
        self.set_aside = 0  # messages given up on
        self.retried = 0  # naks

    async def failed(self, msg: Msg, detail: str, *, transient: bool, kind: str, what: str) -> None:
        """Handling ``msg`` (``what``: "event e-1", "job j-1") failed with ``detail``;
        ``kind`` names the error (its type) for the rate-limited log line."""
        delivered = deliveries(msg)
        if gives_up(transient=transient, deliveries=delivered):
            self.set_aside += 1
            await self._dead.terminate(
                msg, NOT_APPLIED, f"failed {delivered} times, the last with {detail}"
            )
            return
        self.retried += 1
        held = self._log_every.due((kind, transient))
        if held is not None:
            then = (
                "it comes back"
                if transient
                else f"it comes back, and is set aside after {MAX_DELIVERIES} deliveries"
            )
            log.warning(
                "%s: handling %s failed (delivery %d): %s; %s; %d more such failures "
                "since the last line",
                self._dead.component,
                what,
                delivered,
                detail,
                then,
                held,
            )
        with contextlib.suppress(Exception):  # already settled, or the broker is away
            await msg.nak(delay=self._delay)

    async def failed_with(self, msg: Msg, error: BaseException, *, what: str) -> None:
        """``failed`` for an exception at hand."""
        await self.failed(
            msg,
            describe(error),
            transient=is_transient(error),
            kind=type(error).__name__,
            what=what,
        )
