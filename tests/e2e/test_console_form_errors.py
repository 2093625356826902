"""Every error at once, in the screen's words (issue 16), in headless Chromium against the
whole platform as processes (nats-server, the four services, ``webhooks serve console``).

Without scripts the server's one answer is what is judged: an empty form submitted once
shows every required field's error, each tied to its input (``aria-describedby``,
``aria-invalid``) and listed in the error summary. With scripts, "Next" checks its step
and stays, and focus moves to the summary after a failed submit. Two overlapping triggers
read "Trigger 2 overlaps Trigger 1: …"; no page shows a field path, a gRPC code or a UUID.
Screenshots: tests/artifacts/console/form-errors-1400.png and -1024.png.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.support.console_stack import ARTIFACTS, ConsoleProcess, console_process, require_browser
from tests.support.platform_stack import running_platform
from webhooks_console.form_errors import error_id, field_id, form_inputs
from webhooks_console.forms import SubscriptionForm

pytestmark = pytest.mark.timeout(300)

TENANT = f"form-errors-{uuid.uuid4().hex[:8]}"
TOKEN = "form-errors-token-" + uuid.uuid4().hex
# What a person must never read on a page: field paths, gRPC codes, ids.
FIELD_PATH = re.compile(
    r"\b(?:subscription|webhook|retry_policy|authentication|filter)\.[a-z_]+|\w+\[\d+\]"
)
GRPC_CODE = re.compile(
    r"\b(?:INVALID_ARGUMENT|FAILED_PRECONDITION|ALREADY_EXISTS|NOT_FOUND|PERMISSION_DENIED"
    r"|UNAUTHENTICATED|UNAVAILABLE|RESOURCE_EXHAUSTED|DEADLINE_EXCEEDED|INTERNAL|ABORTED)\b"
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@dataclass
class Stack:
    console: ConsoleProcess
    browser: Browser
    scripted: BrowserContext
    plain: BrowserContext  # java_script_enabled=False

    @property
    def url(self) -> str:
        return self.console.url


async def signed_in(stack_url: str, context: BrowserContext) -> Page:
    page = await context.new_page()
    await page.goto(f"{stack_url}/webhooks")
    if page.url == f"{stack_url}/webhooks":
        return page  # signed in already in this context
    await page.fill("input[name=token]", TOKEN)
    await page.fill("input[name=tenant]", "")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack_url}/webhooks")
    return page


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("console-form-errors")
    tokens = [{"name": "admin", "token": TOKEN, "tenant": TENANT}]
    async with running_platform(tmp, tokens=tokens) as running, async_playwright() as playwright:
        console = console_process(running)
        await console.start()
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        scripted = await browser.new_context(viewport={"width": 1400, "height": 1000})
        plain = await browser.new_context(
            viewport={"width": 1400, "height": 1000}, java_script_enabled=False
        )
        for context in (scripted, plain):
            context.set_default_timeout(30_000)
        try:
            yield Stack(console, browser, scripted, plain)
        finally:
            await browser.close()
            await console.stop()


def assert_readable(text: str) -> None:
    """No field path, gRPC code or UUID in what a person reads."""
    for pattern in (FIELD_PATH, GRPC_CODE, UUID):
        found = pattern.findall(text)
        assert not found, f"{pattern.pattern} found {found} in:\n{text}"


async def error_tied_to(page: Page, input_selector: str, name: str) -> str:
    """The error shown at ``input_selector``: its element is the one the input's
    aria-describedby names, and the input is marked invalid."""
    shown = page.locator(f"p.field-error[data-for='{name}']")
    assert await shown.is_visible(), f"no error shown at {name}"
    error_id = await shown.get_attribute("id")
    field = page.locator(input_selector)
    assert await field.get_attribute("aria-describedby") == error_id, name
    assert await field.get_attribute("aria-invalid") == "true", name
    return await shown.inner_text()


async def summary_lines(page: Page) -> list[str]:
    return [line.strip() for line in await page.locator("#error-summary li").all_inner_texts()]


async def test_an_empty_form_shows_every_error_in_one_answer(stack: Stack) -> None:
    page = await signed_in(stack.url, stack.plain)
    await page.goto(f"{stack.url}/webhooks/new")
    assert await page.is_visible("#step-retries"), "without scripts every step is shown"
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.click("#save")
    assert (await answer.value).status == 400
    name = await error_tied_to(page, "input[name=name]", "name")
    entity = await error_tied_to(page, "select[name=entity]", "entity")
    trigger = await error_tied_to(page, "select[name='triggers[0].trigger']", "triggers[0].trigger")
    url = await error_tied_to(page, "input[name='webhook.url']", "webhook.url")
    assert (name, entity, trigger, url) == (
        "Enter a name.",
        "Choose the entity.",
        "Choose the trigger event.",
        "Enter the webhook URL, starting with https://.",
    )
    summary = page.locator("#error-summary")
    assert await summary.get_attribute("role") == "alert"
    assert await summary.get_attribute("tabindex") == "-1"
    lines = await summary_lines(page)
    assert "Name: enter a name" in lines, lines
    assert "Entity: choose the entity" in lines, lines
    assert "Webhook URL: enter the webhook URL, starting with https://" in lines, lines
    heading = await page.inner_text("#error-summary h2")
    assert heading == f"There are {len(lines)} problems", heading
    # Each line links to its field.
    assert await page.get_attribute("#error-summary a >> text=Name: enter a name", "href") == (
        "#f-name"
    )
    assert "Trigger 1 event: choose the trigger event" in lines, lines
    assert len(lines) == 4, lines
    mark = page.locator("#step-details legend [data-step-errors]")
    assert await mark.inner_text() == "3 problems", lines
    assert_readable(await page.inner_text("body"))
    # Every input a violation may name has an id to link to and an error element.
    inputs = form_inputs(SubscriptionForm())
    missing = await page.evaluate(
        "ids => ids.filter(id => !document.getElementById(id))",
        [*map(field_id, inputs), *map(error_id, inputs)],
    )
    assert not missing, missing
    await page.screenshot(path=str(ARTIFACTS / "form-errors-no-script-1400.png"), full_page=True)
    await page.close()


async def test_next_checks_its_step_and_stays(stack: Stack) -> None:
    page = await signed_in(stack.url, stack.scripted)
    await page.goto(f"{stack.url}/webhooks/new")
    await page.click("#step-details button.next")
    assert await page.is_visible("#step-details") and not await page.is_visible("#step-webhook")
    assert await error_tied_to(page, "input[name=name]", "name") == "Enter a name."
    assert await error_tied_to(page, "#entity", "entity") == "Choose the entity."
    assert await summary_lines(page) == ["Name: enter a name", "Entity: choose the entity"]
    assert await page.inner_text("#error-summary h2") == "There are 2 problems"
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    assert await page.is_visible("[data-goto=details] .step-errors")
    # Fixed: the errors go, and Next moves on.
    await page.fill("input[name=name]", "Next checks")
    await page.select_option("#entity", "Object")
    await page.click("#step-details button.next")
    assert await error_tied_to(
        page, "select[name='triggers[0].trigger']", "triggers[0].trigger"
    ) == ("Choose the trigger event.")
    assert not await page.is_visible("p.field-error[data-for=name]")
    await page.select_option("select[name='triggers[0].trigger']", label="On New")
    fires_when = page.locator(".trigger-row >> nth=0 >> .fires-when")
    assert "a conversation (object) is created" in await fires_when.inner_text()
    await page.click("#step-details button.next")
    assert await page.is_visible("#step-webhook")
    assert not await page.is_visible("#error-summary")
    await page.fill("input[name='webhook.url']", "http://crm.example.com/hooks")
    await page.click("#step-webhook button.next")
    assert await page.is_visible("#step-webhook"), "stays on the step"
    message = await error_tied_to(page, "input[name='webhook.url']", "webhook.url")
    assert message == "Webhook URL must start with https://"
    await page.close()


async def test_a_failed_submit_moves_focus_to_the_summary(stack: Stack) -> None:
    page = await signed_in(stack.url, stack.scripted)
    await page.goto(f"{stack.url}/webhooks/new")
    await page.fill("input[name=name]", "Overlapping")
    await page.select_option("#entity", "Object")
    await page.select_option("select[name='triggers[0].trigger']", label="On New")
    await page.check("input[name='triggers[0].channels'][value='7']")
    await page.click("#add-trigger")  # a round trip to the server
    await page.select_option("select[name='triggers[1].trigger']", label="On New")
    whatsapp = "input[name='triggers[1].channels'][value='7']"
    assert await page.is_disabled(whatsapp), "greyed out: chosen in Trigger 1"
    # As a second tab could send it: the service is the judge.
    await page.eval_on_selector(whatsapp, "box => { box.disabled = false; box.checked = true; }")
    await page.click("[data-goto=webhook]")
    await page.fill("input[name='webhook.url']", "ftp://crm.example.com/hooks")
    await page.click("[data-goto=retries]")
    await page.fill("input[name='retry_policy.interval_seconds']", "999999")
    await page.click("#save")
    await page.wait_for_selector("#error-summary:not([hidden])")
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    assert await page.is_visible("#step-details"), "opened at the first step with an error"
    lines = await summary_lines(page)
    overlap = "Trigger 2 overlaps Trigger 1: both listen to On New on WhatsApp"
    assert overlap in lines, lines
    assert "Webhook URL must start with https://" in lines, lines
    assert any(line.startswith("Interval between retries must be from") for line in lines)
    shown = page.locator("p.field-error[data-for='triggers[1].channels']")
    assert await shown.inner_text() == overlap + "."
    for step in ("details", "webhook", "retries"):
        assert await page.is_visible(f"[data-goto={step}] .step-errors"), step
    assert not await page.is_visible("[data-goto=authentication] .step-errors")
    assert_readable(await page.inner_text("body"))
    for width in (1400, 1024):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(ARTIFACTS / f"form-errors-{width}.png"), full_page=True)
    # A summary link opens the field's step and focuses the field.
    await page.click("#error-summary a >> text=Webhook URL must start with https://")
    assert await page.is_visible("#step-webhook")
    assert await page.evaluate("document.activeElement.name") == "webhook.url"
    await page.close()


async def test_error_pages_speak_in_sentences(stack: Stack) -> None:
    page = await signed_in(stack.url, stack.scripted)
    for path, sentence in (
        ("/webhooks/not-a-webhook", "There is no such webhook in your organisation."),
        (f"/webhooks/{uuid.uuid4()}/edit", "There is no such webhook in your organisation."),
        ("/failed-events/no-such-delivery", "There is no such failed event in your organisation."),
    ):
        response = await page.goto(f"{stack.url}{path}")
        assert response is not None and response.status == 404, path
        assert await page.inner_text("p.problem") == sentence, path
        assert_readable(await page.inner_text("body"))
    await page.screenshot(path=str(ARTIFACTS / "error-page-no-such-1400.png"), full_page=True)
    await page.goto(f"{stack.url}/failed-events?trigger=No+such+trigger&message=timeout")
    text = await page.inner_text("main")
    assert "no such trigger" in text.lower(), text
    kept_inline = page.locator("input[name=message]")
    kept = await kept_inline.count() and await kept_inline.input_value() == "timeout"
    back = page.locator("#back-to-search")
    kept = kept or (
        await back.count() and "message=timeout" in str(await back.get_attribute("href"))
    )
    assert kept, "the other filters are kept"
    assert_readable(await page.inner_text("body"))
    await page.close()
