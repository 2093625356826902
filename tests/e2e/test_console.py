"""The admin console in headless Chromium against the whole platform as processes: a real
HTTPS receiver under the test CA, a real OAuth token server, nats-server, the four
services and ``webhooks serve console``.

The tests run in order on one module-scoped stack (one browser, one signed-in page) and
follow the user guide: sign in, Add New Subscription (REST with two triggers, SOAP with
OAuth client credentials), the list, the toggle, failing deliveries and the warning
count, Failed Event Details and its three tabs, redelivery after fixing the endpoint, an
edit that keeps the stored password, History, Delete. Then what must never happen:
another organisation's data by URL, a form without a valid CSRF token, a secret in a
page. Screenshots go to tests/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Response, async_playwright
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support.certs import issue_client_certificate, make_ca
from tests.support.console_stack import (
    ARTIFACTS,
    ConsoleProcess,
    console_process,
    require_browser,
)
from tests.support.platform_stack import (
    PLATFORM_TOKEN,
    RPC_TIMEOUT,
    Platform,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from tests.support.token_server import TokenServer
from webhooks.v1 import failures_pb2, subscriptions_pb2

pytestmark = pytest.mark.timeout(300)

TENANT_A = f"console-a-{uuid.uuid4().hex[:8]}"
TENANT_B = f"console-b-{uuid.uuid4().hex[:8]}"
TOKEN_A = "tenant-a-token-" + uuid.uuid4().hex
TOKEN_B = "tenant-b-token-" + uuid.uuid4().hex
BASIC_PASSWORD = "basic-pass-" + uuid.uuid4().hex[:12]
CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex[:12]
TYPED_PASSWORD = "typed-pass-" + uuid.uuid4().hex[:12]
REST_NAME = "CRM sync"
SOAP_NAME = "ERP audit"
WAIT = 30.0


@dataclass
class Stack:
    platform: Platform
    console: ConsoleProcess
    receiver: HttpsReceiver
    tokens: TokenServer
    browser: Browser
    context: BrowserContext
    page: Page
    # Every HTML page the browser got, with its URL.
    sources: list[tuple[str, str]] = field(default_factory=list)
    # Every signing secret a one-time page showed, in order (subscription name, secret).
    shown_secrets: list[tuple[str, str]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # subscription name -> id
    private_key_line: str = ""  # of the uploaded client certificate
    b_subscription: str = ""
    b_delivery: str = ""

    @property
    def url(self) -> str:
        return self.console.url


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("console")
    tokens = [
        {"name": "admin-a", "token": TOKEN_A, "tenant": TENANT_A},
        {"name": "admin-b", "token": TOKEN_B, "tenant": TENANT_B},
    ]
    async with (
        running_platform(tmp, tokens=tokens) as running,
        HttpsReceiver(running.pki) as receiver,
        TokenServer(
            running.pki, client_id="erp", client_secret=CLIENT_SECRET, scope="webhooks"
        ) as token_server,
        async_playwright() as playwright,
    ):
        # Behind one trusted proxy: X-Forwarded-Proto https makes the session cookie Secure.
        console = console_process(running, {"WEBHOOKS_CONSOLE_PROXY_HOPS": "1"})
        await console.start()
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(10_000)
        page = await context.new_page()
        found = Stack(running, console, receiver, token_server, browser, context, page)

        async def record(response: Response) -> None:
            if "text/html" in (response.headers.get("content-type") or ""):
                with contextlib.suppress(Exception):
                    found.sources.append((response.url, await response.text()))

        context.on("response", record)
        try:
            yield found
        finally:
            await browser.close()
            await console.stop()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def get_subscription(stack: Stack, subscription_id: str) -> subscriptions_pb2.Subscription:
    found: subscriptions_pb2.Subscription = await stack.platform.subs.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=subscription_id),
        metadata=platform(TENANT_A),
        timeout=RPC_TIMEOUT,
    )
    return found


async def failed_events(
    stack: Stack, tenant: str, subscription_id: str
) -> list[failures_pb2.FailedEvent]:
    response = await stack.platform.failures.ListFailedEvents(
        failures_pb2.ListFailedEventsRequest(
            filter=failures_pb2.FailedEventFilter(subscription_ids=[subscription_id])
        ),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    return list(response.failed_events)


async def wait_for_states(
    stack: Stack, tenant: str, subscription_id: str, state: int, count: int
) -> list[failures_pb2.FailedEvent]:
    deadline = time.monotonic() + WAIT
    while True:
        events = await failed_events(stack, tenant, subscription_id)
        if sum(e.state == state for e in events) >= count:
            return events
        assert time.monotonic() < deadline, f"not {count} in state {state}: {events}"
        await asyncio.sleep(0.2)


async def row(page: Page, name: str) -> Any:
    return page.locator(f"#subscriptions tr[data-name='{name}']")


async def open_menu(page: Page, name: str) -> None:
    await (await row(page, name)).locator("details.menu summary").click()


SECRET_PAGE = re.compile(r"/webhooks/([0-9a-zA-Z_-]+)/signing-secret$")


async def take_shown_secret(stack: Stack, page: Page, name: str) -> str:
    """On the one-time page after Create Webhook or Rotate: the secret it shows, then
    that a reload and Back never show it again and the session cookie never held it in
    plaintext. Leaves the page on the Webhooks list."""
    await page.wait_for_url(SECRET_PAGE)
    match = SECRET_PAGE.search(page.url)
    assert match is not None
    secret_page = page.url
    assert await page.inner_text("h1") == "Signing secret — shown once"
    secret = (await page.inner_text("#signing-secret")).strip()
    assert secret.startswith("whsec_") and len(secret) > 20, secret
    assert "webhook-signature" in await page.inner_text("#verify-note")
    stack.shown_secrets.append((name, secret))
    for cookie in await page.context.cookies():
        assert secret not in cookie["value"] and secret not in decoded_session(cookie["value"])
        assert secret.removeprefix("whsec_") not in decoded_session(cookie["value"])
    await page.reload()
    assert await page.is_visible("#secret-gone"), "a reload shows it no more"
    assert "whsec_" not in await page.content()
    await page.goto(secret_page)
    assert "whsec_" not in await page.content()
    await page.click("#continue")
    await page.wait_for_url(f"{stack.url}/webhooks")
    await page.go_back()
    await page.wait_for_url(secret_page)
    assert "whsec_" not in await page.content(), "Back shows it no more"
    await page.go_forward()
    await page.wait_for_url(f"{stack.url}/webhooks")
    return secret


def verify_delivery(secret: str, body: bytes, headers: Any) -> None:
    """As a receiver does with the standardwebhooks package: raises when no signature
    in ``webhook-signature`` is the body's under ``secret``."""
    Webhook(secret).verify(body, dict(headers))


# ---- the guide's flow


async def test_sign_in(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    assert page.url.startswith(f"{stack.url}/sign-in"), "signed out: to the sign-in page"
    await page.fill("input[name=token]", "not-a-token")
    await page.fill("input[name=tenant]", "")
    await page.click("button[type=submit]")
    assert "This token is not accepted." in await page.inner_text("#sign-in-problem")
    await shot(page, "00-sign-in-refused")
    await page.fill("input[name=token]", TOKEN_A)
    await page.fill("input[name=tenant]", "")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert await page.inner_text("h1") == "Webhooks"
    cookie = next(c for c in await stack.context.cookies() if c["name"] == "webhooks_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert not cookie["secure"], "plain HTTP here; Secure is set on HTTPS"
    assert TOKEN_A not in cookie["value"] and TOKEN_A not in decoded_session(cookie["value"])


def decoded_session(value: str) -> str:
    """The payload of Flask's signed cookie (base64 JSON, maybe zlib-compressed)."""
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode(errors="replace")


async def test_create_rest_subscription_with_two_triggers(stack: Stack) -> None:
    page, receiver = stack.page, stack.receiver
    await page.click("text=Add New Subscription")
    await page.fill("input[name=name]", REST_NAME)
    await page.select_option("#entity", "Object")
    await page.select_option("select[name='triggers[0].trigger']", "OnNewActivity")
    remark = "input[name='triggers[0].activity_types'][value='1']"
    await page.check(remark)
    await page.check("input[name='triggers[0].activity_types'][value='2']")  # StatusChange
    await page.select_option("select[name='triggers[0].status_changes.from'] >> nth=0", "1")
    await page.select_option("select[name='triggers[0].status_changes.to'] >> nth=0", "2")
    await page.check("input[name='triggers[0].channels'][value='7']")
    await page.click("#add-trigger")  # a round trip: nothing typed is lost
    assert await page.is_checked(remark)
    await page.select_option("select[name='triggers[1].trigger']", "OnNewActivity")
    greyed = page.locator("input[name='triggers[1].activity_types'][value='1']")
    assert await greyed.is_disabled(), "an activity type chosen in trigger 1 is greyed out"
    # StatusChange stays open (told apart by status changes), but not Open -> Resolved.
    assert await page.is_enabled("input[name='triggers[1].activity_types'][value='2']")
    await page.select_option("select[name='triggers[1].status_changes.from'] >> nth=0", "1")
    to = "select[name='triggers[1].status_changes.to'] >> nth=0"
    assert await page.locator(f"{to} >> option[value='2']").is_disabled()
    assert await page.locator(f"{to} >> option[value='3']").is_enabled()
    await page.select_option("select[name='triggers[1].status_changes.from'] >> nth=0", "0")
    assert await page.locator(f"{to} >> option[value='2']").is_disabled(), "any -> Resolved"
    assert await page.is_enabled("input[name='triggers[1].activity_types'][value='3']")
    await page.check("input[name='triggers[1].activity_types'][value='3']")
    assert "(Not recommended)" in await page.inner_text("#step-details")
    await shot(page, "10-new-rest-details")
    await page.click("#step-details button.next")
    assert await page.is_visible("#step-webhook") and not await page.is_visible("#step-details")
    assert await page.inner_text("#format") == "JSON"
    await page.fill("input[name='webhook.url']", receiver.url("/rest"))
    await shot(page, "11-new-rest-webhook-type")
    await page.click("#step-webhook button.next")
    await page.check("input[name=authentication][value=basic]")
    assert not await page.is_visible("input[name='authentication.oauth2_password.username']")
    await page.fill("input[name='authentication.basic.username']", "crm")
    await page.fill("input[name='authentication.basic.password']", BASIC_PASSWORD)
    await shot(page, "12-new-rest-authentication")
    await page.click("#step-authentication button.next")
    assert await page.input_value("select[name='retry_policy.retries']") == "3", "default 3"
    await page.select_option("select[name='retry_policy.retries']", "1")
    await page.fill("input[name='retry_policy.interval_seconds']", "1")
    await shot(page, "13-new-rest-retries")
    await page.click("#save")
    # Right after Create Webhook: the signing secret, shown once.
    await page.wait_for_url(SECRET_PAGE)
    assert f"Webhook “{REST_NAME}” created." in await page.inner_text(".flash")
    copy = page.locator("button.copy")
    assert await copy.is_visible(), "the Copy button, with scripts"
    await stack.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await copy.click()
    await page.wait_for_function("document.querySelector('.copy-status').textContent !== ''")
    assert await page.inner_text(".copy-status") == "Copied."
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == (await page.inner_text("#signing-secret")).strip()
    await shot(page, "14-new-rest-signing-secret-shown-once")
    await take_shown_secret(stack, page, REST_NAME)
    line = await row(page, REST_NAME)
    stack.ids[REST_NAME] = str(await line.get_attribute("data-id"))
    text = await line.inner_text()
    assert "Object" in text and receiver.url("/rest") in text
    # The triggers in words, one line each: the catalogue's name and labelled components.
    triggers = await line.locator("td.triggers .trigger").all_inner_texts()
    assert triggers == [
        "On New Activity — Channels: WhatsApp · Activity types: Remark, Status Change"
        " · Status: Open → Resolved",
        "On New Activity — Activity types: Forward",
    ], triggers
    assert "OnNewActivity:" not in text and "status_changes=" not in text, "no CLI syntax"
    title = await line.locator("td.triggers .trigger").first.get_attribute("title")
    assert title == "On New Activity: fires when an activity is logged on a conversation"
    assert await line.locator("td.url").get_attribute("title") == receiver.url("/rest")
    # The token is bound to tenant A: the header names it once a reply carries it.
    assert await page.inner_text("#organisation") == TENANT_A
    sub = await get_subscription(stack, stack.ids[REST_NAME])
    assert sub.authentication.basic.username == "crm" and sub.authentication.basic.password_set
    assert (sub.retry_policy.retries, sub.retry_policy.interval_seconds) == (1, 1)


async def test_a_delivery_verifies_with_the_secret_shown_once(stack: Stack) -> None:
    page, receiver = stack.page, stack.receiver
    (name, secret), *_ = stack.shown_secrets
    assert name == REST_NAME
    await stack.platform.on_stream(await get_subscription(stack, stack.ids[REST_NAME]))
    await open_menu(page, REST_NAME)
    await (await row(page, REST_NAME)).locator("text=Send test event").click()
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert "delivered" in await page.inner_text(".flash")
    request = receiver.at("/rest")[-1]
    assert len(request.headers["webhook-signature"].split()) == 1, "one secret, one signature"
    verify_delivery(secret, request.body, request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify_delivery(
            "whsec_" + base64.b64encode(b"x" * 24).decode(), request.body, request.headers
        )


async def test_create_soap_subscription_with_oauth_client_credentials(stack: Stack) -> None:
    page, receiver, tokens = stack.page, stack.receiver, stack.tokens
    receiver.reply("/soap", tokens.protected())
    issued = issue_client_certificate(make_ca("ERP CA"), "erp-client")
    certificate = await stack.platform.subs.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="erp-mtls",
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=platform(TENANT_A),
        timeout=RPC_TIMEOUT,
    )
    stack.private_key_line = issued.private_key_pem.splitlines()[1]
    await page.click("text=Add New Subscription")
    await page.fill("input[name=name]", SOAP_NAME)
    await page.select_option("#entity", "User")
    await page.select_option("select[name='triggers[0].trigger']", "OnNew")
    await page.click("#step-details button.next")
    await page.check("input[name='webhook.type'][value=soap]")
    assert await page.inner_text("#format") == "XML"
    await page.fill("input[name='webhook.url']", receiver.url("/soap"))
    await page.fill("input[name='webhook.soap.operation']", "NotifyAudit")
    await page.fill("input[name='webhook.soap.namespace']", "urn:example:erp")
    await page.fill("input[name='webhook.soap.parameters.name']", "source")
    await page.fill("input[name='webhook.soap.parameters.value']", "console")
    await page.select_option("select[name='webhook.client_certificate_id']", certificate.id)
    await shot(page, "20-new-soap-webhook-type")
    await page.click("#step-webhook button.next")
    await page.check("input[name=authentication][value=oauth2_client_credentials]")
    assert not await page.is_visible("input[name='authentication.basic.username']")
    prefix = "authentication.oauth2_client_credentials"
    await page.fill(f"input[name='{prefix}.token_url']", tokens.url)
    await page.fill(f"input[name='{prefix}.scope']", "webhooks")
    await page.fill(f"input[name='{prefix}.client_id']", "erp")
    await page.fill(f"input[name='{prefix}.client_secret']", CLIENT_SECRET)
    await shot(page, "21-new-soap-authentication")
    await page.click("#step-authentication button.next")
    await page.click("#save")
    await take_shown_secret(stack, page, SOAP_NAME)
    line = await row(page, SOAP_NAME)
    stack.ids[SOAP_NAME] = str(await line.get_attribute("data-id"))
    sub = await get_subscription(stack, stack.ids[SOAP_NAME])
    assert sub.webhook.client_certificate_id == certificate.id
    assert [(p.name, p.value) for p in sub.webhook.soap.parameters] == [("source", "console")]
    # Both in the list, laid out to fit: the URL wraps between its parts, not every few
    # characters, and the table stays within the window.
    assert await (await row(page, REST_NAME)).count() == 1
    assert await line.locator("td.triggers").inner_text() == "On New"
    url_cell = await line.locator("td.url").bounding_box()
    assert url_cell is not None and url_cell["width"] >= 150, url_cell
    url_lines = await line.locator("td.url span").evaluate(
        "e => Math.round(e.getBoundingClientRect().height"
        " / parseFloat(getComputedStyle(e).lineHeight))"
    )
    assert url_lines <= 2, f"the URL takes {url_lines} lines"
    table = await page.locator("#subscriptions").bounding_box()
    assert table is not None and table["x"] + table["width"] <= 1400, table
    await shot(page, "22-list-two-webhooks")
    # Send test event: a token from the token server, then the SOAP request with it.
    await stack.platform.on_stream(await get_subscription(stack, stack.ids[SOAP_NAME]))
    await open_menu(page, SOAP_NAME)
    await (await row(page, SOAP_NAME)).locator("text=Send test event").click()
    await page.wait_for_url(f"{stack.url}/webhooks")
    flash = await page.inner_text(".flash")
    assert f"Test event to “{SOAP_NAME}” delivered" in flash, flash
    request = receiver.at("/soap")[-1]
    assert b"<" in request.body and b"NotifyAudit" in request.body
    assert tokens.requests >= 1 and request.headers["authorization"].startswith("Bearer ")


async def test_toggle_off_and_on(stack: Stack) -> None:
    page = stack.page
    toggle = (await row(page, SOAP_NAME)).locator("input[name=active]")
    await toggle.click()  # submits itself
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert not await (await row(page, SOAP_NAME)).locator("input[name=active]").is_checked()
    assert not (await get_subscription(stack, stack.ids[SOAP_NAME])).active
    await shot(page, "30-list-toggled-off")
    await (await row(page, SOAP_NAME)).locator("input[name=active]").click()
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert await (await row(page, SOAP_NAME)).locator("input[name=active]").is_checked()
    assert (await get_subscription(stack, stack.ids[SOAP_NAME])).active


async def test_failures_warning_details_and_redelivery(stack: Stack) -> None:
    page, receiver, running = stack.page, stack.receiver, stack.platform
    subscription_id = stack.ids[REST_NAME]
    await running.on_stream(await get_subscription(stack, subscription_id))
    receiver.reply("/rest", Reply(500, b"endpoint down"))
    events = [platform_event(TENANT_A, "Object", "OnNewActivity") for _ in range(2)]
    await running.publish(events)
    failed = await wait_for_states(
        stack, TENANT_A, subscription_id, failures_pb2.FAILED_EVENT_STATE_FAILED, 2
    )
    await page.goto(f"{stack.url}/webhooks")
    warning = (await row(page, REST_NAME)).locator(".status a.warning")
    assert await warning.inner_text() == "⚠ 4", "2 events, each 1 attempt and 1 retry"
    await shot(page, "40-list-warning-count")
    await warning.click()
    await page.wait_for_url(f"{stack.url}/failed-events?subscription={subscription_id}")
    rows = page.locator("#failed-events tbody tr[data-delivery]")
    assert await rows.count() == 2
    first = await rows.first.inner_text()
    assert REST_NAME in first and "500" in first and "WhatsApp" in first and "Failed" in first
    await shot(page, "41-failed-events")

    target = failed[0].delivery_id
    line = page.locator(f"tr[data-delivery='{target}']")
    await line.locator("details.menu summary").click()
    await line.locator("text=Failed Event Details").click()
    await page.wait_for_url(f"{stack.url}/failed-events/{target}")
    assert await page.is_visible("#panel-overview") and not await page.is_visible("#panel-payload")
    overview = await page.inner_text("#panel-overview")
    assert target in overview and "500" in overview
    await shot(page, "42-failed-event-overview")
    await page.click("#tab-payload")
    payload = await page.inner_text("#panel-payload pre")
    assert json.loads(payload) and '\n  "' in payload, "pretty-printed JSON"
    await shot(page, "43-failed-event-payload")
    await page.click("#tab-history")
    history = await page.inner_text("#panel-history")
    assert history.lower().count("failed") >= 2 and "500" in history
    await shot(page, "44-failed-event-trial-history")

    # The endpoint is fixed: redeliver this one, then all the rest filtered.
    receiver.reply("/rest", Reply(204))
    await page.click("#redeliver")
    await page.wait_for_url(f"{stack.url}/failed-events/{target}")
    await wait_for_states(
        stack, TENANT_A, subscription_id, failures_pb2.FAILED_EVENT_STATE_RECOVERED, 1
    )
    await page.reload()
    assert "recovered" in (await page.inner_text("#panel-overview")).lower()
    await page.goto(f"{stack.url}/failed-events?subscription={subscription_id}")
    await page.click("#redeliver-all")
    assert "Send 1 failed event matching" in await page.inner_text("#redeliver-count")
    await shot(page, "45-redeliver-all-confirmation")
    await page.click("#confirm-redeliver")
    assert "Sent again: 1 of 1" in await page.inner_text(".flash")
    await wait_for_states(
        stack, TENANT_A, subscription_id, failures_pb2.FAILED_EVENT_STATE_RECOVERED, 2
    )
    await page.reload()
    states = await page.locator("#failed-events td.state").all_inner_texts()
    assert states == ["Recovered", "Recovered"], states
    # The filters: each narrows the list, the time range too.
    await page.goto(f"{stack.url}/failed-events")
    await page.select_option("#filters select[name=entity]", "Object")
    await page.fill("#filters input[name=error_code]", "500")
    await page.select_option("#filters select[name=state]", "recovered")
    await page.select_option("#filters select[name=channel]", "7")
    await page.click("#filters button[type=submit]")
    assert await page.locator("#failed-events tr[data-delivery]").count() == 2
    shown = await page.locator("#failed-events td.retries").all_inner_texts()
    fewest = min(int(n) for n in shown)
    assert fewest >= 1, shown
    await page.fill("#filters input[name=retries]", str(fewest))
    await page.click("#filters button[type=submit]")
    assert await page.locator("#failed-events tr[data-delivery]").count() == 2
    await page.fill("#filters input[name=retries]", str(max(int(n) for n in shown) + 1))
    await page.click("#filters button[type=submit]")
    assert await page.locator("#failed-events tr[data-delivery]").count() == 0
    await page.fill("#filters input[name=retries]", "")
    await page.fill("#filters input[name=since]", "2099-01-01T00:00")
    await page.click("#filters button[type=submit]")
    assert await page.locator("#failed-events tr[data-delivery]").count() == 0
    await page.fill("#filters input[name=since]", "")
    await page.select_option("#filters select[name=state]", "failed")
    await page.click("#filters button[type=submit]")
    assert await page.locator("#failed-events tr[data-delivery]").count() == 0


async def test_edit_keeps_the_stored_password(stack: Stack) -> None:
    page, receiver = stack.page, stack.receiver
    await page.goto(f"{stack.url}/webhooks")
    await (await row(page, REST_NAME)).locator("a.name").click()
    password = page.locator("input[name='authentication.basic.password']")
    assert await password.input_value() == ""
    await page.click("[data-goto=authentication]")
    assert "set" in await page.inner_text("fieldset[data-auth=basic]")
    await shot(page, "50-edit-authentication-password-set")
    await page.click("[data-goto=webhook]")
    await page.fill("input[name='webhook.url']", receiver.url("/rest-v2"))
    await page.click("[data-goto=retries]")
    assert await page.inner_text("#save") == "Update Webhook"
    await page.click("#save")
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert f"Webhook “{REST_NAME}” updated." in await page.inner_text(".flash")
    sub = await get_subscription(stack, stack.ids[REST_NAME])
    assert sub.webhook.url == receiver.url("/rest-v2") and sub.authentication.basic.password_set
    await stack.platform.on_stream(sub)
    await open_menu(page, REST_NAME)
    await (await row(page, REST_NAME)).locator("text=Send test event").click()
    assert "delivered" in await page.inner_text(".flash")
    sent = receiver.at("/rest-v2")[-1].headers["authorization"]
    assert sent == "Basic " + base64.b64encode(f"crm:{BASIC_PASSWORD}".encode()).decode()


async def test_rotate_signing_secret_shows_the_new_one_once(stack: Stack) -> None:
    page, receiver = stack.page, stack.receiver
    old = dict(stack.shown_secrets)[REST_NAME]
    await page.goto(f"{stack.url}/webhooks")
    await open_menu(page, REST_NAME)
    assert await (await row(page, REST_NAME)).locator("text=Rotate signing secret").is_visible()
    await page.goto(f"{stack.url}/webhooks/{stack.ids[REST_NAME]}")
    await page.click("#rotate-secret")
    note = await page.inner_text("#overlap-note")
    assert "old secret keeps working" in note and "24 hours" in note, note
    assert await page.input_value("#overlap") == str(24 * 3600), "the service's default"
    await shot(page, "55-rotate-signing-secret-confirmation")
    await page.click("#confirm-rotate")
    await page.wait_for_url(SECRET_PAGE)
    assert "keeps working until" in await page.inner_text("#previous-secret-note")
    new = await take_shown_secret(stack, page, REST_NAME)
    assert new != old
    sub = await get_subscription(stack, stack.ids[REST_NAME])
    assert sub.signing_secret.HasField("previous_valid_until")
    await stack.platform.on_stream(sub)
    await open_menu(page, REST_NAME)
    await (await row(page, REST_NAME)).locator("text=Send test event").click()
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert "delivered" in await page.inner_text(".flash")
    request = receiver.at("/rest-v2")[-1]
    assert len(request.headers["webhook-signature"].split()) == 2, "both secrets sign"
    verify_delivery(new, request.body, request.headers)
    verify_delivery(old, request.body, request.headers)  # during the overlap


async def test_rotating_needs_a_valid_csrf_token(stack: Stack) -> None:
    before = await get_subscription(stack, stack.ids[REST_NAME])
    response = await stack.page.request.post(
        f"{stack.url}/webhooks/{stack.ids[REST_NAME]}/rotate-secret", form={"overlap_seconds": "0"}
    )
    assert response.status == 403 and "whsec_" not in await response.text()
    after = await get_subscription(stack, stack.ids[REST_NAME])
    assert after.version == before.version, "not rotated"


async def test_server_side_errors_next_to_their_fields_nothing_lost(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks/new")
    await page.fill("input[name=name]", "Tag feed")
    await page.select_option("#entity", "Tag")
    await page.select_option("select[name='triggers[0].trigger']", "OnAdd")
    await page.click("[data-goto=webhook]")
    await page.fill("input[name='webhook.url']", "http://crm.example.com/hooks")
    await page.click("[data-goto=authentication]")
    await page.check("input[name=authentication][value=basic]")
    await page.fill("input[name='authentication.basic.username']", "tags")
    await page.fill("input[name='authentication.basic.password']", TYPED_PASSWORD)
    await page.click("[data-goto=retries]")
    await page.click("#save")
    # Back on the form, at the step of the offending field, with its message beside it.
    assert await page.is_visible("#step-webhook")
    message = await page.inner_text("p.field-error[data-for='webhook.url']")
    assert "https://" in message, message
    await shot(page, "60-validation-error-next-to-url")
    assert await page.input_value("input[name=name]") == "Tag feed"
    assert await page.input_value("input[name='authentication.basic.username']") == "tags"
    assert TYPED_PASSWORD not in await page.content()
    await page.fill("input[name='webhook.url']", "https://crm.example.com/hooks")
    await page.click("[data-goto=retries]")
    await page.click("#save")
    await take_shown_secret(stack, page, "Tag feed")
    line = await row(page, "Tag feed")
    stack.ids["Tag feed"] = str(await line.get_attribute("data-id"))
    sub = await get_subscription(stack, stack.ids["Tag feed"])
    assert sub.authentication.basic.password_set, "the password typed before the error"


async def test_history_is_readable(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    await open_menu(page, REST_NAME)
    await (await row(page, REST_NAME)).locator("text=Details").click()
    history = await page.inner_text("#history-table")
    rest_v2 = stack.receiver.url("/rest-v2")
    sentences = await page.locator("#history-table td.happened").all_inner_texts()
    assert any(
        re.fullmatch(rf"Webhook URL changed to {re.escape(rest_v2)} by admin-a at .+", s)
        for s in sentences
    ), sentences
    assert any(s.startswith(f"Created as “{REST_NAME}” by admin-a at ") for s in sentences)
    assert any(
        s.startswith("Signing secret rotated (secrets not shown) by admin-a") for s in sentences
    )
    assert "webhook.url" not in history and "Webhook URL" in history, "the form's label"
    # Triggers read as the Webhooks list writes them, never in the CLI's syntax.
    assert "On New Activity — Activity types: Forward" in history
    assert "Status: Open → Resolved" in history, "the stored status changes read right"
    assert "OnNewActivity:" not in history and "activity_types=" not in history
    main = await page.inner_text("main")
    assert "failed delivery attempts" in main
    details = await page.locator("dl.fields dd.triggers .trigger").all_inner_texts()
    assert details == [
        "On New Activity — Channels: WhatsApp · Activity types: Remark, Status Change"
        " · Status: Open → Resolved",
        "On New Activity — Activity types: Forward",
    ], details
    assert "OnNewActivity:" not in await page.inner_text("dl.fields")
    await shot(page, "70-details-and-history")


async def test_delete_with_confirmation(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    await open_menu(page, "Tag feed")
    await (await row(page, "Tag feed")).locator("text=Delete").click()
    assert "for good" in await page.inner_text("main")
    await shot(page, "80-delete-confirmation")
    await page.click("#confirm-delete")
    await page.wait_for_url(f"{stack.url}/webhooks")
    assert await (await row(page, "Tag feed")).count() == 0
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await get_subscription(stack, stack.ids["Tag feed"])
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_form_works_without_javascript(stack: Stack) -> None:
    """Progressive enhancement: every step on one page, round trips instead of scripts."""
    context = await stack.browser.new_context(java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        await page.goto(f"{stack.url}/webhooks/new")  # to sign-in, then straight back here
        await page.fill("input[name=token]", TOKEN_A)
        await page.fill("input[name=tenant]", "")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{stack.url}/webhooks/new")
        assert await page.inner_text("#organisation") == TENANT_A, "learnt at sign-in"
        assert await page.is_visible("#step-retries"), "all steps at once"
        await page.fill("input[name=name]", "No script")
        await page.select_option("#entity", "Object")
        await page.click("text=Show the triggers of this entity")
        await page.select_option("select[name='triggers[0].trigger']", "OnNewActivity")
        await page.click("text=Show the components of this trigger")
        await page.check("input[name='triggers[0].activity_types'][value='1']")
        await page.click("#add-trigger")
        await page.select_option("select[name='triggers[1].trigger']", "OnNewActivity")
        await page.click("text=Show the components of this trigger >> nth=1")
        greyed = "input[name='triggers[1].activity_types'][value='1']"
        assert await page.is_disabled(greyed), "greyed out by the server"
        await page.check("input[name='triggers[1].activity_types'][value='4']")
        await page.fill("input[name='webhook.url']", stack.receiver.url("/noscript"))
        await shot(page, "65-new-without-javascript")
        await page.click("#save")
        await page.wait_for_url(SECRET_PAGE)
        assert (await page.inner_text("#signing-secret")).startswith("whsec_")
        assert not await page.is_visible("button.copy"), "no Copy button without scripts"
        await page.click("#continue")
        await page.wait_for_url(f"{stack.url}/webhooks")
        line = page.locator("#subscriptions tr[data-name='No script']")
        assert "On New Activity — Activity types: Remark" in await line.inner_text()
        # The toggle has its own button without scripts.
        await line.locator("input[name=active]").uncheck()
        await line.locator("button:has-text('Save')").click()
        await page.wait_for_url(f"{stack.url}/webhooks")
        toggle = page.locator("#subscriptions tr[data-name='No script'] input[name=active]")
        assert not await toggle.is_checked()
    finally:
        await context.close()


async def test_search_by_name(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    await page.fill("input[name=q]", "erp")
    await page.click("form.search button")
    names = await page.locator("#subscriptions a.name").all_inner_texts()
    assert names == [SOAP_NAME]


# ---- what must never happen


async def test_another_organisations_data_is_not_reachable(stack: Stack) -> None:
    running, receiver = stack.platform, stack.receiver
    receiver.reply("/tenant-b", Reply(500))
    created = await running.create_subscription(
        TENANT_B, rest("B secret plans", receiver.url("/tenant-b"), retries=0)
    )
    b_id = created.subscription.id
    await running.publish([platform_event(TENANT_B, "Object", "OnNew")])
    b_events = await wait_for_states(
        stack, TENANT_B, b_id, failures_pb2.FAILED_EVENT_STATE_FAILED, 1
    )
    delivery = b_events[0].delivery_id
    page = stack.page
    for path in (
        f"/webhooks/{b_id}",
        f"/webhooks/{b_id}/edit",
        f"/webhooks/{b_id}/delete",
        f"/failed-events/{delivery}",
    ):
        response = await page.goto(f"{stack.url}{path}")
        assert response is not None and response.status == 404, path
        assert "B secret plans" not in await page.content() and delivery not in path[:0]
    await page.goto(f"{stack.url}/failed-events?subscription={b_id}")
    assert await page.locator("#failed-events tr[data-delivery]").count() == 0
    await page.goto(f"{stack.url}/webhooks")
    assert "B secret plans" not in await page.content()
    # A valid form of tenant A's session aimed at tenant B's subscription.
    csrf = await page.input_value("input[name=csrf_token] >> nth=0")
    posted = await page.request.post(
        f"{stack.url}/webhooks/{b_id}/delete", form={"csrf_token": csrf}
    )
    assert posted.status == 404
    still = await running.subs.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=b_id),
        metadata=platform(TENANT_B),
        timeout=RPC_TIMEOUT,
    )
    assert still.active
    stack.b_subscription, stack.b_delivery = b_id, delivery


async def test_platform_token_signs_in_for_the_named_organisation(stack: Stack) -> None:
    context = await stack.browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{stack.url}/sign-in")
        await page.fill("input[name=token]", PLATFORM_TOKEN)
        await page.fill("input[name=tenant]", "")
        await page.click("button[type=submit]")
        assert "platform token" in await page.inner_text("#sign-in-problem")
        await page.fill("input[name=token]", PLATFORM_TOKEN)
        await page.fill("input[name=tenant]", TENANT_B)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{stack.url}/webhooks")
        names = await page.locator("#subscriptions a.name").all_inner_texts()
        assert names == ["B secret plans"]
        assert await page.inner_text("#organisation") == TENANT_B, "the organisation named"
        await page.click("header button:has-text('Sign out')")
        await page.wait_for_url(f"{stack.url}/sign-in")
        await page.goto(f"{stack.url}/webhooks")
        assert page.url.startswith(f"{stack.url}/sign-in"), "signed out"
    finally:
        await context.close()


async def test_forms_without_a_valid_csrf_token_are_refused(stack: Stack) -> None:
    page = stack.page
    subscription_id = stack.ids[SOAP_NAME]
    target = f"{stack.url}/webhooks/{subscription_id}/active"
    forms: list[dict[str, str | float | bool]] = [
        {},
        {"csrf_token": "forged"},
        {"csrf_token": "", "active": "on"},
    ]
    for form in forms:
        response = await page.request.post(target, form=form)
        assert response.status == 403, form
        assert "Form refused" in await response.text()
    assert (await get_subscription(stack, subscription_id)).active, "nothing changed"
    response = await page.request.post(f"{stack.url}/webhooks/{subscription_id}/delete")
    assert response.status == 403
    # Without a session at all, the sign-in form too.
    fresh = await stack.browser.new_context()
    try:
        response = await fresh.request.post(f"{stack.url}/sign-in", form={"token": TOKEN_A})
        assert response.status == 403
    finally:
        await fresh.close()


async def test_no_secret_in_any_page(stack: Stack) -> None:
    """No secret in any page; a signing secret only on its one-time page, each exactly
    once (not on the list, Details, the edit form, a reload of that page or Back)."""
    assert len(stack.sources) > 20
    secrets = (
        *(BASIC_PASSWORD, CLIENT_SECRET, TYPED_PASSWORD),
        *(TOKEN_A, TOKEN_B, PLATFORM_TOKEN),
        *(stack.private_key_line or "no key uploaded",),
    )
    shown = [secret for _, secret in stack.shown_secrets]
    assert len(shown) >= 4 and len(set(shown)) == len(shown), "created 3, rotated 1"
    pages_with: dict[str, int] = {}
    for url, source in stack.sources:
        for secret in secrets:
            assert secret not in source, f"{secret[:8]}… in {url}"
        found = re.findall(r"whsec_[A-Za-z0-9+/=]+", source)
        if found:
            assert SECRET_PAGE.search(url.split("?")[0]), f"a signing secret in {url}"
            assert len(set(found)) == 1 and found[0] in shown, url
            pages_with[found[0]] = pages_with.get(found[0], 0) + 1
        else:
            assert "whsec_" not in source, url
    assert pages_with == dict.fromkeys(shown, 1), "each secret on exactly one page"
    rest = stack.ids[REST_NAME]
    details = [s for u, s in stack.sources if u.endswith(f"/webhooks/{rest}")]
    edits = [s for u, s in stack.sources if u.endswith(f"/webhooks/{rest}/edit")]
    assert details and edits
    assert "signing secret" in details[-1] and "rotated" in details[-1]


async def test_the_session_cookie_is_secure_over_https(stack: Stack) -> None:
    """Through a TLS-terminating proxy (X-Forwarded-Proto: https, one trusted hop)."""
    https = {"X-Forwarded-Proto": "https"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{stack.url}/sign-in", headers=https) as response:
            page = await response.text()
            first = response.headers.getall("Set-Cookie")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        session = first[0].split(";", 1)[0]
        headers = {
            **https,
            "Cookie": session,
            "Referer": f"https://127.0.0.1:{stack.console.port}/",
        }
        form = {"csrf_token": csrf[1], "token": TOKEN_A, "tenant": ""}
        async with http.post(
            f"{stack.url}/sign-in", data=form, headers=headers, allow_redirects=False
        ) as response:
            assert response.status == 302, await response.text()
            signed_in = response.headers.getall("Set-Cookie")
    for cookie in (first[0], signed_in[0]):
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite"} <= attributes, cookie
        assert "SameSite=Lax" in cookie


async def test_a_form_cannot_send_the_browser_elsewhere(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks")
    csrf = await page.input_value("input[name=csrf_token] >> nth=0")
    target = f"{stack.url}/webhooks/{stack.ids[SOAP_NAME]}/active"
    for back in ("https://evil.example/", "//evil.example/x"):
        response = await page.request.post(
            target,
            form={"csrf_token": csrf, "active": "on", "back": back},
            max_redirects=0,
        )
        assert response.status == 302
        assert response.headers["location"] == "/webhooks", response.headers["location"]


async def test_the_list_is_paged_and_searched_across_pages(stack: Stack) -> None:
    running, page = stack.platform, stack.page
    for number in range(22):
        await running.subs.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                subscription=rest(f"Bulk {number:02d}", stack.receiver.url("/bulk"))
            ),
            metadata=platform(TENANT_A),
            timeout=RPC_TIMEOUT,
        )
    await page.goto(f"{stack.url}/webhooks?q=bulk")
    first = await page.locator("#subscriptions a.name").all_inner_texts()
    assert len(first) == 20 and first[0] == "Bulk 21", "newest first, 20 a page"
    await page.click("a[rel=next]")
    second = await page.locator("#subscriptions a.name").all_inner_texts()
    assert second == ["Bulk 01", "Bulk 00"]
    assert await page.locator("a[rel=next]").count() == 0
    await page.click("text=First page")
    assert await page.locator("#subscriptions a.name").all_inner_texts() == first
    assert await page.locator("a[rel=prev]").count() == 0, "no Previous on the first page"


async def test_previous_goes_back_a_page_at_a_time(stack: Stack) -> None:
    running, page = stack.platform, stack.page
    for number in range(22, 42):  # 42 "Bulk" webhooks: pages of 20, 20 and 2
        await running.subs.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                subscription=rest(f"Bulk {number:02d}", stack.receiver.url("/bulk"))
            ),
            metadata=platform(TENANT_A),
            timeout=RPC_TIMEOUT,
        )
    names = page.locator("#subscriptions a.name")
    await page.goto(f"{stack.url}/webhooks?q=bulk")
    first = await names.all_inner_texts()
    assert first == [f"Bulk {n:02d}" for n in range(41, 21, -1)]
    await page.click("a[rel=next]")
    second = await names.all_inner_texts()
    assert second == [f"Bulk {n:02d}" for n in range(21, 1, -1)]
    await page.click("a[rel=next]")
    assert await names.all_inner_texts() == ["Bulk 01", "Bulk 00"]
    assert await page.locator("a[rel=next]").count() == 0
    await page.click("a[rel=prev]")
    assert await names.all_inner_texts() == second, "Previous: the page before, not the first"
    assert "q=bulk" in page.url, "the search is kept"
    await shot(page, "85-list-previous-page")
    await page.click("a[rel=prev]")
    assert await names.all_inner_texts() == first
    assert await page.locator("a[rel=prev]").count() == 0
    assert await page.locator("a[rel=first]").count() == 0


async def test_a_service_down_is_a_clear_page_not_a_traceback(stack: Stack) -> None:
    failures = stack.platform.failures_process
    assert failures is not None
    await failures.stop()
    page = stack.page
    response = await page.goto(f"{stack.url}/webhooks")
    assert response is not None and response.status == 200, "the list still shows"
    assert "failed-attempt counts are not shown" in await page.inner_text("main")
    response = await page.goto(f"{stack.url}/failed-events")
    assert response is not None and response.status == 503
    assert "Service unavailable" in await page.inner_text("h1")
    assert "Traceback" not in await page.content()
    await shot(page, "90-service-unavailable")


async def test_logs_hold_no_traceback_and_no_secret(stack: Stack) -> None:
    log = await asyncio.to_thread(Path(stack.console.log_path).read_text, errors="replace")
    assert "Traceback" not in log, stack.console.log_tail()
    signing = [secret for _, secret in stack.shown_secrets]
    for secret in (BASIC_PASSWORD, CLIENT_SECRET, TYPED_PASSWORD, TOKEN_A, PLATFORM_TOKEN):
        assert secret not in log
    for secret in signing:
        assert secret not in log
    assert "whsec_" not in log
