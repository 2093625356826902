"""The console's lists at the size of a large organisation (issue 16), in headless Chromium
against the whole platform as processes (nats-server, the four services, the console).

1,500 webhooks are created through the API (tests/support/large_console.py); two of them,
one early and one late in name order (after the first 1,000), receive an event each that
fails. Then: the Failed Events webhook picker finds each by part of its name (no cap, the
page no longer embeds every webhook) and filters by it, with and without scripts; the
trigger filter takes the trigger as the list shows it and an unknown one keeps the filters
with a sentence; the Webhooks list's total, sort and "with failures" filter; menus, tabs and
the switch by keyboard; dates in the viewer's time zone; the layout at 1400, 1024 and 390 px
(no horizontal page scroll), screenshots in tests/artifacts/console/lists-<page>-<width>.png.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, async_playwright

from tests.support.console_stack import ARTIFACTS, console_process, require_browser
from tests.support.large_console import (
    COUNT,
    EARLY,
    LATE,
    TENANT,
    TOKEN,
    Stack,
    bulk_name,
    create_many,
    eventually,
    failed_of,
)
from tests.support.platform_stack import RPC_TIMEOUT, platform, platform_event, running_platform
from tests.support.receivers import HttpsReceiver, Reply
from webhooks.v1 import failures_pb2, subscriptions_pb2

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("console-lists")
    tokens = [{"name": "admin", "token": TOKEN, "tenant": TENANT}]
    async with (
        running_platform(tmp, tokens=tokens) as running,
        HttpsReceiver(running.pki) as receiver,
        async_playwright() as playwright,
    ):
        receiver.reply("/early", Reply(500, b"billing is down"))
        receiver.reply("/late", Reply(503, b"try later"))
        started = time.monotonic()
        ids = await create_many(running, receiver)
        print(f"{COUNT} webhooks created in {time.monotonic() - started:.1f} s")
        for subscription_id in ids.values():
            sub = await running.subs.GetSubscription(
                subscriptions_pb2.GetSubscriptionRequest(id=subscription_id),
                metadata=platform(TENANT),
                timeout=RPC_TIMEOUT,
            )
            await running.on_stream(sub)
        await running.publish(
            [
                platform_event(TENANT, "Object", "OnNewActivity"),
                platform_event(TENANT, "WhatsApp", "OnMessageStatus"),
            ]
        )
        for name, subscription_id in ids.items():

            async def failed(s: str = subscription_id) -> list[failures_pb2.FailedEvent]:
                return await failed_of(running, s)

            await eventually(failed, f"a failed event of {name}")
        console = console_process(running)
        await console.start()
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = await browser.new_context(
            viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Tokyo", locale="en-GB"
        )
        context.set_default_timeout(15_000)
        page = await context.new_page()
        try:
            yield Stack(running, console, browser, context, page, ids)
        finally:
            await browser.close()
            await console.stop()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"lists-{name}.png"), full_page=True)


async def test_sign_in_and_the_total(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/sign-in")
    await page.fill("input[name=token]", TOKEN)
    await page.fill("input[name=tenant]", "")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert await page.inner_text("#total") == "1,500 webhooks"
    assert await page.locator("#subscriptions tbody tr[data-id]").count() == 20


async def test_the_picker_finds_any_webhook_and_filters_by_it(stack: Stack) -> None:
    page = stack.page
    response = await page.goto(f"{stack.url}/failed-events")
    assert response is not None and response.ok
    html = await page.content()
    assert bulk_name(1200) not in html and '<option value="' + stack.ids[LATE] not in html
    assert len(html.encode()) < 40_000, f"{len(html.encode())} bytes: no list of every webhook"
    for typed, name in (("1444 whats", LATE), ("0007", EARLY)):
        picker = page.locator("#webhook-picker")
        await picker.fill("")
        await picker.press_sequentially(typed, delay=20)
        option = page.locator("#webhook-options [role=option]", has_text=name)
        await option.wait_for()
        assert await picker.get_attribute("aria-expanded") == "true"
        await picker.press("ArrowDown")
        selected = page.locator("#webhook-options [role=option][aria-selected=true]")
        assert await selected.inner_text() == name
        assert await picker.get_attribute("aria-activedescendant") == await selected.get_attribute(
            "id"
        )
        await picker.press("Enter")  # picks, does not submit
        assert await page.input_value("#webhook-id") == stack.ids[name]
        assert await page.input_value("#webhook-picker") == name
        assert await page.locator("#webhook-options").is_hidden()
        await page.click("#filters button[type=submit]")
        await page.wait_for_url(f"**/failed-events?*subscription={stack.ids[name]}*")
        rows = page.locator("#failed-events tbody tr[data-delivery]")
        assert await rows.count() == 1
        assert await rows.first.locator("td").first.inner_text() == name
        assert await page.input_value("#webhook-picker") == name
    # Escape closes the suggestions and keeps what was typed.
    picker = page.locator("#webhook-picker")
    await picker.fill("")
    await picker.press_sequentially("Hook 13", delay=20)
    await page.locator("#webhook-options [role=option]").first.wait_for()
    assert await page.locator("#webhook-options [role=option]").count() == 20
    assert "type more" in await page.inner_text("#webhook-options")
    await picker.press("ArrowDown")
    await shot(page, "failed-events-picker-open")
    await picker.press("Escape")
    assert await page.locator("#webhook-options").is_hidden()
    assert await page.input_value("#webhook-picker") == "Hook 13"


async def test_without_scripts_the_typed_name_is_looked_up(stack: Stack) -> None:
    context = await stack.browser.new_context(java_script_enabled=False)
    try:
        await context.add_cookies(await stack.context.cookies())  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(f"{stack.url}/failed-events")
        await page.fill("#webhook-picker", "1444 WHATSAPP")
        await page.click("#filters button[type=submit]")
        rows = page.locator("#failed-events tbody tr[data-delivery]")
        assert await rows.count() == 1
        assert LATE in await rows.first.inner_text()
        await page.fill("#webhook-picker", "Hook 14")
        await page.click("#filters button[type=submit]")
        problem = await page.inner_text("#filter-problem")
        assert problem.startswith("Several webhooks' names contain “Hook 14”"), problem
        assert await page.input_value("#webhook-picker") == "Hook 14"
        await page.fill("#webhook-picker", "no such hook")
        await page.click("#filters button[type=submit]")
        assert (
            await page.inner_text("#filter-problem") == "No webhook's name contains “no such hook”."
        )
    finally:
        await context.close()


async def test_the_trigger_filter_takes_the_name_the_list_shows(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/failed-events")
    shown = await page.locator("#failed-events td.event-trigger").all_inner_texts()
    assert sorted(shown) == ["On Message Status", "On New Activity"], shown
    await page.fill("#filters input[name=trigger]", "On Message Status")
    await page.click("#filters button[type=submit]")
    rows = page.locator("#failed-events tbody tr[data-delivery]")
    assert await rows.count() == 1
    assert LATE in await rows.first.inner_text()
    # Unknown: a sentence above the filters, every filter kept.
    await page.select_option("#filters select[name=state]", "failed")
    await page.fill("#filters input[name=subchannel]", "sales")
    await page.fill("#filters input[name=trigger]", "On Banana")
    await page.click("#filters button[type=submit]")
    problem = await page.inner_text("#filter-problem")
    assert problem.startswith("No trigger is called “On Banana”"), problem
    assert "INVALID_ARGUMENT" not in await page.inner_text("main")
    assert await page.input_value("#filters input[name=trigger]") == "On Banana"
    trigger_box = page.locator("#filters input[name=trigger]")
    assert await trigger_box.get_attribute("aria-invalid") == "true"
    assert await trigger_box.get_attribute("aria-describedby") == "filter-problem"
    assert await page.input_value("#filters select[name=state]") == "failed"
    assert await page.input_value("#filters input[name=subchannel]") == "sales"
    # With an entity: the entity's own triggers are named.
    await page.select_option("#filters select[name=entity]", "WhatsApp")
    await page.fill("#filters input[name=trigger]", "On New Activity")
    await page.click("#filters button[type=submit]")
    problem = await page.inner_text("#filter-problem")
    assert problem.startswith("WhatsApp has no trigger “On New Activity”"), problem
    assert "On Message Status" in problem
    # A value only the failures service refuses: its sentence, the filters kept.
    await page.goto(f"{stack.url}/failed-events?error_code=banana&state=failed")
    problem = await page.inner_text("#filter-problem")
    assert problem.startswith("The Error code filter “banana” cannot be used: write an HTTP"), (
        problem
    )
    assert await page.get_attribute("#filters input[name=error_code]", "aria-invalid") == "true"
    assert await page.input_value("#filters input[name=error_code]") == "banana"
    await shot(page, "failed-events-unknown-trigger")


async def test_sort_and_with_failures(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    await page.select_option("#sort", "name")  # submits itself
    await page.wait_for_url("**/webhooks?*sort=name*")
    names = await page.locator("#subscriptions a.name").all_inner_texts()
    assert names[:3] == ["Hook 0000", "Hook 0001", "Hook 0002"], names
    assert await page.inner_text("#total") == "1,500 webhooks"
    await page.click("a[rel=next]")
    names = await page.locator("#subscriptions a.name").all_inner_texts()
    assert names[0] == "Hook 0020", names
    await page.goto(f"{stack.url}/webhooks")
    await page.select_option("#sort", "failures")
    await page.wait_for_url("**/webhooks?*sort=failures*")
    names = await page.locator("#subscriptions a.name").all_inner_texts()
    assert set(names[:2]) == {EARLY, LATE} and names[2] == "Hook 0000", names
    assert await page.inner_text("#total") == "1,500 webhooks"
    await page.click("a[rel=next]")
    names = await page.locator("#subscriptions a.name").all_inner_texts()
    assert names[0] == "Hook 0019" and len(names) == 20, names
    await page.goto(f"{stack.url}/webhooks?sort=name")
    await page.check("#with-failures")
    await page.wait_for_url("**/webhooks?*failures=1*")
    names = await page.locator("#subscriptions a.name").all_inner_texts()
    assert names == [EARLY, LATE], names
    assert await page.inner_text("#total") == "2 webhooks with failures"
    warning = page.locator(f"#subscriptions tr[data-name='{LATE}'] .status a.warning")
    label = await warning.get_attribute("aria-label") or ""
    assert label.startswith("1 failed delivery attempt in 1 event"), label
    await page.fill("input[name=q]", "1444")
    await page.click("form.search button")
    assert await page.inner_text("#total") == "1 webhook with failures matches “1444”"
    await page.goto(f"{stack.url}/webhooks?sort=modified&q=hook+00")
    assert await page.inner_text("#total") == "100 webhooks match “hook 00”"


async def test_menus_close_on_escape_and_outside_and_one_at_a_time(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks?sort=name")
    menus = page.locator("#subscriptions details.menu")
    first, second = menus.nth(0), menus.nth(6)  # not under the first's open menu
    await first.locator("summary").click()
    assert await first.get_attribute("open") is not None
    await page.keyboard.press("Escape")
    assert await first.get_attribute("open") is None
    assert await first.locator("summary").evaluate("e => e === document.activeElement")
    await first.locator("summary").click()
    await second.locator("summary").click()
    assert await first.get_attribute("open") is None and await second.get_attribute("open") == ""
    await page.click("h1")
    assert await second.get_attribute("open") is None
    # By keyboard: Enter opens it, Escape closes it.
    await first.locator("summary").focus()
    await page.keyboard.press("Enter")
    assert await first.get_attribute("open") == ""
    await page.keyboard.press("Escape")
    assert await page.locator("details.menu[open]").count() == 0


async def test_the_switch_is_a_labelled_switch(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks?sort=name")
    switch = page.get_by_role("switch", name="Active: Hook 0000")
    assert await switch.is_checked()
    await switch.focus()
    async with page.expect_navigation():
        await page.keyboard.press("Space")  # submits itself
    assert "Webhook “Hook 0000” is off." in await page.inner_text(".flash")
    switch = page.get_by_role("switch", name="Active: Hook 0000")
    assert not await switch.is_checked()
    async with page.expect_navigation():
        await switch.click()
    assert await page.get_by_role("switch", name="Active: Hook 0000").is_checked()


async def test_tabs_move_with_arrow_keys(stack: Stack) -> None:
    page = stack.page
    delivery = (await failed_of(stack.platform, stack.ids[EARLY]))[0].delivery_id
    await page.goto(f"{stack.url}/failed-events/{delivery}")
    overview = page.locator("#tab-overview")
    assert await overview.get_attribute("aria-selected") == "true"
    assert await overview.get_attribute("tabindex") == "0"
    assert await page.locator("#tab-payload").get_attribute("tabindex") == "-1"
    await overview.focus()
    await page.keyboard.press("ArrowRight")
    assert await page.locator("#tab-payload").get_attribute("aria-selected") == "true"
    assert await page.locator("#panel-payload").is_visible()
    assert not await page.locator("#panel-overview").is_visible()
    assert await page.locator("#tab-payload").evaluate("e => e === document.activeElement")
    await page.keyboard.press("ArrowRight")
    assert await page.locator("#panel-history").is_visible()
    await page.keyboard.press("ArrowRight")  # wraps round
    assert await page.locator("#panel-overview").is_visible()
    await page.keyboard.press("ArrowLeft")
    assert await page.locator("#panel-history").is_visible()
    assert await page.locator("#tab-history").get_attribute("tabindex") == "0"


async def test_dates_are_local_and_on_one_line(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/failed-events")
    moment = page.locator("#failed-events td.time time").first
    utc = await moment.get_attribute("datetime") or ""
    shown = await moment.inner_text()
    expected = await page.evaluate(
        "iso => new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'})"
        ".format(new Date(iso))",
        utc,
    )
    assert shown == expected and "UTC" not in shown and "Z" not in shown, (utc, shown)
    assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"
    height = await moment.evaluate("e => e.getBoundingClientRect().height")
    line = await moment.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert height < line * 1.5, "one line"
    await page.goto(f"{stack.url}/webhooks")
    for cell in await page.locator("#subscriptions td.dates time").all():
        assert await cell.evaluate("e => e.getClientRects().length") == 1


async def test_a_favicon(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    href = await page.locator("link[rel=icon]").get_attribute("href")
    assert href
    response = await page.request.get(f"{stack.url}{href}")
    assert response.ok and "svg" in response.headers["content-type"]


@pytest.mark.parametrize("width", [1400, 1024, 390])
async def test_layout(stack: Stack, width: int) -> None:
    page = stack.page
    await page.set_viewport_size({"width": width, "height": 900})
    try:
        pages = {
            "webhooks": "/webhooks",
            "webhooks-with-failures": "/webhooks?failures=1",
            "failed-events": "/failed-events",
        }
        for name, path in pages.items():
            await page.goto(f"{stack.url}{path}")
            await shot(page, f"{name}-{width}")
            widths = await page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            if width >= 1024:
                assert widths[0] <= widths[1], f"{name} at {width}: scrolls sideways {widths}"
            else:
                assert widths[0] <= widths[1] + 1, f"{name} at {width}: page scrolls {widths}"
            wrap = page.locator(".table-wrap").first
            if width >= 1024:
                fits = await wrap.evaluate("e => e.scrollWidth <= e.clientWidth")
                assert fits, f"{name} at {width}: the table scrolls inside its box"
        delivery = (await failed_of(stack.platform, stack.ids[LATE]))[0].delivery_id
        await page.goto(f"{stack.url}/failed-events/redeliver?subscription={stack.ids[LATE]}")
        await shot(page, f"confirm-redeliver-{width}")
        button = await page.locator("#confirm-redeliver").bounding_box()
        cancel = await page.locator("text=Cancel").bounding_box()
        assert button and cancel
        assert cancel["x"] >= button["x"] + button["width"] + 8 or cancel["y"] > button["y"]
        await page.goto(f"{stack.url}/failed-events/{delivery}")
        await shot(page, f"failed-event-{width}")
    finally:
        await page.set_viewport_size({"width": 1400, "height": 1000})
