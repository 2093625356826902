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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import ModuleType

import grpc
import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.field_mask_pb2 import FieldMask
from playwright.async_api import Browser, Page, async_playwright

from tests.support.certs import issue_client_certificate, make_ca
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
from tests.support.token_server import TokenServer
from webhooks.v1 import (
    common_pb2,
    failures_pb2,
    messages_pb2,
    router_pb2,
    sender_pb2,
    subscriptions_pb2,
)
from webhooks_catalogue import data
from webhooks_catalogue.vocabulary import FAILURE_CLASS_LABELS, words

pytestmark = pytest.mark.timeout(420)

TENANT = f"vocab-{uuid.uuid4().hex[:8]}"
TOKEN = "vocab-admin-" + uuid.uuid4().hex
CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex[:12]
WAIT = 60.0
WIDTHS = (1400, 1024)
SOAP_FAULT = (
    b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
    b'envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode>'
    b"<faultstring>Audit queue full</faultstring></soap:Fault></soap:Body></soap:Envelope>"
)

# ---- what must never be visible


def catalogue_ids() -> set[str]:
    """Every catalogue id written differently from its display name, and the failure
    classes written as ids (``soap_fault``)."""
    names: set[str] = set()
    for entity in data.ENTITIES:
        names.add(entity.name)
        names.update(t.name for t in entity.triggers)
    for table in (data.CHANNELS, data.ACTIVITY_TYPES, data.OBJECT_STATUSES, data.TAG_TYPES):
        names.update(table.values())
    shown_as_id = {name for name in names if words(name) != name}
    return shown_as_id | {name for name in FAILURE_CLASS_LABELS if "_" in name}


def enum_value_names(modules: Iterable[ModuleType]) -> set[str]:
    found: set[str] = set()

    def nested(message: Descriptor) -> None:
        for enum in message.enum_types:
            found.update(v.name for v in enum.values)
        for inner in message.nested_types:
            nested(inner)

    for module in modules:
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            found.update(v.name for v in enum.values)
        for message in module.DESCRIPTOR.message_types_by_name.values():
            nested(message)
    return {name for name in found if "_" in name}


PROTOS = (common_pb2, messages_pb2, subscriptions_pb2, failures_pb2, router_pb2, sender_pb2)
# Field names a person never types: every snake_case field of the requests the pages make.
FIELD_MESSAGES = (
    subscriptions_pb2.SubscriptionSpec,
    common_pb2.TriggerSpec,
    common_pb2.Webhook,
    common_pb2.SoapSettings,
    common_pb2.OAuth2ClientCredentials,
    common_pb2.OAuth2PasswordCredentials,
    common_pb2.OAuth2AccessToken,
    common_pb2.RetryPolicy,
    failures_pb2.FailedEventFilter,
    failures_pb2.FailedEvent,
)
FIELD_NAMES = {f.name for m in FIELD_MESSAGES for f in m.DESCRIPTOR.fields if "_" in f.name} - {
    "client_id"
}  # "Client ID" is the form's label; client_id alone is its field name


def any_word(names: Iterable[str]) -> str:
    return r"\b(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b"


UUID = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
PARENTS = (
    "subscription",
    "webhook",
    "authentication",
    "triggers",
    "retry_policy",
    "filter",
    "soap",
)
PATH = rf"\b(?:{'|'.join(PARENTS)})(?:\[\d+\])?\.[a-z_]+"
FORBIDDEN: list[tuple[str, re.Pattern[str]]] = [
    ("catalogue id", re.compile(any_word(catalogue_ids()))),
    ("UUID", re.compile(UUID, re.IGNORECASE)),
    ("gRPC code", re.compile(any_word(c.name for c in grpc.StatusCode if c.name != "OK"))),
    ("enum name", re.compile(any_word(enum_value_names(PROTOS)))),
    ("field path", re.compile(rf"{PATH}|\btriggers\[\d+\]|{any_word(FIELD_NAMES)}")),
]


def problems_in(text: str) -> list[str]:
    found: list[str] = []
    for kind, pattern in FORBIDDEN:
        for match in sorted({m.group(0) for m in pattern.finditer(text)}):
            line = next(ln for ln in text.splitlines() if match in ln)
            found.append(f"{kind} {match!r} in “{line.strip()[:160]}”")
    return found


# Outside the elements that show an id as an id, or the customer's own data as sent.
VISIBLE_TEXT = """() => {
  const hidden = Array.from(document.querySelectorAll('.id, .data'));
  const before = hidden.map((e) => e.style.display);
  hidden.forEach((e) => { e.style.display = 'none'; });
  document.querySelectorAll('details:not(.menu)').forEach((d) => { d.open = true; });
  const text = document.body.innerText;
  hidden.forEach((e, i) => { e.style.display = before[i]; });
  return text;
}"""


def test_the_forbidden_names_are_the_ones_meant() -> None:
    """The walk's net catches what the issue saw, and not the display names."""
    for seen in ("OnNew", "GoogleMyBusiness", "InProcess", "OnMessageStatus", "StatusChange"):
        assert problems_in(f"Trigger: {seen}"), seen
    for seen in ("http_status", "soap_fault", "SOAP_VERSION_1_1", "FAILURE_CLASS_TIMEOUT"):
        assert problems_in(f"Class: {seen}"), seen
    for seen in ("HEALTH_STATE_FAILING", "INVALID_ARGUMENT: x", "webhook.soap.wsdl_url"):
        assert problems_in(seen), seen
    assert problems_in("triggers[0] overlaps") and problems_in("an empty status_changes list")
    assert problems_in(f"id {uuid.uuid4()}")
    fine = (
        "On New Activity — Channels: Google My Business · Status: In Process → Resolved\n"
        "SOAP fault (HTTP 500 Internal Server Error) · Read ✓✓ · Client ID erp · "
        "https://127.0.0.1:4443/soap · 7 Dec 2026, 11:02 UTC · Not found"
    )
    assert problems_in(fine) == []


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
        context.set_default_timeout(15_000)
        page = await context.new_page()
        found = Stack(running, console, receiver, browser, page)
        try:
            await make_subscriptions(found, token_server)
            yield found
        finally:
            await browser.close()
            await console.stop()


def trigger(name: str, **components: object) -> common_pb2.TriggerSpec:
    return common_pb2.TriggerSpec(trigger=name, **components)  # type: ignore[arg-type]


def soap_spec(
    name: str, url: str, entity: str, trigger_name: str, soap: common_pb2.SoapSettings
) -> subscriptions_pb2.SubscriptionSpec:
    return subscriptions_pb2.SubscriptionSpec(
        name=name,
        entity=entity,
        triggers=[trigger(trigger_name)],
        webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_SOAP, url=url, soap=soap),
        retry_policy=common_pb2.RetryPolicy(retries=0, interval_seconds=1),
    )


def specs(
    stack: Stack, tokens: TokenServer, certificate_id: str
) -> list[subscriptions_pb2.SubscriptionSpec]:
    receiver = stack.receiver
    object_feed = rest(
        "Object feed",
        receiver.url("/fail"),
        retries=1,
        interval=1,
        triggers=[
            trigger("OnNew", channels=[13, 16]),
            trigger(
                "OnNewActivity",
                activity_types=[2, 3],
                status_changes=[common_pb2.StatusChange(from_status=8, to_status=2)],
            ),
        ],
        authentication=common_pb2.Authentication(
            basic=common_pb2.BasicAuth(username="erp", password="basic-" + uuid.uuid4().hex)
        ),
    )
    audit = soap_spec(
        "ERP audit",
        receiver.url("/soap-fault"),
        "Tag",
        "OnAdd",
        common_pb2.SoapSettings(
            operation="Audit",
            namespace="urn:erp:audit",
            soap_action="urn:erp:audit#Audit",
            version=common_pb2.SOAP_VERSION_1_1,
            parameters=[common_pb2.SoapParameter(name="Source", value="webhooks")],
        ),
    )
    audit.webhook.client_certificate_id = certificate_id
    audit.authentication.oauth2_client_credentials.CopyFrom(
        common_pb2.OAuth2ClientCredentials(
            token_url=tokens.url, client_id="erp", client_secret=CLIENT_SECRET, scope="webhooks"
        )
    )
    orders = soap_spec(
        "ERP orders (WSDL)",
        receiver.url("/orders"),
        "Form",
        "OnSubmit",
        common_pb2.SoapSettings(
            operation="SubmitForm",
            version=common_pb2.SOAP_VERSION_1_2,
            wsdl_url=receiver.url("/orders?wsdl"),
            parameters=[common_pb2.SoapParameter(name="Channel", value="web")],
        ),
    )
    whatsapp = rest(
        "WhatsApp statuses",
        receiver.url("/ok"),
        entity="WhatsApp",
        triggers=[
            trigger(
                "OnMessageStatus",
                whatsapp_channels=["wa-main", "wa-support"],
                whatsapp_statuses=["read", "delivered"],
            )
        ],
    )
    others = [
        rest(
            "People",
            receiver.url("/ok"),
            entity="User",
            triggers=[trigger("OnUpdate", channels=[14, 15]), trigger("OnUpdateTag")],
        ),
        rest("Surveys", receiver.url("/ok"), entity="Satisfaction", triggers=[trigger("OnSubmit")]),
        rest("Chats ended", receiver.url("/ok"), entity="Chat", triggers=[trigger("OnUserExit")]),
        rest(
            "Webhook watch",
            receiver.url("/ok"),
            entity="Webhook",
            triggers=[trigger("OnFailing"), trigger("OnCircuitOpened")],
        ),
    ]
    return [object_feed, audit, orders, whatsapp, *others]


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
    for spec in specs(stack, tokens, certificate.id):
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


async def look(stack: Stack, name: str, url: str | None = None) -> list[str]:
    """The page (``url``, or the one shown) checked and shot at each width."""
    page = stack.page
    if url is not None:
        await page.goto(stack.url + url)
    stack.visited.append(name)
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    text = await page.evaluate(VISIBLE_TEXT)
    return [f"{name} ({page.url.removeprefix(stack.url)}): {p}" for p in problems_in(text)]


def no_problems(problems: list[str]) -> None:
    assert not problems, "visible text outside the vocabulary:\n" + "\n".join(problems)


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
        problems += await look(stack, f"vocab-details-{slug}", f"/webhooks/{subscription_id}")
        assert name in await stack.page.inner_text("h1")
    no_problems(problems)


PAIRS = """(selector) => Array.from(document.querySelectorAll(selector + ' dt')).map(
  (dt) => [dt.innerText.trim(), dt.nextElementSibling ? dt.nextElementSibling.innerText.trim() : '']
)"""


async def pairs(page: Page, selector: str) -> dict[str, str]:
    """The (label, value) lines of the description lists under ``selector``."""
    found: list[list[str]] = await page.evaluate(PAIRS, selector)
    return dict((label, value) for label, value in found)


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
        "SOAP WSDL URL": stack.receiver.url("/orders-v2?wsdl"),
        "Rate limit (deliveries per second)": "20 per second",
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
            problems += await look(stack, f"vocab-failed-event-{number}-{tab}", f"{base}?tab={tab}")
    await page.goto(f"{stack.url}/failed-events/{stack.deliveries[-1]}?tab=overview")
    overview = await page.inner_text("#panel-overview")
    assert "ERP audit" in overview and "SOAP fault (HTTP 500" in overview, overview
    assert "Audit queue full" in overview
    no_problems(problems)


async def test_failed_events_list_pages(stack: Stack) -> None:
    filters = {
        "all": "",
        "webhook": f"?subscription={stack.ids['Object feed']}",
        "trigger": "?trigger=On+New",
        "entity": "?entity=Object",
        "error": "?error_code=SOAP+fault",
        "state": "?state=failed",
        "message": "?message=queue",
    }
    problems: list[str] = []
    for name, query in filters.items():
        problems += await look(stack, f"vocab-failed-events-{name}", f"/failed-events{query}")
    no_problems(problems)


async def test_webhooks_list_pages(stack: Stack) -> None:
    problems = await look(stack, "vocab-webhooks", "/webhooks")
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
    problems = await look(stack, "vocab-confirm-delete", f"/webhooks/{feed}/delete")
    problems += await look(
        stack, "vocab-confirm-redeliver", "/failed-events/redeliver?state=failed"
    )
    problems += await look(stack, "vocab-signing-secret-gone", f"/webhooks/{feed}/signing-secret")
    problems += await look(stack, "vocab-confirm-rotate", f"/webhooks/{feed}/rotate-secret")
    await page.click("#confirm-rotate")
    await page.wait_for_url(re.compile(r".*/signing-secret$"))
    problems += await look(stack, "vocab-signing-secret-shown")
    no_problems(problems)


async def test_error_pages(stack: Stack) -> None:
    problems = await look(stack, "vocab-error-unknown-webhook", f"/webhooks/{uuid.uuid4()}")
    problems += await look(stack, "vocab-error-not-an-id", "/webhooks/not-an-id")
    problems += await look(
        stack, "vocab-error-unknown-failed-event", f"/failed-events/{uuid.uuid4()}"
    )
    problems += await look(
        stack, "vocab-failed-event-unknown-tab", f"/failed-events/{stack.deliveries[0]}?tab=x"
    )
    assert await stack.page.is_visible("#panel-overview"), "an unknown tab: the Overview"
    no_problems(problems)
