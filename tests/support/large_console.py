"""A large organisation for the console's list tests (tests/e2e/test_console_lists.py):
COUNT webhooks created through the API (gRPC, concurrently, platform token), two of which,
one early and one late in name order (after the first 1,000), have a failed event each."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from playwright.async_api import Browser, BrowserContext, Page

from tests.support.console_stack import ConsoleProcess
from tests.support.platform_stack import RPC_TIMEOUT, Platform, platform, rest
from tests.support.receivers import HttpsReceiver
from webhooks.v1 import common_pb2, failures_pb2, subscriptions_pb2

TENANT = f"console-lists-{uuid.uuid4().hex[:8]}"
TOKEN = "lists-token-" + uuid.uuid4().hex
WAIT = 60.0
COUNT = 1500
EARLY = "Hook 0007 billing"  # sorts among the first 1,000 names
LATE = "Hook 1444 whatsapp receipts"  # sorts after the first 1,000
T = TypeVar("T")


def bulk_name(index: int) -> str:
    return f"Hook {index:04d}"


@dataclass
class Stack:
    platform: Platform
    console: ConsoleProcess
    browser: Browser
    context: BrowserContext
    page: Page
    ids: dict[str, str]  # name -> id of the two failing webhooks

    @property
    def url(self) -> str:
        return self.console.url


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + WAIT
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        await asyncio.sleep(0.25)


async def create_many(running: Platform, receiver: HttpsReceiver) -> dict[str, str]:
    """COUNT webhooks, 40 requests at a time; the two failing ones replace their bulk names."""
    gate = asyncio.Semaphore(40)
    specials = {
        7: rest(
            EARLY,
            receiver.url("/early"),
            triggers=[common_pb2.TriggerSpec(trigger="OnNewActivity")],
        ),
        1444: rest(
            LATE,
            receiver.url("/late"),
            entity="WhatsApp",
            triggers=[common_pb2.TriggerSpec(trigger="OnMessageStatus")],
        ),
    }

    async def one(index: int) -> subscriptions_pb2.Subscription:
        spec = specials.get(index) or rest(
            bulk_name(index), f"https://example.com/hooks/{index}", entity="User"
        )
        async with gate:
            response = await running.subs.CreateSubscription(
                subscriptions_pb2.CreateSubscriptionRequest(subscription=spec),
                metadata=platform(TENANT),
                timeout=RPC_TIMEOUT,
            )
        made: subscriptions_pb2.Subscription = response.subscription
        return made

    created = await asyncio.gather(*(one(i) for i in range(COUNT)))
    return {s.name: s.id for s in created if s.name in (EARLY, LATE)}


async def failed_of(running: Platform, subscription_id: str) -> list[failures_pb2.FailedEvent]:
    response = await running.failures.ListFailedEvents(
        failures_pb2.ListFailedEventsRequest(
            filter=failures_pb2.FailedEventFilter(subscription_ids=[subscription_id])
        ),
        metadata=platform(TENANT),
        timeout=RPC_TIMEOUT,
    )
    return list(response.failed_events)
