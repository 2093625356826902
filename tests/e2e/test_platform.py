"""The whole platform end to end, every service a separate process as compose runs it
(``tests.support.platform_stack``), on SQLite and on PostgreSQL.

Subscriptions of several entities and triggers (REST and SOAP, Basic and OAuth 2.0, summary
and complete data, one inactive, one of another tenant) are made through the subscriptions
API; platform events go in over gRPC (PublishEvents); what is asserted is what the HTTPS
receivers got. The expected deliveries and their payloads are computed here, from the
events and from what each subscription asked for (the envelope and the summary fields as
the catalogue documents them), not with the router's code. A failing endpoint's event
then shows in the failures view with its trial history, and is recovered by a redelivery.
"""

from __future__ import annotations

import asyncio
import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import pytest
import standardwebhooks

from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Platform,
    new_tenant,
    platform_event,
    postgres_schema,
    rest,
    running_platform,
)
from tests.support.platform_stack import platform as acting_for
from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.token_server import TokenServer
from tests.support.waiting import eventually
from webhooks.v1 import common_pb2, failures_pb2, messages_pb2, subscriptions_pb2
from webhooks_catalogue.samples import sample_data

WHATSAPP, FACEBOOK = 7, 1
REMARK, STATUS_CHANGE = 1, 2
SOAP_NAMESPACE = "urn:example:e2e"
SOAP_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
SETTLE_SECONDS = 1.0  # after the expected deliveries: time for extra (wrong) ones to show
FS = failures_pb2
FAILED, RECOVERED = FS.FAILED_EVENT_STATE_FAILED, FS.FAILED_EVENT_STATE_RECOVERED
ATTEMPT_FAILED = messages_pb2.ATTEMPT_OUTCOME_FAILED
REDELIVERY_REQUESTED = messages_pb2.ATTEMPT_OUTCOME_REDELIVERY_REQUESTED
SUCCEEDED = messages_pb2.ATTEMPT_OUTCOME_SUCCEEDED
T = TypeVar("T")

# The summary ("Include Complete Data" off): the main fields of each entity as the product's
# catalogue lists them, plus the field a trigger adds (only the last activity of
# OnNewActivity).
SUMMARY_FIELDS = {
    "Object": ("Id", "StreamId", "SubStreamId", "Type", "StatusID", "CreateDate"),
    "User": ("Id", "UniqueID", "Email", "Phone1", "FirstName", "LastName"),
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    store: str = request.param
    with ExitStack() as schemas:
        url = schema = ""
        if store == "postgres":
            url = request.getfixturevalue("postgres_url")
            schema = schemas.enter_context(postgres_schema(url, "e2e"))
        tmp = tmp_path_factory.mktemp(f"platform-{store}")
        async with running_platform(
            tmp, store=store, postgres_url=url, postgres_schema=schema
        ) as running:
            yield running


@pytest.fixture
async def receiver(stack: Platform) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


# ---- what each subscription should get, written from the documented rules


def occurred(event: messages_pb2.PlatformEvent) -> str:
    """RFC 3339, UTC, milliseconds, Z (JavaScript's toISOString)."""
    when = event.occurred_at.ToDatetime(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def summarised(event: messages_pb2.PlatformEvent) -> dict[str, Any]:
    data = json.loads(event.data_json)
    kept = {name: data[name] for name in SUMMARY_FIELDS[event.entity] if name in data}
    if event.trigger == "OnNewActivity":
        kept["Activities"] = data["Activities"][-1:]
    return kept


@dataclass
class Expected:
    """One subscription and when (and how) an event is for it."""

    path: str
    subscription: subscriptions_pb2.Subscription
    secret: str
    wants: Callable[[messages_pb2.PlatformEvent], bool]
    complete: bool
    soap: bool = False

    def payload(self, event: messages_pb2.PlatformEvent, delivery_id: str) -> dict[str, Any]:
        entity_part = json.loads(event.data_json) if self.complete else summarised(event)
        return {
            "Event": {
                "Subscription": event.entity,
                "Name": event.trigger,
                "Brand": event.tenant,
                "EventId": event.event_id,
                "DeliveryId": delivery_id,
                "SubscriptionName": self.subscription.name,
                "OccurredAt": occurred(event),
                event.entity: entity_part,
            }
        }


def ordered_keys(value: Any) -> Iterator[list[str]]:
    """Every object's key order, depth first (the envelope's order is part of the contract)."""
    if isinstance(value, dict):
        yield list(value)
        for item in value.values():
            yield from ordered_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from ordered_keys(item)


def xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return str(value)


def assert_xml_is(element: ET.Element, value: Any, where: str) -> None:
    """The element holds ``value`` as the SOAP mapping is documented (services/sender/
    README.md, "SOAP envelopes"): an object is an element per key in order, an array the
    element repeated, null an xsi:nil element, a scalar its text; all in the namespace."""
    if isinstance(value, dict):
        children = list(element)
        names = [child.tag for child in children]
        wanted: list[str] = []
        items: list[tuple[str, Any]] = []
        for key, item in value.items():
            for one in item if isinstance(item, list) else [item]:
                wanted.append(f"{{{SOAP_NAMESPACE}}}{key}")
                items.append((key, one))
        assert names == wanted, f"{where}: {names} != {wanted}"
        for child, (key, item) in zip(children, items, strict=True):
            assert_xml_is(child, item, f"{where}/{key}")
    elif value is None:
        assert element.get(XSI_NIL) == "true", where
    else:
        assert (element.text or "") == xml_text(value), f"{where}: {element.text!r} != {value!r}"


def soap_event(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == f"{{{SOAP_ENVELOPE}}}Envelope", root.tag
    (soap_body,) = root.findall(f"{{{SOAP_ENVELOPE}}}Body")
    (operation,) = list(soap_body)
    assert operation.tag == f"{{{SOAP_NAMESPACE}}}Notify", operation.tag
    source, event = list(operation)
    assert (source.tag, source.text) == (f"{{{SOAP_NAMESPACE}}}Source", "webhooks-e2e")
    return event


def event_id_of(request: Received) -> str:
    if request.headers.get("content-type", "").startswith("text/xml"):
        found = soap_event(request.body).find(f"{{{SOAP_NAMESPACE}}}EventId")
        assert found is not None and found.text
        return found.text
    event_id: str = json.loads(request.body)["Event"]["EventId"]
    return event_id


# ---- the tests


async def test_every_event_reaches_exactly_its_subscriptions_with_its_payload(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant, other = new_tenant("e2e"), new_tenant("e2e-other")
    async with TokenServer(stack.pki, scope="hooks.write") as tokens:
        receiver.reply("/users", tokens.protected())
        basic = common_pb2.Authentication(
            basic=common_pb2.BasicAuth(username="crm", password="basic-pw-7c1e")
        )
        oauth = common_pb2.Authentication(
            oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
                token_url=tokens.url,
                scope="hooks.write",
                client_id=tokens.client_id,
                client_secret=tokens.client_secret,
            )
        )
        soap = subscriptions_pb2.SubscriptionSpec(
            name="ticket audit (SOAP)",
            entity="Object",
            triggers=[common_pb2.TriggerSpec(trigger="OnNewActivity", activity_types=[2])],
            webhook=common_pb2.Webhook(
                type=common_pb2.WEBHOOK_TYPE_SOAP,
                url=receiver.url("/soap"),
                soap=common_pb2.SoapSettings(
                    operation="Notify",
                    namespace=SOAP_NAMESPACE,
                    soap_action=f"{SOAP_NAMESPACE}#Notify",
                    parameters=[common_pb2.SoapParameter(name="Source", value="webhooks-e2e")],
                ),
            ),
        )
        specs: list[tuple[str, subscriptions_pb2.SubscriptionSpec, Callable[..., bool], bool]] = [
            (
                "/objects-whatsapp",
                rest(
                    "whatsapp conversations",
                    receiver.url("/objects-whatsapp"),
                    triggers=[common_pb2.TriggerSpec(trigger="OnNew", channels=[WHATSAPP])],
                    authentication=basic,
                    include_complete_data=True,
                ),
                lambda e: (e.entity, e.trigger, e.channel) == ("Object", "OnNew", WHATSAPP),
                True,
            ),
            (
                "/users",
                rest(
                    "crm customers",
                    receiver.url("/users"),
                    entity="User",
                    triggers=[
                        common_pb2.TriggerSpec(trigger="OnNew"),
                        common_pb2.TriggerSpec(trigger="OnUpdate"),
                    ],
                    authentication=oauth,
                    include_complete_data=True,
                ),
                lambda e: e.entity == "User" and e.trigger in ("OnNew", "OnUpdate"),
                True,
            ),
            (
                "/soap",
                soap,
                lambda e: (
                    (e.entity, e.trigger, e.activity_type)
                    == ("Object", "OnNewActivity", STATUS_CHANGE)
                ),
                False,
            ),
            (
                "/objects",
                rest(
                    "every conversation",
                    receiver.url("/objects"),
                    triggers=[
                        common_pb2.TriggerSpec(trigger="OnNew"),
                        common_pb2.TriggerSpec(trigger="OnNewActivity"),
                    ],
                ),
                lambda e: e.entity == "Object" and e.trigger in ("OnNew", "OnNewActivity"),
                False,
            ),
        ]
        expected: list[Expected] = []
        for path, spec, wants, complete in specs:
            created = await stack.create_subscription(tenant, spec)
            mine = lambda e, wants=wants: e.tenant == tenant and wants(e)  # noqa: E731
            soap_one = path == "/soap"
            expected.append(
                Expected(
                    path, created.subscription, created.signing_secret, mine, complete, soap_one
                )
            )
        # Inactive, and another tenant's: neither gets any of this tenant's events.
        await stack.create_subscription(
            tenant,
            rest("inactive", receiver.url("/inactive"), entity="User"),
            active=False,
        )
        others = await stack.create_subscription(other, rest("other", receiver.url("/other")))
        expected.append(
            Expected(
                "/other",
                others.subscription,
                others.signing_secret,
                lambda e: e.tenant == other and (e.entity, e.trigger) == ("Object", "OnNew"),
                False,
            )
        )

        def numbered(entity: str, trigger: str, n: int, tenant: str = tenant, **fields: Any) -> Any:
            data = sample_data(entity, trigger)
            data["Id"] = 1000 + n
            return platform_event(tenant, entity, trigger, data=data, **fields)

        events = [numbered("Object", "OnNew", n, channel=WHATSAPP) for n in range(4)]
        events += [numbered("Object", "OnNew", n, channel=FACEBOOK) for n in range(4, 7)]
        events += [numbered("Object", "OnNewActivity", n) for n in range(7, 10)]  # status change
        for n in range(10, 12):
            remark = numbered("Object", "OnNewActivity", n, activity_type=REMARK)
            remark.ClearField("status_change")
            events.append(remark)
        events += [numbered("User", "OnNew", n) for n in range(12, 15)]
        events += [numbered("User", "OnUpdate", n) for n in range(15, 17)]
        events += [numbered("Tag", "OnAdd", n) for n in range(17, 19)]  # nobody's
        other_events = [numbered("Object", "OnNew", n, other, channel=WHATSAPP) for n in range(2)]
        await stack.publish(events, batch=7)
        await stack.publish(other_events)

        by_id = {e.event_id: e for e in events + other_events}
        wanted = {
            (x.path, e.event_id) for x in expected for e in events + other_events if x.wants(e)
        }
        assert len(wanted) == 4 + 5 + 3 + 12 + 2, sorted(wanted)  # the rules above, counted
        try:
            await receiver.wait_for(len(wanted), timeout=45)
        finally:
            await stack.wait_idle(within=30)
        await asyncio.sleep(SETTLE_SECONDS)

        got = [(r.path, event_id_of(r)) for r in receiver.received]
        assert len(got) == len(set(got)), (
            f"duplicates: {sorted(g for g in got if got.count(g) > 1)}"
        )
        assert set(got) == wanted, (
            f"missing {sorted(wanted - set(got))}, unexpected {sorted(set(got) - wanted)}"
        )
        delivery_ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(set(delivery_ids)) == len(delivery_ids)

        by_path = {x.path: x for x in expected}
        for request in receiver.received:
            x = by_path[request.path]
            event = by_id[event_id_of(request)]
            payload = x.payload(event, request.headers["webhook-id"])
            if x.soap:
                assert request.headers["content-type"].startswith("text/xml")
                assert request.headers["soapaction"] == f'"{SOAP_NAMESPACE}#Notify"'
                assert_xml_is(soap_event(request.body), payload["Event"], "Event")
            else:
                assert request.headers["content-type"].startswith("application/json")
                body = json.loads(request.body)
                assert body == payload, request.path
                assert list(ordered_keys(body)) == list(ordered_keys(payload))
            standardwebhooks.Webhook(x.secret).verify(
                request.body, dict(request.headers), json_parse=False
            )

        expected_basic = "Basic " + base64.b64encode(b"crm:basic-pw-7c1e").decode()
        assert {r.headers.get("authorization") for r in receiver.at("/objects-whatsapp")} == {
            expected_basic
        }
        bearer_tokens = {r.headers["authorization"].split()[1] for r in receiver.at("/users")}
        assert bearer_tokens <= set(tokens.issued)
        assert 1 <= tokens.requests <= 2, tokens.requests  # cached, not one per delivery
        assert not any("authorization" in r.headers for r in receiver.at("/objects"))


async def test_a_failing_endpoint_is_listed_then_recovered_by_a_redelivery(
    stack: Platform, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("e2e-fail")
    metadata = acting_for(tenant)
    receiver.reply("/forms", Reply(500, b"form store down"))
    created = await stack.create_subscription(
        tenant,
        rest(
            "form intake",
            receiver.url("/forms"),
            entity="Form",
            triggers=[common_pb2.TriggerSpec(trigger="OnSubmit")],
            retries=1,
            interval=1,
            include_complete_data=True,
        ),
    )
    subscription = created.subscription
    event = platform_event(tenant, "Form", "OnSubmit")
    await stack.publish([event])
    await receiver.wait_for(2, "/forms", timeout=30)
    delivery_id = receiver.at("/forms")[0].headers["webhook-id"]

    async def failed_events() -> list[failures_pb2.FailedEvent]:
        page = await stack.failures.ListFailedEvents(
            failures_pb2.ListFailedEventsRequest(
                filter=failures_pb2.FailedEventFilter(subscription_ids=[subscription.id])
            ),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        return list(page.failed_events)

    listed = await eventually(
        failed_events,
        lambda found: [(e.delivery_id, e.state) for e in found] == [(delivery_id, FAILED)],
        what="the failed event listed as FAILED",
    )
    (failed,) = listed
    assert (failed.event_id, failed.tenant) == (event.event_id, tenant)
    assert (failed.entity, failed.trigger) == ("Form", "OnSubmit")
    assert (failed.error_code, failed.status_code, failed.retry_attempts) == ("500", 500, 1)

    async def details() -> failures_pb2.FailedEventDetails:
        got: failures_pb2.FailedEventDetails = await stack.failures.GetFailedEvent(
            failures_pb2.GetFailedEventRequest(delivery_id=delivery_id),
            metadata=metadata,
            timeout=RPC_TIMEOUT,
        )
        return got

    shown = await details()
    assert [(r.series, r.attempt, r.outcome, r.status_code) for r in shown.trial_history] == [
        (0, 1, ATTEMPT_FAILED, 500),
        (0, 2, ATTEMPT_FAILED, 500),
    ]
    assert shown.trial_history[0].response_snippet == b"form store down"
    assert shown.payload == receiver.at("/forms")[0].body

    receiver.reply("/forms", Reply(204))
    done = await stack.failures.RedeliverFailedEvents(
        failures_pb2.RedeliverFailedEventsRequest(delivery_id=delivery_id),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    assert (done.matched, done.redelivered) == (1, 1)
    await receiver.wait_for(3, "/forms", timeout=30)
    again = receiver.at("/forms")[2]
    assert again.headers["webhook-id"] == delivery_id
    assert again.body == receiver.at("/forms")[0].body
    recovered = await eventually(
        details, lambda d: d.overview.state == RECOVERED, what="the event RECOVERED"
    )
    assert [(r.series, r.attempt, r.outcome) for r in recovered.trial_history] == [
        (0, 1, ATTEMPT_FAILED),
        (0, 2, ATTEMPT_FAILED),
        (1, 0, REDELIVERY_REQUESTED),
        (1, 1, SUCCEEDED),
    ]
    await stack.wait_idle(within=30)
    await asyncio.sleep(SETTLE_SECONDS)
    assert len(receiver.at("/forms")) == 3
