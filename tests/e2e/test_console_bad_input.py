"""The console against hostile input (issue 11), with Flask's test client in front of the
whole platform as processes: every query value a route reads, given huge, negative,
garbage, undated or oversized, answers a page that says what is wrong (400 naming the
value, or 404 for an id that names nothing), never a 500; and sign-in attempts are
limited per client address (429 with Retry-After), the limit's memory bounded."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.console_stack import console_process
from tests.support.platform_stack import Platform, platform_event, rest, running_platform
from tests.support.waiting import eventually
from webhooks.v1 import failures_pb2, subscriptions_pb2
from webhooks_config import Settings, load_settings
from webhooks_console.app import create_app
from webhooks_console.gateway import Gateway

pytestmark = pytest.mark.timeout(300)

TENANT = f"bad-input-{uuid.uuid4().hex[:8]}"
TOKEN = "bad-input-token-" + uuid.uuid4().hex
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Sign-in attempts per address and minute: a burst of 3, then one every 20 s, so that the
# attempts of a test fit in the burst however loaded the machine (refill is slow).
PER_MINUTE = 3

HUGE_INT = "99999999999999999999"
# The values every query parameter is tried with.
BAD_VALUES = [
    HUGE_INT,
    "-" + HUGE_INT,
    "-1",
    "1e9",
    "²",  # str.isdigit() says yes, int() says no
    "garbage",
    "2026-13-45T99:99",
    "0001-01-01T00:00:00",  # the first and last second a Timestamp holds: valid dates
    "9999-12-31T23:59:59",
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "x" * 20_000,
    "\x00",
    "%ff%fe",
]
FAILED_EVENT_FILTERS = (
    *("subscription", "webhook", "entity", "trigger", "channel", "subchannel"),
    *("error_code", "retries", "state", "since", "until", "message"),
)
# What the console reads itself: a bad value is a 400 page that names the input.
NAMED = {
    "retries": "retry attempts",
    "channel": "channel",
    "since": "from",
    "until": "to",
    "state": "state",
    "tab": "tab",
    "sort": "sort",
}
# Values of those that are valid after all: any page but a 500.
VALID = {("since", "0001-01-01T00:00:00"), ("since", "9999-12-31T23:59:59")}
VALID |= {("until", value) for _, value in VALID}


@dataclass
class Console:
    platform: Platform
    settings: Settings
    gateway: Gateway
    app: Flask
    subscription_id: str
    delivery_id: str

    def client(self, address: str = "127.0.0.1") -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    def signed_in(self) -> FlaskClient:
        client = self.client(f"10.1.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}")
        response = sign_in(client, TOKEN)
        assert response.status_code == 302, response.text
        return client


def sign_in(client: FlaskClient, token: str, headers: dict[str, str] | None = None) -> Any:
    page = client.get("/sign-in", headers=headers)
    match = CSRF.search(page.text)
    assert match is not None, page.text
    form = {"csrf_token": match.group(1), "token": token, "tenant": ""}
    return client.post("/sign-in", data=form, headers=headers)


@pytest.fixture(scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    tmp = tmp_path_factory.mktemp("console-bad-input")
    tokens = [{"name": "bad-input", "token": TOKEN, "tenant": TENANT}]
    async with running_platform(tmp, tokens=tokens) as running:
        settings = load_settings(
            {**console_process(running).env, "WEBHOOKS_CONSOLE_SIGNIN_PER_MINUTE": str(PER_MINUTE)}
        )
        created = await running.subs.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                # A refused destination: the one attempt fails at once, nothing listens.
                subscription=rest("refused", "https://10.255.255.1/hooks")
            ),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
            timeout=20,
        )
        subscription = created.subscription
        await running.on_stream(subscription)
        await running.publish([platform_event(TENANT, "Object", "OnNew")])

        async def failed() -> list[failures_pb2.FailedEvent]:
            listed = await running.failures.ListFailedEvents(
                failures_pb2.ListFailedEventsRequest(),
                metadata=(("authorization", f"Bearer {TOKEN}"),),
                timeout=20,
            )
            return list(listed.failed_events)

        events = await eventually(failed, bool, timeout=30, what="the failed event")
        gateway = Gateway(settings)
        app = create_app(settings, gateway)
        try:
            yield Console(running, settings, gateway, app, subscription.id, events[0].delivery_id)
        finally:
            gateway.close()


def routes(console: Console) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every GET route with the query parameters it reads."""
    sub, delivery = console.subscription_id, console.delivery_id
    yield "/webhooks", ("q", "page", "back", "sort", "failures")
    yield "/webhooks/search", ("q",)
    yield "/failed-events", (*FAILED_EVENT_FILTERS, "page", "back")
    yield "/failed-events/redeliver", FAILED_EVENT_FILTERS
    yield f"/failed-events/{delivery}", ("tab",)
    yield "/sign-in", ("next",)
    for path in ("", "/edit", "/delete", "/rotate-secret", "/signing-secret"):
        yield f"/webhooks/{sub}{path}", ()
    yield "/webhooks/new", ()


async def test_every_query_value_is_a_page_never_a_500(console: Console) -> None:
    client = await asyncio.to_thread(console.signed_in)
    problems: list[str] = []

    def get(path: str, query: dict[str, str]) -> None:
        response = client.get(path, query_string=query, follow_redirects=True)
        text = response.text
        shown = f"{path}?{ {k: v[:40] for k, v in query.items()} } -> {response.status_code}"
        name, value = next(iter(query.items()))
        if response.status_code >= 500 or "Something went wrong" in text:
            problems.append(f"{shown}: {text[:300]!r}")
        elif (name, value) in VALID:
            pass
        elif name in NAMED and response.status_code != 400:
            problems.append(f"{shown}: expected 400")
        elif name in NAMED and NAMED[name] not in text.lower():
            problems.append(f"{shown}: the page does not name {NAMED[name]!r}")

    def sweep() -> None:
        for path, parameters in routes(console):
            for parameter in parameters:
                for value in BAD_VALUES:
                    get(path, {parameter: value})
        # Ids that name nothing, of every shape.
        for bad_id in ("0", "-1", HUGE_INT, "x" * 5000, "%00"):
            for path in (f"/webhooks/{bad_id}", f"/failed-events/{bad_id}"):
                response = client.get(path)
                if response.status_code not in (400, 404):
                    problems.append(f"{path[:60]} -> {response.status_code}")

    await asyncio.to_thread(sweep)
    assert not problems, "\n".join(problems)


async def test_good_values_still_work(console: Console) -> None:
    client = await asyncio.to_thread(console.signed_in)

    def check() -> None:
        listed = client.get(
            "/failed-events",
            query_string={"retries": "0", "since": "2020-01-01T00:00", "state": "failed"},
        )
        assert listed.status_code == 200, listed.text
        assert console.delivery_id in listed.text
        details = client.get(f"/failed-events/{console.delivery_id}?tab=history")
        assert details.status_code == 200

    await asyncio.to_thread(check)


async def test_sign_in_attempts_are_limited_per_client_address(console: Console) -> None:
    def attempts() -> None:
        attacker = console.client("192.0.2.7")
        statuses = [sign_in(attacker, "wrong-" + str(n)).status_code for n in range(PER_MINUTE)]
        assert statuses == [401] * PER_MINUTE
        refused = sign_in(attacker, TOKEN)  # even the right token, once over the limit
        assert refused.status_code == 429
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60 // PER_MINUTE
        assert f"{retry_after} second" in refused.text
        # Another address is not held back by this one.
        assert sign_in(console.client("192.0.2.8"), TOKEN).status_code == 302

    await asyncio.to_thread(attempts)


async def test_behind_a_proxy_the_forwarded_address_is_counted(console: Console) -> None:
    def attempts() -> None:
        behind = create_app(replace(console.settings, console_proxy_hops=1), console.gateway)
        proxy = behind.test_client()
        proxy.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # every request comes from the proxy
        guesser = {"X-Forwarded-For": "198.51.100.7"}
        guesses = [sign_in(proxy, "wrong", guesser).status_code for _ in range(PER_MINUTE)]
        assert guesses == [401] * PER_MINUTE
        assert sign_in(proxy, "wrong", guesser).status_code == 429
        # Another person behind the same proxy signs in.
        assert sign_in(proxy, TOKEN, {"X-Forwarded-For": "198.51.100.8"}).status_code == 302

        # With no trusted proxy, a forged X-Forwarded-For changes nothing: the peer counts.
        direct = console.client("203.0.113.9")
        forged = [
            sign_in(direct, "wrong", {"X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(PER_MINUTE + 1)
        ]
        assert forged == [401] * PER_MINUTE + [429]

    await asyncio.to_thread(attempts)


async def test_forged_form_numbers_are_refused_not_a_500(console: Console) -> None:
    client = await asyncio.to_thread(console.signed_in)
    sub = console.subscription_id

    def post(path: str, fields: dict[str, str]) -> Any:
        page = client.get(path)
        match = CSRF.search(page.text)
        assert match is not None, page.text
        return client.post(path, data={"csrf_token": match.group(1), **fields})

    def forge() -> list[str]:
        problems = []
        base = {
            "name": "forged",
            "entity": "Object",
            "triggers[0].trigger": "OnNew",
            "webhook.type": "rest",
            "webhook.url": "https://example.com/hooks",
            "auth": "none",
        }
        forged: list[dict[str, str]] = [
            {"trigger_count": HUGE_INT},  # once looped that many times
            {"trigger_count": "²"},
            {"version": HUGE_INT},
            {"retry_policy.retries": HUGE_INT},
            {"retry_policy.interval_seconds": "-" + HUGE_INT},
            {"triggers[0].channels": HUGE_INT},
            {"triggers[0].activity_types": "²"},
            {"triggers[0].status_changes.from": HUGE_INT, "triggers[0].status_changes.to": "1"},
            {"action": f"remove_trigger:{HUGE_INT}"},
            {"webhook.rate_limit_per_second": HUGE_INT},
            {"webhook.rate_limit_per_second": "²"},
            {"webhook.rate_limit_per_second": "-1"},
        ]
        for fields in forged:
            for path in ("/webhooks/new", f"/webhooks/{sub}/edit"):
                response = post(path, {**base, **fields})
                if response.status_code >= 500 or "Something went wrong" in response.text:
                    problems.append(f"{path} {fields} -> {response.status_code}")
        rotated = post(f"/webhooks/{sub}/rotate-secret", {"overlap_seconds": HUGE_INT})
        if rotated.status_code >= 500:
            problems.append(f"rotate-secret -> {rotated.status_code}")
        return problems

    problems = await asyncio.to_thread(forge)
    assert not problems, "\n".join(problems)
