"""The one-vocabulary rule, walked in headless Chromium over every page of the console
against the whole platform as processes (issue 16).

Subscriptions made through the API cover every entity, REST and SOAP (a generic envelope
with parameters, and one by WSDL URL), Basic and OAuth 2.0 authentication, a client
certificate, WhatsApp channels and statuses and several triggers with components; some
deliveries fail (an endpoint answering 500, a SOAP fault) and one subscription is edited,
so the failed events and the History have something to say. Then every page is visited:
the Webhooks list, each Details page, the form (new and edit, each step, and an empty
submit), Failed Events (with filters), each failed event with each tab, the confirmation
pages, the signing secret pages, error pages and sign-in. On each, the visible text
(outside the elements marked as an id or as the customer's data: ``.id``, ``.data``) must
hold no catalogue id where its display name differs (``OnNew``, ``GoogleMyBusiness``,
``soap_fault``), no UUID, no gRPC code name, no proto enum value name and no internal
field path. A full-page screenshot of each page at 1400 and 1024 px goes to
tests/artifacts/console/<name>-<width>.png.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from playwright.async_api import Browser, Page, async_playwright

from tests.support.certs import issue_client_certificate, make_ca
from tests.support.console_stack import ARTIFACTS, ConsoleProcess, console_process, require_browser
from tests.support.console_vocabulary import VISIBLE_TEXT, pairs, problems_in, walk_specs
from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Platform,
    platform,
    platform_event,
    running_platform,
)
from tests.support.receivers import HttpsReceiver, Reply
from tests.support.token_server import TokenServer
from webhooks.v1 import (
    common_pb2,
    failures_pb2,
    subscriptions_pb2,
)

pytestmark = pytest.mark.timeout(420)

TENANT = f"vocab-{uuid.uuid4().hex[:8]}"
TOKEN = "vocab-admin-" + uuid.uuid4().hex
CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex[:12]
WAIT = 60.0
WIDTHS = (1400, 1024)
PHONE = 390  # the pages this walk owns are shot and checked at a phone's width too
SOAP_FAULT = (
    b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
    b'envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode>'
    b"<faultstring>Audit queue full</faultstring></soap:Fault></soap:Body></soap:Envelope>"
)


# ---- the stack


@dataclass
class Stack:
    platform: Platform
    console: ConsoleProcess
    receiver: HttpsReceiver
    browser: Browser
    page: Page
    ids: dict[str, str] = field(default_factory=dict)  # subscription name -> id
    deliveries: list[str] = field(default_factory=list)  # failed events' delivery ids
    visited: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.console.url


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("vocabulary")
    tokens = [{"name": "admin-a", "token": TOKEN, "tenant": TENANT}]
    async with (
        running_platform(tmp, tokens=tokens) as running,
        HttpsReceiver(running.pki) as receiver,
        TokenServer(
            running.pki, client_id="erp", client_secret=CLIENT_SECRET, scope="webhooks"
        ) as token_server,
        async_playwright() as playwright,
    ):
        console = console_process(running)
        await console.start()
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = await browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
        await context.grant_permissions(["clipboard-read", "clipboard-write"])
        context.set_default_timeout(15_000)
        page = await context.new_page()
        found = Stack(running, console, receiver, browser, page)
        try:
            await make_subscriptions(found, token_server)
            yield found
        finally:
            await browser.close()
            await console.stop()


async def make_subscriptions(stack: Stack, tokens: TokenServer) -> None:
    """The subscriptions, two failing deliveries' failed events and an edit."""
    running, receiver = stack.platform, stack.receiver
    receiver.reply(
        "/fail", Reply(500, b'{"error": "database down"}', {"Content-Type": "application/json"})
    )
    receiver.reply("/soap-fault", Reply(500, SOAP_FAULT, {"Content-Type": "text/xml"}))
    issued = issue_client_certificate(make_ca(), "erp-sender")
    certificate = await running.subs.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="ERP client certificate",
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=platform(TENANT),
        timeout=RPC_TIMEOUT,
    )
    for spec in walk_specs(receiver, tokens.url, CLIENT_SECRET, certificate.id):
        created = await running.create_subscription(TENANT, spec)
        stack.ids[spec.name] = created.subscription.id
    await running.publish(
        [
            platform_event(TENANT, "Object", "OnNew", channel=13, subchannel="sales"),
            platform_event(TENANT, "Tag", "OnAdd"),
        ]
    )
    await edit(stack)
    for name in ("Object feed", "ERP audit"):
        events = await wait_for_failed(stack, stack.ids[name])
        stack.deliveries.extend(e.delivery_id for e in events)


async def edit(stack: Stack) -> None:
    """Two edits for the History: a new WSDL URL and rate limit; fewer retries."""
    subs = stack.platform.subs
    orders = await subs.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=stack.ids["ERP orders (WSDL)"]),
        metadata=platform(TENANT),
        timeout=RPC_TIMEOUT,
    )
    webhook = common_pb2.Webhook()
    webhook.CopyFrom(orders.webhook)
    webhook.soap.wsdl_url = stack.receiver.url("/orders-v2?wsdl")
    webhook.rate_limit_per_second = 20
    await subs.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=orders.id,
            subscription=subscriptions_pb2.SubscriptionSpec(
                webhook=webhook,
                retry_policy=common_pb2.RetryPolicy(retries=2, interval_seconds=600),
            ),
            update_mask=FieldMask(paths=["webhook", "retry_policy"]),
        ),
        metadata=platform(TENANT),
        timeout=RPC_TIMEOUT,
    )


async def wait_for_failed(stack: Stack, subscription_id: str) -> list[failures_pb2.FailedEvent]:
    deadline = time.monotonic() + WAIT
    while True:
        response = await stack.platform.failures.ListFailedEvents(
            failures_pb2.ListFailedEventsRequest(
                filter=failures_pb2.FailedEventFilter(
                    subscription_ids=[subscription_id],
                    states=[failures_pb2.FAILED_EVENT_STATE_FAILED],
                )
            ),
            metadata=platform(TENANT),
            timeout=RPC_TIMEOUT,
        )
        if response.failed_events:
            return list(response.failed_events)
        assert time.monotonic() < deadline, f"no failed event of {subscription_id}"
        await asyncio.sleep(0.3)


# ---- the walk


SCROLLS = "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"


async def look(stack: Stack, name: str, url: str | None = None, *, fits: bool = False) -> list[str]:
    """The page (``url``, or the one shown) checked and shot at each width; ``fits``: a
    horizontal page scroll at any width (a phone's too) is a problem too."""
    page = stack.page
    if url is not None:
        await page.goto(stack.url + url)
    stack.visited.append(name)
    where = f"{name} ({page.url.removeprefix(stack.url)})"
    found: list[str] = []
    for width in (*WIDTHS, PHONE) if fits else WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        if fits and await page.evaluate(SCROLLS):
            found.append(f"{where}: the page scrolls sideways at {width} px")
    await page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    text = await page.evaluate(VISIBLE_TEXT)
    return found + [f"{where}: {p}" for p in problems_in(text)]


def no_problems(problems: list[str]) -> None:
    assert not problems, "pages outside the vocabulary or too wide:\n" + "\n".join(problems)


async def test_sign_in_pages(stack: Stack) -> None:
    page = stack.page
    problems = await look(stack, "vocab-sign-in", "/sign-in")
    await page.fill("input[name=token]", "not-a-token")
    await page.click("button[type=submit]")
    problems += await look(stack, "vocab-sign-in-refused")
    await page.fill("input[name=token]", TOKEN)
    await page.fill("input[name=tenant]", "")  # the token is bound to its organisation
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.url}/webhooks")
    no_problems(problems)


async def test_details_pages(stack: Stack) -> None:
    problems: list[str] = []
    for name, subscription_id in stack.ids.items():
        slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
        problems += await look(
            stack, f"vocab-details-{slug}", f"/webhooks/{subscription_id}", fits=True
        )
        assert name in await stack.page.inner_text("h1")
    no_problems(problems)


async def test_details_read_as_a_summary(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks/{stack.ids['ERP audit']}")
    summary = await pairs(page, "#summary")
    assert (summary["Entity"], summary["Type"], summary["Operation"]) == ("Tag", "SOAP", "Audit")
    assert (summary["SOAPAction"], summary["SOAP version"]) == ("urn:erp:audit#Audit", "1.1")
    assert summary["Parameters"] == "Source = webhooks"
    assert summary["Client certificate"].startswith("ERP client certificate — "), summary
    assert summary["Authentication"].startswith("OAuth 2.0 client credentials, token URL https")
    assert summary["Retries"] == "No retries: one attempt only"
    assert CLIENT_SECRET not in await page.content()
    await page.goto(f"{stack.url}/webhooks/{stack.ids['ERP orders (WSDL)']}")
    summary = await pairs(page, "#summary")
    assert (summary["SOAP version"], summary["Rate limit"]) == ("1.2", "20 per second")
    assert summary["Retries"] == "2 retries, 10 minutes apart"
    changes = await pairs(page, "#history-table tr[data-event=EndpointChanged] dl.changes")
    assert changes == {
        "WSDL URL": stack.receiver.url("/orders-v2?wsdl"),
        "Rate limit": "20 per second",
    }, "only what the edit changed, under the form's labels"
    await page.goto(f"{stack.url}/webhooks/{stack.ids['WhatsApp statuses']}")
    triggers = await page.inner_text("dd.triggers")
    assert "WhatsApp statuses: Delivered ✓✓, Read ✓✓" in triggers, triggers
    await page.goto(f"{stack.url}/webhooks/{stack.ids['Object feed']}")
    triggers = await page.inner_text("dd.triggers")
    assert "Channels: Google My Business, WhatsApp Cloud" in triggers, triggers
    assert "Status Change" in triggers and "In Process → Resolved" in triggers
    assert (await pairs(page, "#summary"))["Authentication"] == "Basic, user erp"


async def test_failed_event_pages(stack: Stack) -> None:
    page = stack.page
    problems: list[str] = []
    for number, delivery_id in enumerate(stack.deliveries):
        base = f"/failed-events/{delivery_id}"
        for tab in ("overview", "payload", "history"):
            name = f"vocab-failed-event-{number}-{tab}"
            problems += await look(stack, name, f"{base}?tab={tab}", fits=True)
    await page.goto(f"{stack.url}/failed-events/{stack.deliveries[-1]}?tab=overview")
    overview = await page.inner_text("#panel-overview")
    assert "ERP audit" in overview and "SOAP fault (HTTP 500" in overview, overview
    assert "Audit queue full" in overview
    no_problems(problems)


async def test_trial_history_expands_and_copies_a_response(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/failed-events/{stack.deliveries[-1]}?tab=history")
    history = await page.inner_text("#trial-history")
    assert "SOAP fault (HTTP 500 Internal Server Error)" in history, history
    assert "Series" not in history and "Class" not in history
    response = page.locator("#trial-history details.response").first
    assert not await response.locator("pre").is_visible(), "collapsed until asked"
    await response.locator("summary").click()
    body = response.locator("pre")
    assert "Audit queue full" in await body.inner_text()
    await response.locator("button.copy").click()
    status = response.locator(".copy-status")
    await status.filter(has_text="Copied.").wait_for()
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == (await body.text_content() or "").strip()
    await page.click("#tab-payload")
    await page.click("#panel-payload button.copy")
    await page.locator("#panel-payload .copy-status").filter(has_text="Copied.").wait_for()
    payload = await page.evaluate("navigator.clipboard.readText()")
    assert "<Audit" in payload and "Envelope" in payload


async def test_failed_events_list_pages(stack: Stack) -> None:
    """Each filter as a person writes it (display names), each narrowing the list."""
    both, feed, audit = ["ERP audit", "Object feed"], ["Object feed"], ["ERP audit"]
    filters = {
        "all": ("", both),
        "webhook": (f"?subscription={stack.ids['Object feed']}", feed),
        "trigger": ("?trigger=On+New", feed),
        "entity": ("?entity=Object", feed),
        "error": ("?error_code=SOAP+fault", audit),
        "state": ("?state=failed", both),
        "message": ("?message=queue", audit),
    }
    problems: list[str] = []
    for name, (query, expected) in filters.items():
        problems += await look(stack, f"vocab-failed-events-{name}", f"/failed-events{query}")
        rows = stack.page.locator("#failed-events tbody tr[data-delivery] td:first-child")
        assert sorted(n.strip() for n in await rows.all_inner_texts()) == expected, name
    no_problems(problems)


async def test_webhooks_list_pages(stack: Stack) -> None:
    problems = await look(stack, "vocab-webhooks", "/webhooks", fits=True)
    problems += await look(stack, "vocab-webhooks-search", "/webhooks?q=ERP")
    no_problems(problems)


FORM_STEPS = ("details", "webhook", "authentication", "retries")


async def form_steps(stack: Stack, name: str) -> list[str]:
    problems: list[str] = []
    for step in FORM_STEPS:
        await stack.page.click(f".steps button[data-goto='{step}']")
        problems += await look(stack, f"{name}-{step}")
    return problems


async def test_form_pages(stack: Stack) -> None:
    page = stack.page
    await page.goto(f"{stack.url}/webhooks/new")
    problems = await form_steps(stack, "vocab-form-new")
    await page.click("#save")
    problems += await look(stack, "vocab-form-new-empty-submit")
    for name in ("Object feed", "ERP audit", "WhatsApp statuses"):
        await page.goto(f"{stack.url}/webhooks/{stack.ids[name]}/edit")
        slug = name.split()[0].lower()
        problems += await form_steps(stack, f"vocab-form-edit-{slug}")
    no_problems(problems)


async def test_confirmation_and_secret_pages(stack: Stack) -> None:
    page = stack.page
    feed = stack.ids["Object feed"]
    problems = await look(stack, "vocab-confirm-delete", f"/webhooks/{feed}/delete", fits=True)
    problems += await look(
        stack, "vocab-confirm-redeliver", "/failed-events/redeliver?state=failed", fits=True
    )
    problems += await look(
        stack, "vocab-signing-secret-gone", f"/webhooks/{feed}/signing-secret", fits=True
    )
    problems += await look(
        stack, "vocab-confirm-rotate", f"/webhooks/{feed}/rotate-secret", fits=True
    )
    await page.click("#confirm-rotate")
    await page.wait_for_url(re.compile(r".*/signing-secret$"))
    problems += await look(stack, "vocab-signing-secret-shown", fits=True)
    no_problems(problems)


async def test_error_pages(stack: Stack) -> None:
    problems = await look(stack, "vocab-error-unknown-webhook", f"/webhooks/{uuid.uuid4()}")
    problems += await look(stack, "vocab-error-not-an-id", "/webhooks/not-an-id")
    problems += await look(
        stack, "vocab-error-unknown-failed-event", f"/failed-events/{uuid.uuid4()}"
    )
    problems += await look(
        stack, "vocab-error-unknown-tab", f"/failed-events/{stack.deliveries[0]}?tab=x"
    )
    no_problems(problems)
