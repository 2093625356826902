"""Endpoint health in the console, in headless Chromium against the whole platform as
processes (nats-server, the four services, ``webhooks serve console``).

Three webhooks are put into a health state the way a sender records it: an
``EndpointHealth`` written to the WEBHOOK_HEALTH bucket through ``HealthStore.change``
(compare-and-set, as the senders write). The subscriptions service watches the bucket:
it shows each record as ``Subscription.health`` and deactivates the webhook whose record
is DISABLED (``DisabledByPlatform``). The console then shows the states on the list (badges
and banners naming the webhooks), a disabled webhook's banner and its Enable button, and
one click re-enables it. The 410 that disables a webhook end to end is
tests/e2e/test_platform_disable.py's; the form's rate limit is saved here too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.console_stack import ARTIFACTS, ConsoleProcess, console_process, require_browser
from tests.support.platform_stack import RPC_TIMEOUT, Platform, platform, rest, running_platform
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2
from webhooks_client.protos import timestamp
from webhooks_health import Change, health_key
from webhooks_health.store import HealthStore

pytestmark = pytest.mark.timeout(300)

TENANT = f"console-health-{uuid.uuid4().hex[:8]}"
TOKEN = "health-token-" + uuid.uuid4().hex
WAIT = 60.0  # generous: the service's watch, under a loaded machine
HS = common_pb2.HealthState
GONE_REASON = "the endpoint answered 410 Gone"
OPEN_REASON = "7 of 10 attempts failed in 5 minutes"
T = TypeVar("T")


@dataclass
class Stack:
    platform: Platform
    console: ConsoleProcess
    browser: Browser
    page: Page
    store: HealthStore
    ids: dict[str, str]  # name -> subscription id

    @property
    def url(self) -> str:
        return self.console.url


async def create(platform_: Platform, name: str) -> str:
    response = await platform_.subs.CreateSubscription(
        subscriptions_pb2.CreateSubscriptionRequest(
            subscription=rest(name, f"https://example.com/hooks/{uuid.uuid4().hex[:6]}")
        ),
        metadata=platform(TENANT),
        timeout=RPC_TIMEOUT,
    )
    return str(response.subscription.id)


async def get(stack: Stack, name: str) -> subscriptions_pb2.Subscription:
    found: subscriptions_pb2.Subscription = await stack.platform.subs.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=stack.ids[name]),
        metadata=platform(TENANT),
        timeout=RPC_TIMEOUT,
    )
    return found


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """``check``'s first result that is not None (or falsy), within WAIT."""
    deadline = time.monotonic() + WAIT
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        await asyncio.sleep(0.25)


def record(name_id: str, state: int, **health: object) -> messages_pb2.EndpointHealth:
    """A record as a sender writes it (the fields the API shows are in ``health``)."""
    now = datetime.now(UTC)
    shown = common_pb2.Health(state=state)  # type: ignore[arg-type]
    for field, value in health.items():
        if isinstance(value, datetime):
            getattr(shown, field).CopyFrom(timestamp(value))
        else:
            setattr(shown, field, value)
    written = messages_pb2.EndpointHealth(
        tenant=TENANT, subscription_id=name_id, health=shown, streak_attempts=12
    )
    if state == HS.HEALTH_STATE_DISABLED:
        written.disabled_at.CopyFrom(timestamp(now))
    if state == HS.HEALTH_STATE_CIRCUIT_OPEN:
        written.circuit_opened_at.CopyFrom(timestamp(now))
        written.cooldown_seconds = 600
    return written


async def write(
    store: HealthStore, subscription_id: str, value: messages_pb2.EndpointHealth
) -> None:
    applied = await store.change(
        TENANT,
        subscription_id,
        lambda _current: Change(write=True, record=value, announcements=(), transitions=()),
    )
    assert applied.write, f"not written: {health_key(TENANT, subscription_id)}"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("console-health")
    tokens = [{"name": "admin", "token": TOKEN, "tenant": TENANT}]
    async with running_platform(tmp, tokens=tokens) as running, async_playwright() as playwright:
        console = console_process(running)
        await console.start()
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(15_000)
        page = await context.new_page()
        store = await HealthStore.open(running.js, replicas=1)
        ids = {name: await create(running, name) for name in ("Healthy", "Flaky", "Down", "Gone")}
        try:
            yield Stack(running, console, browser, page, store, ids)
        finally:
            await browser.close()
            await console.stop()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"health-{name}.png"), full_page=True)


async def test_sign_in(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/sign-in")
    await page.fill("input[name=token]", TOKEN)
    await page.fill("input[name=tenant]", "")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.url}/webhooks")
    badges = await page.locator("#subscriptions td.health .badge").all_inner_texts()
    assert badges == ["healthy"] * 4, badges
    assert await page.locator("section.banner").count() == 0, "nothing to report yet"


async def test_the_list_shows_each_state_and_names_the_troubled_webhooks(stack: Stack) -> None:
    now = datetime.now(UTC)
    ids = stack.ids
    await write(
        stack.store,
        ids["Flaky"],
        record(
            ids["Flaky"],
            HS.HEALTH_STATE_FAILING,
            consecutive_failures=6,
            failing_since=now - timedelta(minutes=20),
            last_failure_at=now,
            last_error="HTTP 500: database is down",
        ),
    )
    await write(
        stack.store,
        ids["Down"],
        record(
            ids["Down"],
            HS.HEALTH_STATE_CIRCUIT_OPEN,
            consecutive_failures=10,
            failing_since=now - timedelta(minutes=5),
            until=now + timedelta(minutes=10),
            reason=OPEN_REASON,
        ),
    )
    await write(
        stack.store,
        ids["Gone"],
        record(
            ids["Gone"],
            HS.HEALTH_STATE_DISABLED,
            consecutive_failures=1,
            failing_since=now,
            reason=GONE_REASON,
        ),
    )
    page = stack.page
    expected = {
        "Healthy": "healthy",
        "Flaky": "failing",
        "Down": "circuit open",
        "Gone": "disabled",
    }

    async def badges() -> dict[str, str] | None:
        await page.goto(f"{stack.url}/webhooks")
        shown = {}
        for name in expected:
            row = page.locator(f"#subscriptions tr[data-name='{name}']")
            shown[name] = await row.locator("td.health .badge").inner_text()
        return shown if shown == expected else None

    await eventually(badges, f"the badges {expected}")
    await shot(page, "10-list")
    # The banners, worst first, each naming its webhooks with a link to their page.
    states = [
        await b.get_attribute("data-state") for b in await page.locator("section.banner").all()
    ]
    assert states == ["health-disabled", "health-circuit-open", "health-failing"], states
    disabled = page.locator("section.banner[data-state='health-disabled']")
    assert "Disabled by the platform" in await disabled.inner_text()
    assert f"Gone — {GONE_REASON}" in await disabled.inner_text()
    link = disabled.locator(f"a[data-id='{ids['Gone']}']")
    assert await link.inner_text() == "Gone"
    assert await link.get_attribute("href") == f"/webhooks/{ids['Gone']}"
    opened = await page.locator("section.banner[data-state='health-circuit-open']").inner_text()
    assert "Circuit open" in opened and f"Down — {OPEN_REASON} — retrying at" in opened
    failing = await page.locator("section.banner[data-state='health-failing']").inner_text()
    assert "Failing" in failing and "Flaky — 6 attempts in a row failed since" in failing
    assert "Healthy" not in failing + opened
    # The platform disabled "Gone": the service's watch deactivates it (DisabledByPlatform).

    async def deactivated() -> subscriptions_pb2.Subscription | None:
        found = await get(stack, "Gone")
        return None if found.active else found

    gone = await eventually(deactivated, "the disabled webhook deactivated by the service")
    assert gone.health.state == HS.HEALTH_STATE_DISABLED and gone.health.reason == GONE_REASON
    await page.reload()
    toggle = page.locator("#subscriptions tr[data-name='Gone'] input[name=active]")
    assert not await toggle.is_checked(), "off"


async def test_a_disabled_webhooks_page_has_a_banner_and_enable(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    await page.locator(f"section.banner a[data-id='{stack.ids['Gone']}']").click()
    await page.wait_for_url(f"{stack.url}/webhooks/{stack.ids['Gone']}")
    banner = page.locator("#health-banner")
    assert f"Disabled by the platform: {GONE_REASON}" in await banner.inner_text()
    assert "Disabled since" in await banner.inner_text()
    history = await page.locator("#history-table td.happened").all_inner_texts()
    assert any(h.startswith(f"Disabled by the platform: {GONE_REASON} at ") for h in history), (
        history
    )
    await shot(page, "20-disabled")
    # Without the console's CSRF token the same POST is refused, and changes nothing.
    status = await page.evaluate(
        "async (url) => (await fetch(url, {method: 'POST'})).status",
        f"{stack.url}/webhooks/{stack.ids['Gone']}/enable",
    )
    assert status == 403
    assert not (await get(stack, "Gone")).active
    await page.click("#enable")
    await page.wait_for_url(f"{stack.url}/webhooks/{stack.ids['Gone']}")
    assert "“Gone” is enabled again" in await page.inner_text(".flash")
    enabled = await get(stack, "Gone")
    assert enabled.active

    async def healthy() -> bool:
        return (await get(stack, "Gone")).health.state == HS.HEALTH_STATE_HEALTHY

    await eventually(healthy, "re-enabled: the platform's record cleared")
    await page.reload()
    assert await page.locator("#health-banner").count() == 0
    await shot(page, "21-enabled")


async def test_a_circuit_open_webhooks_page_says_until_when(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks/{stack.ids['Down']}")
    text = await page.locator("#health-banner").inner_text()
    assert f"Circuit open: {OPEN_REASON} — retrying at" in text
    assert await page.locator("#enable").count() == 0, "Enable only for a disabled webhook"


async def test_the_form_saves_a_rate_limit(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks/{stack.ids['Healthy']}/edit")
    field = "input[name='webhook.rate_limit_per_second']"
    assert await page.input_value(field) == "", "no limit: empty"
    await page.click("[data-goto=webhook]")
    assert "Rate limit (deliveries per second)" in await page.inner_text("#step-webhook")
    await page.fill(field, "25")
    await page.click("[data-goto=retries]")
    await page.click("#save")
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert (await get(stack, "Healthy")).webhook.rate_limit_per_second == 25
    await page.goto(f"{stack.url}/webhooks/{stack.ids['Healthy']}/edit")
    assert await page.input_value(field) == "25"
    await page.goto(f"{stack.url}/webhooks/{stack.ids['Healthy']}")
    assert "25 per second" in await page.inner_text("#summary")
