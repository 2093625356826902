"""Two finishing touches of issue 16, in headless Chromium against the whole platform as
processes (nats-server, the four services, the console):

- Failed Events' From and To are typed in the viewer's own time (the browser runs in
  Asia/Kolkata, UTC+05:30): an event at a known UTC time is inside a range around its
  Kolkata time and outside one around its UTC wall-clock time; the labels say the zone; a
  forged offset is a sentence with the filters kept; without scripts the filters are UTC and
  say so.
- The form's WhatsApp channels are a list of ids, one per row, with "Add channel" and
  "Remove" (without scripts "Add channel" comes back with another row), suggestions of the
  ids the organisation's other webhooks use, and a bad id's error at the field.

Screenshots: tests/artifacts/console/zones-*.png.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.support.console_stack import ARTIFACTS, ConsoleProcess, console_process, require_browser
from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Platform,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from webhooks.v1 import common_pb2, failures_pb2, subscriptions_pb2

pytestmark = pytest.mark.timeout(300)

TENANT = f"zones-{uuid.uuid4().hex[:8]}"
TOKEN = "zones-token-" + uuid.uuid4().hex
WAIT = 60.0
KOLKATA = timedelta(hours=5, minutes=30)
CHANNEL_IDS = ["wa-main", "wa-sales", "wa-support"]  # what the other webhooks listen to
ROWS = "fieldset.whatsapp-channels:visible .channel-row input"
CHANNELS_ERROR = "p.field-error[data-for='triggers[0].whatsapp_channels']"


@dataclass
class Stack:
    console: ConsoleProcess
    browser: Browser
    scripted: BrowserContext  # Asia/Kolkata
    plain: BrowserContext  # java_script_enabled=False
    failed_at: datetime  # the failed event's most recent attempt, UTC

    @property
    def url(self) -> str:
        return self.console.url


def whatsapp(name: str, channels: list[str]) -> subscriptions_pb2.SubscriptionSpec:
    trigger = common_pb2.TriggerSpec(trigger="OnMessageStatus", whatsapp_channels=channels)
    return rest(name, "https://example.com/wa", entity="WhatsApp", triggers=[trigger])


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("console-zones")
    tokens = [{"name": "admin", "token": TOKEN, "tenant": TENANT}]
    async with (
        running_platform(tmp, tokens=tokens) as running,
        HttpsReceiver(running.pki) as receiver,
        async_playwright() as playwright,
    ):
        receiver.reply("/down", Reply(500, b"down"))
        specs = [
            rest(
                "Billing", receiver.url("/down"), triggers=[common_pb2.TriggerSpec(trigger="OnNew")]
            ),
            whatsapp("WhatsApp receipts", CHANNEL_IDS[:1] + CHANNEL_IDS[2:]),
            whatsapp("WhatsApp sales", CHANNEL_IDS[1:2]),
        ]
        made = [
            await running.subs.CreateSubscription(
                subscriptions_pb2.CreateSubscriptionRequest(subscription=spec),
                metadata=platform(TENANT),
                timeout=RPC_TIMEOUT,
            )
            for spec in specs
        ]
        billing = made[0].subscription
        await running.on_stream(billing)
        await running.publish([platform_event(TENANT, "Object", "OnNew")])
        failed = await failed_event(running, billing.id)
        console = console_process(running)
        await console.start()
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        viewport: ViewportSize = {"width": 1400, "height": 1000}
        scripted = await browser.new_context(
            viewport=viewport, timezone_id="Asia/Kolkata", locale="en-GB"
        )
        plain = await browser.new_context(viewport=viewport, java_script_enabled=False)
        for context in (scripted, plain):
            context.set_default_timeout(30_000)
        try:
            moment = failed.last_attempt_at.ToDatetime(tzinfo=UTC)
            yield Stack(console, browser, scripted, plain, moment)
        finally:
            await browser.close()
            await console.stop()


async def failed_event(running: Platform, subscription_id: str) -> failures_pb2.FailedEvent:
    deadline = time.monotonic() + WAIT
    request = failures_pb2.ListFailedEventsRequest(
        filter=failures_pb2.FailedEventFilter(subscription_ids=[subscription_id])
    )
    while True:
        response = await running.failures.ListFailedEvents(
            request, metadata=platform(TENANT), timeout=RPC_TIMEOUT
        )
        if response.failed_events:
            found: failures_pb2.FailedEvent = response.failed_events[0]
            return found
        assert time.monotonic() < deadline, f"no failed event within {WAIT} s"
        await asyncio.sleep(0.25)


async def signed_in(stack: Stack, context: BrowserContext) -> Page:
    page = await context.new_page()
    await page.goto(f"{stack.url}/webhooks")
    if page.url != f"{stack.url}/webhooks":
        await page.fill("input[name=token]", TOKEN)
        await page.fill("input[name=tenant]", "")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{stack.url}/webhooks")
    return page


def typed(moment: datetime) -> str:
    """As a datetime-local input holds it."""
    return moment.strftime("%Y-%m-%dT%H:%M")


async def filter_between(page: Page, since: datetime, until: datetime) -> int:
    await page.fill("#filters input[name=since]", typed(since))
    await page.fill("#filters input[name=until]", typed(until))
    async with page.expect_navigation():
        await page.click("#filters button[type=submit]")
    return await page.locator("#failed-events tbody tr[data-delivery]").count()


async def test_from_and_to_are_the_viewers_time(stack: Stack) -> None:
    page = await signed_in(stack, stack.scripted)
    await page.goto(f"{stack.url}/failed-events")
    zones = await page.locator("#filters .time-zone").all_inner_texts()
    assert zones == ["(your time, UTC+05:30)"] * 2, zones
    local = stack.failed_at.replace(tzinfo=None) + KOLKATA
    minute = timedelta(minutes=2)
    assert await filter_between(page, local - minute, local + minute) == 1, "inside, in Kolkata"
    assert "tz=330" in page.url, page.url
    assert await page.input_value("#filters input[name=since]") == typed(local - minute)
    assert await page.input_value("#filters input[name=until]") == typed(local + minute)
    await page.screenshot(path=str(ARTIFACTS / "zones-failed-events.png"), full_page=True)
    # The links keep the zone: the confirmation counts the same event.
    await page.click("#redeliver-all")
    assert "tz=330" in page.url, page.url
    assert await page.inner_text("#redeliver-count") == (
        "Send 1 failed event matching the filters again?"
    )
    await page.go_back()
    assert await filter_between(page, local + minute, local + 10 * minute) == 0, "after it"
    # Its UTC wall-clock time is five and a half hours before it in Kolkata: outside.
    utc = stack.failed_at.replace(tzinfo=None)
    assert await filter_between(page, utc - minute, utc + minute) == 0, "read as UTC"


async def test_a_forged_offset_is_a_sentence_with_the_filters_kept(stack: Stack) -> None:
    page = await signed_in(stack, stack.scripted)
    for forged in ("9999", "-841", "330x"):
        answer = await page.goto(
            f"{stack.url}/failed-events?since=2026-01-02T03:04&state=failed&tz={forged}"
        )
        assert answer is not None and answer.status == 400
        problem = await page.inner_text("#filter-problem")
        assert "from UTC-14:00 to UTC+14:00" in problem, problem
        since = page.locator("#filters input[name=since]")
        assert await since.input_value() == "2026-01-02T03:04"
        assert await since.get_attribute("aria-invalid") == "true"
        assert await page.input_value("#filters select[name=state]") == "failed"
    # Filtering again from the page sends the browser's own offset.
    await page.fill("#filters input[name=since]", "")
    await page.click("#filters button[type=submit]")
    await page.wait_for_url("**/failed-events?*tz=330*")
    assert await page.locator("#filter-problem").count() == 0


async def test_without_scripts_from_and_to_are_utc(stack: Stack) -> None:
    page = await signed_in(stack, stack.plain)
    await page.goto(f"{stack.url}/failed-events")
    assert await page.locator("#filters .time-zone").all_inner_texts() == ["(UTC)"] * 2
    utc = stack.failed_at.replace(tzinfo=None)
    minute = timedelta(minutes=2)
    assert await filter_between(page, utc - minute, utc + minute) == 1
    assert await page.locator("#filters .time-zone").all_inner_texts() == ["(UTC)"] * 2
    # A link made with scripts says the zone it carries and keeps it.
    local = utc + KOLKATA
    query = f"since={typed(local - minute)}&until={typed(local + minute)}&tz=330"
    await page.goto(f"{stack.url}/failed-events?{query}")
    assert await page.locator("#filters .time-zone").all_inner_texts() == ["(UTC+05:30)"] * 2
    assert await page.locator("#failed-events tbody tr[data-delivery]").count() == 1
    assert await page.input_value("#filter-tz") == "330"


async def choose_whatsapp_trigger(page: Page, scripted: bool) -> str:
    name = f"WhatsApp {uuid.uuid4().hex[:6]}"
    await page.fill("input[name=name]", name)
    await page.select_option("#entity", "WhatsApp")
    if not scripted:
        await page.click("text=Show the triggers of this entity")
    await page.select_option("select[name='triggers[0].trigger']", "OnMessageStatus")
    if not scripted:
        await page.click("text=Show the components of this trigger")
    return name


async def test_whatsapp_channels_one_per_row_with_suggestions(stack: Stack) -> None:
    page = await signed_in(stack, stack.scripted)
    await page.goto(f"{stack.url}/webhooks/new")
    suggested = page.locator("#whatsapp-channel-ids option")
    assert [await o.get_attribute("value") for o in await suggested.all()] == CHANNEL_IDS
    name = await choose_whatsapp_trigger(page, scripted=True)
    rows = page.locator(ROWS)
    assert await rows.count() == 1
    assert await rows.first.get_attribute("list") == "whatsapp-channel-ids"
    await rows.first.fill("wa-main")
    for channel in ("wa-new", "bad id!"):
        await page.click("fieldset.whatsapp-channels:visible .add-channel")
        assert await rows.last.evaluate("box => box === document.activeElement")
        await rows.last.fill(channel)
    assert await rows.count() == 3
    assert page.url.endswith("/webhooks/new"), "added here, no round trip"
    await page.click("#step-details button.next")
    shown = await page.inner_text(CHANNELS_ERROR)
    assert shown.startswith("Each WhatsApp channel id has 1 to 128 characters"), shown
    group = page.locator("fieldset.whatsapp-channels:visible")
    assert await group.get_attribute("aria-invalid") == "true"
    marked = [await r.get_attribute("aria-invalid") for r in await rows.all()]
    assert marked == [None, None, "true"], "the bad id's row is marked"
    assert await page.is_visible("#step-details"), "Next stays on the step"
    await page.screenshot(path=str(ARTIFACTS / "zones-whatsapp-channels.png"), full_page=True)
    await page.click("fieldset.whatsapp-channels:visible .channel-row:nth-child(3) .remove-channel")
    assert [await r.input_value() for r in await rows.all()] == ["wa-main", "wa-new"]
    await page.click("#step-details button.next")
    assert await page.is_visible("#step-webhook")
    await page.fill("input[name='webhook.url']", "https://example.com/wa-new")
    await page.click("#step-webhook button.next")
    await page.click("#step-authentication button.next")
    await page.click("#save")
    await page.wait_for_url("**/signing-secret")
    await page.goto(f"{stack.url}/webhooks")
    made = await page.get_attribute(f"#subscriptions tr[data-name='{name}']", "data-id")
    await page.goto(f"{stack.url}/webhooks/{made}")
    assert "WhatsApp channels: wa-main, wa-new" in await page.inner_text("main")
    # The edit form shows them a row each (no empty row with scripts).
    await page.goto(f"{stack.url}/webhooks/{made}/edit")
    assert [await r.input_value() for r in await rows.all()] == ["wa-main", "wa-new"]


async def test_whatsapp_channels_without_scripts(stack: Stack) -> None:
    page = await signed_in(stack, stack.plain)
    await page.goto(f"{stack.url}/webhooks/new")
    await choose_whatsapp_trigger(page, scripted=False)
    rows = page.locator("fieldset.whatsapp-channels .channel-row input")
    assert await rows.count() == 1
    await rows.first.fill("wa-a")
    await page.click("fieldset.whatsapp-channels .add-channel")  # a round trip
    assert [await r.input_value() for r in await rows.all()] == ["wa-a", ""]
    await rows.last.fill("bad id!")
    await page.fill("input[name='webhook.url']", "https://example.com/wa")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.click("#save")
    assert (await answer.value).status == 400
    shown = page.locator(CHANNELS_ERROR)
    text = await shown.inner_text()
    assert text.startswith("Each WhatsApp channel id has 1 to 128 characters"), text
    group = page.locator("fieldset.whatsapp-channels")
    assert await group.get_attribute("aria-describedby") == await shown.get_attribute("id")
    summary = await page.inner_text("#error-summary")
    assert "WhatsApp channel id" in summary and "[" not in summary, summary
    assert [await r.input_value() for r in await rows.all()] == ["wa-a", "bad id!", ""]
    marked = [await r.get_attribute("aria-invalid") for r in await rows.all()]
    assert marked == [None, "true", None], "the bad id's row is marked"
    assert await rows.nth(1).get_attribute("aria-describedby") == await shown.get_attribute("id")
    await page.screenshot(path=str(ARTIFACTS / "zones-whatsapp-no-scripts.png"), full_page=True)
