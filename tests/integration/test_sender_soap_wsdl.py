"""SOAP envelopes built from WSDLs served over HTTPS (a real receiver under a test CA) and
given inline, checked against the WSDLs' schemas with lxml.

``fetch`` stands in for the guarded transport (transport.Outbound.get): a plain aiohttp GET
trusting the test CA. It counts what it is asked, and the receiver counts what it serves,
so a test sees that every document, imports included, came through ``fetch``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from lxml import etree  # type: ignore[import-untyped]

from tests.support.receivers import HttpsReceiver, Reply, TestPki
from webhooks.v1 import common_pb2
from webhooks_catalogue.samples import sample_data
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.soap_envelope import SOAP11_NAMESPACE, SOAP12_NAMESPACE, SoapSettingsError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "soap"
NOTIFICATIONS_WSDL = (FIXTURES / "notifications-soap11.wsdl").read_text()
EVENTS_WSDL = (FIXTURES / "events-soap12.wsdl").read_text()
EVENTS_XSD = (FIXTURES / "events.xsd").read_text()
CRM = "urn:example:crm:notifications"
ERP = "urn:example:erp:events"
ACME = "urn:example:acme:webhooks"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


class Fetcher:
    """An aiohttp GET trusting the test CA; refuses hosts other than loopback, as the
    guard would refuse them, and records every URL it was asked for."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.asked: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        if urlsplit(url).hostname != "127.0.0.1":
            raise PermissionError(f"destination {urlsplit(url).hostname} is refused")
        async with self.session.get(url, allow_redirects=False) as response:
            response.raise_for_status()
            return await response.read()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("soap-pki"))


@pytest.fixture
async def receiver(pki: TestPki) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(pki, default=Reply(404)) as server:
        server.reply("/crm/notifications.wsdl", Reply(200, NOTIFICATIONS_WSDL.encode()))
        server.reply("/erp/events.wsdl", Reply(200, EVENTS_WSDL.encode()))
        server.reply("/erp/events.xsd", Reply(200, EVENTS_XSD.encode()))
        yield server


@pytest.fixture
async def fetch(pki: TestPki) -> AsyncIterator[Fetcher]:
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Fetcher(session)


async def never(url: str) -> bytes:
    raise AssertionError(f"fetched {url}")


def payload(entity: str = "Object", trigger: str = "OnNewActivity") -> dict[str, Any]:
    return {
        "Event": {
            "Subscription": entity,
            "Name": trigger,
            "Brand": "acme",
            "EventId": "evt-0001",
            "DeliveryId": "dlv-0001",
            "SubscriptionName": "crm objects",
            "OccurredAt": "2024-05-01T09:30:00.123Z",
            entity: sample_data(entity, trigger),
        }
    }


def notify(**fields: Any) -> common_pb2.SoapSettings:
    soap = common_pb2.SoapSettings(
        operation="Notify",
        parameters=[
            common_pb2.SoapParameter(name="ApiKey", value="k-5f1c"),
            common_pb2.SoapParameter(name="Source", value="webhooks"),
        ],
    )
    for name, value in fields.items():
        setattr(soap, name, value)
    return soap


def publish(**fields: Any) -> common_pb2.SoapSettings:
    soap = common_pb2.SoapSettings(
        operation="PublishEvent",
        namespace=ACME,
        version=common_pb2.SOAP_VERSION_1_1,  # the WSDL's 1.2 binding wins
        parameters=[
            common_pb2.SoapParameter(name="Channel", value="crm"),
            common_pb2.SoapParameter(name="Priority", value="5"),
        ],
    )
    for name, value in fields.items():
        setattr(soap, name, value)
    return soap


def schema_of_wsdl(wsdl: str) -> Any:
    root = etree.fromstring(wsdl.encode())
    (schema,) = root.iter(f"{{{XSD}}}schema")
    # tostring carries the namespace declarations the schema inherits from the WSDL.
    return etree.XMLSchema(etree.fromstring(etree.tostring(schema)))


def body_child(body: bytes, version: str) -> Any:
    env = SOAP12_NAMESPACE if version == "1.2" else SOAP11_NAMESPACE
    root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == f"{{{env}}}Envelope"
    (body_element,) = root.findall(f"{{{env}}}Body")
    (child,) = body_element
    return child


def assert_valid(schema: Any, element: Any) -> None:
    standalone = etree.fromstring(etree.tostring(element))
    assert schema.validate(standalone), schema.error_log


def read_back(element: Any, like: Any, namespace: str | None) -> Any:
    """The JSON value ``element`` holds, with ``like`` saying scalar types and arrays."""
    assert etree.QName(element).namespace == namespace, element.tag
    if element.get(XSI_NIL) == "true":
        return None
    if isinstance(like, dict):
        groups: dict[str, list[Any]] = {}
        for child in element:
            groups.setdefault(etree.QName(child).localname, []).append(child)
        result: dict[str, Any] = {}
        for key, children in groups.items():
            expected = like.get(key)
            if isinstance(expected, list):
                pairs = zip(children, expected, strict=True)
                result[key] = [read_back(c, item, namespace) for c, item in pairs]
            else:
                assert len(children) == 1, key
                result[key] = read_back(children[0], expected, namespace)
        return result
    text = element.text or ""
    if isinstance(like, bool):
        return {"true": True, "false": False}[text]
    if isinstance(like, int):
        return int(text)
    return text


async def test_wsdl_url_soap_1_1(receiver: HttpsReceiver, fetch: Fetcher) -> None:
    envelopes = SoapEnvelopes(fetch)
    event = payload()
    soap = notify(wsdl_url=receiver.url("/crm/notifications.wsdl"))
    request = await envelopes.build(soap, "sub-1:1", event)

    assert request.content_type == "text/xml; charset=utf-8"
    assert request.headers == {"SOAPAction": '"urn:example:crm:notifications/Notify"'}
    operation = body_child(request.body, "1.1")
    assert_valid(schema_of_wsdl(NOTIFICATIONS_WSDL), operation)
    assert operation.tag == f"{{{CRM}}}Notify"
    assert [(c.tag, c.text) for c in operation[:2]] == [
        (f"{{{CRM}}}ApiKey", "k-5f1c"),
        (f"{{{CRM}}}Source", "webhooks"),
    ]
    (event_element,) = operation.findall(f"{{{CRM}}}Event")
    assert read_back(event_element, event["Event"], CRM) == event["Event"]
    # Sent as built, not as zeep re-renders a dateTime (which drops the milliseconds).
    assert event_element.findtext(f"{{{CRM}}}OccurredAt") == "2024-05-01T09:30:00.123Z"
    assert fetch.asked == [soap.wsdl_url]
    assert len(receiver.at("/crm/notifications.wsdl")) == 1


async def test_the_subscriptions_action_overrides_the_wsdls(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    soap = notify(wsdl_url=receiver.url("/crm/notifications.wsdl"), soap_action="urn:acme:in")
    request = await SoapEnvelopes(fetch).build(soap, "sub-1:2", payload())
    assert request.headers == {"SOAPAction": '"urn:acme:in"'}


async def test_wsdl_url_soap_1_2_with_an_imported_schema(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    envelopes = SoapEnvelopes(fetch)
    event = payload("Tag", "OnAdd")
    soap = publish(wsdl_url=receiver.url("/erp/events.wsdl"))
    request = await envelopes.build(soap, "sub-2:1", event)

    assert request.content_type == (
        'application/soap+xml; charset=utf-8; action="urn:example:erp:events#PublishEvent"'
    )
    assert request.headers == {}
    operation = body_child(request.body, "1.2")
    schema = etree.XMLSchema(etree.fromstring(EVENTS_XSD.encode()))
    assert_valid(schema, operation)
    assert [(c.tag, c.text) for c in operation[:2]] == [
        (f"{{{ERP}}}Channel", "crm"),
        (f"{{{ERP}}}Priority", "5"),
    ]
    # No Event input: the event goes into the xsd:any, in the subscription's namespace.
    event_element = operation[2]
    assert event_element.tag == f"{{{ACME}}}Event"
    assert read_back(event_element, event["Event"], ACME) == event["Event"]
    # The schema check can fail: without the required Channel the body is refused.
    operation.remove(operation[0])
    assert not schema.validate(etree.fromstring(etree.tostring(operation)))

    # The import went through fetch too; the cached parse is used for the same key.
    assert fetch.asked == [receiver.url("/erp/events.wsdl"), receiver.url("/erp/events.xsd")]
    await envelopes.build(soap, "sub-2:1", event)
    assert len(receiver.at("/erp/events.wsdl")) == 1
    assert len(receiver.at("/erp/events.xsd")) == 1
    # A new version of the settings is parsed anew.
    await envelopes.build(soap, "sub-2:2", event)
    assert len(receiver.at("/erp/events.wsdl")) == 2
    assert len(receiver.at("/erp/events.xsd")) == 2


async def test_inline_wsdl_document() -> None:
    event = payload("User", "OnUpdate")
    request = await SoapEnvelopes(never).build(
        notify(wsdl_document=NOTIFICATIONS_WSDL), "sub-3:1", event
    )
    operation = body_child(request.body, "1.1")
    assert_valid(schema_of_wsdl(NOTIFICATIONS_WSDL), operation)
    (event_element,) = operation.findall(f"{{{CRM}}}Event")
    assert read_back(event_element, event["Event"], CRM) == event["Event"]


async def test_an_event_input_of_type_string_receives_the_event_as_xml_text() -> None:
    wsdl = NOTIFICATIONS_WSDL.replace(
        '<xsd:element name="Event" type="tns:EventType"/>',
        '<xsd:element name="Event" type="xsd:string"/>',
    )
    event = payload("Tag", "OnAdd")
    request = await SoapEnvelopes(never).build(notify(wsdl_document=wsdl), "sub-3:2", event)
    operation = body_child(request.body, "1.1")
    assert_valid(schema_of_wsdl(wsdl), operation)
    inner = etree.fromstring(operation.findtext(f"{{{CRM}}}Event").encode())
    assert read_back(inner, event["Event"], None) == event["Event"]


async def test_imports_of_an_inline_document_go_through_fetch_too(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    # Absolute import location: fetched (the guard decides); relative: refused, as an
    # inline document has no base URL (and must not reach the local file system).
    absolute = EVENTS_WSDL.replace(
        'schemaLocation="events.xsd"', f'schemaLocation="{receiver.url("/erp/events.xsd")}"'
    )
    request = await SoapEnvelopes(fetch).build(
        publish(wsdl_document=absolute), "sub-4:1", payload()
    )
    assert_valid(
        etree.XMLSchema(etree.fromstring(EVENTS_XSD.encode())), body_child(request.body, "1.2")
    )
    assert fetch.asked == [receiver.url("/erp/events.xsd")]

    for location in ("events.xsd", "/etc/passwd", "file:///etc/passwd"):
        wsdl = EVENTS_WSDL.replace('schemaLocation="events.xsd"', f'schemaLocation="{location}"')
        with pytest.raises(SoapSettingsError, match="only absolute http") as caught:
            await SoapEnvelopes(never).build(publish(wsdl_document=wsdl), "sub-4:2", payload())
        assert location.rsplit("/", 1)[-1] in str(caught.value)


async def test_an_import_to_a_refused_destination_refuses_the_wsdl(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    wsdl = EVENTS_WSDL.replace(
        'schemaLocation="events.xsd"',
        'schemaLocation="https://169.254.169.254/latest/meta-data/events.xsd"',
    )
    receiver.reply("/erp/metadata.wsdl", Reply(200, wsdl.encode()))
    soap = publish(wsdl_url=receiver.url("/erp/metadata.wsdl"))
    with pytest.raises(SoapSettingsError) as caught:
        await SoapEnvelopes(fetch).build(soap, "sub-5:1", payload())
    message = str(caught.value)
    assert "https://169.254.169.254/latest/meta-data/events.xsd" in message
    assert "refused" in message
    assert isinstance(caught.value.__cause__, PermissionError)
    assert fetch.asked == [soap.wsdl_url, "https://169.254.169.254/latest/meta-data/events.xsd"]
    assert len(receiver.received) == 1  # the WSDL only


async def test_a_wsdl_url_to_a_refused_destination(fetch: Fetcher) -> None:
    soap = notify(wsdl_url="https://10.0.0.7/crm/notifications.wsdl")
    with pytest.raises(SoapSettingsError, match=r"https://10\.0\.0\.7/crm/notifications\.wsdl"):
        await SoapEnvelopes(fetch).build(soap, "sub-5:2", payload())


async def test_an_import_over_plain_http_is_refused_unfetched(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    # Issue 11: every URL the platform fetches is https; an import over http could be read
    # or changed on the way. Refused before anything is asked, by URL and inline alike.
    # (Another host than the WSDL's: zeep itself upgrades an import of the WSDL's own host.)
    plain = receiver.url("/erp/events.xsd").replace("https://127.0.0.1", "http://localhost")
    wsdl = EVENTS_WSDL.replace('schemaLocation="events.xsd"', f'schemaLocation="{plain}"')
    receiver.reply("/erp/plain-import.wsdl", Reply(200, wsdl.encode()))
    by_url = publish(wsdl_url=receiver.url("/erp/plain-import.wsdl"))
    for soap, key in ((by_url, "sub-5:3"), (publish(wsdl_document=wsdl), "sub-5:4")):
        with pytest.raises(SoapSettingsError, match="over https only") as caught:
            await SoapEnvelopes(fetch).build(soap, key, payload())
        assert plain in str(caught.value)
    assert plain not in fetch.asked
    assert receiver.at("/erp/events.xsd") == []


async def test_a_remembered_refusal_is_still_a_refused_destination(fetch: Fetcher) -> None:
    # The delivery classes the attempt by the fetch's exception (the cause): a failure
    # served from the cache must carry it too, or the second attempt reads "configuration".
    soap = notify(wsdl_url="https://10.0.0.7/crm/notifications.wsdl")
    envelopes = SoapEnvelopes(fetch, failure_ttl=60)
    causes = []
    for _ in range(3):
        with pytest.raises(SoapSettingsError, match="refused") as caught:
            await envelopes.build(soap, "sub-5:5", payload())
        causes.append(caught.value.__cause__)
    assert fetch.asked == [soap.wsdl_url]  # served from the cache after the first
    assert all(isinstance(cause, PermissionError) for cause in causes), causes


@pytest.mark.parametrize(
    "document",
    [
        NOTIFICATIONS_WSDL[: len(NOTIFICATIONS_WSDL) // 2],  # cut short
        "this is not XML",
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]>'
        + NOTIFICATIONS_WSDL.split("?>", 1)[1],
    ],
    ids=["truncated", "not-xml", "doctype"],
)
async def test_an_unparseable_wsdl(document: str, receiver: HttpsReceiver, fetch: Fetcher) -> None:
    receiver.reply("/crm/broken.wsdl", Reply(200, document.encode()))
    soap = notify(wsdl_url=receiver.url("/crm/broken.wsdl"))
    with pytest.raises(SoapSettingsError) as by_url:
        await SoapEnvelopes(fetch).build(soap, "sub-6:1", payload())
    assert str(by_url.value).startswith(f"the WSDL at {soap.wsdl_url} cannot be parsed: ")
    assert "\n" not in str(by_url.value)

    with pytest.raises(SoapSettingsError, match=r"^the inline WSDL cannot be parsed: "):
        await SoapEnvelopes(never).build(notify(wsdl_document=document), "sub-6:2", payload())


async def test_an_operation_missing_from_the_wsdl(receiver: HttpsReceiver, fetch: Fetcher) -> None:
    soap = notify(wsdl_url=receiver.url("/crm/notifications.wsdl"), operation="Publish")
    with pytest.raises(SoapSettingsError) as caught:
        await SoapEnvelopes(fetch).build(soap, "sub-7:1", payload())
    assert str(caught.value) == (
        f"operation 'Publish' is not in the WSDL at {soap.wsdl_url} (its SOAP operations: Notify)"
    )


async def test_a_failed_fetch_names_the_url_without_its_secrets(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    url = receiver.url("/crm/missing.wsdl?access_token=s3cr3t-t0ken")
    url = url.replace("https://", "https://svc:pa55w0rd@")
    soap = notify(wsdl_url=url)
    with pytest.raises(SoapSettingsError) as caught:
        await SoapEnvelopes(fetch).build(soap, "sub-8:1", payload())
    message = str(caught.value)
    assert message.startswith(f"cannot fetch {receiver.url('/crm/missing.wsdl')}: ")
    assert "404" in message
    for secret in ("s3cr3t", "pa55w0rd", "svc:"):
        assert secret not in message
    assert isinstance(caught.value.__cause__, aiohttp.ClientResponseError)
    assert len(receiver.at("/crm/missing.wsdl")) == 1


async def test_a_fetch_that_raises() -> None:
    class Unreachable(OSError):
        pass

    async def failing(url: str) -> bytes:
        raise Unreachable("connection refused")

    soap = notify(wsdl_url="https://crm.example.com/soap?wsdl=1&key=hidden")
    with pytest.raises(SoapSettingsError) as caught:
        await SoapEnvelopes(failing).build(soap, "sub-8:2", payload())
    assert str(caught.value) == "cannot fetch https://crm.example.com/soap: connection refused"
    assert isinstance(caught.value.__cause__, Unreachable)


@pytest.mark.parametrize(
    ("edit", "parameters", "message"),
    [
        (  # the event's shape refused by a strict EventType
            (
                '<xsd:any namespace="##any" processContents="lax" minOccurs="0" '
                'maxOccurs="unbounded"/>',
                "",
            ),
            None,
            r"^the event does not fit element 'Event' of WSDL operation 'Notify': .*Tag",
        ),
        (  # no Event input and no xsd:any
            ('<xsd:element name="Event" type="tns:EventType"/>', ""),
            None,
            r"has neither an element named 'Event' nor an xsd:any",
        ),
        (None, [("ApiKey", "k"), ("Channel", "x")], r"'Channel' is not an input .*ApiKey, Source"),
        (None, [("Source", "x")], r"cannot be built .*Missing element ApiKey"),
        (None, [("ApiKey", "k"), ("Event", "x")], r"'Event' is not an input"),
    ],
)
async def test_a_wsdl_the_event_or_parameters_do_not_fit(
    edit: tuple[str, str] | None, parameters: list[tuple[str, str]] | None, message: str
) -> None:
    wsdl = NOTIFICATIONS_WSDL
    if edit is not None:
        assert edit[0] in wsdl
        wsdl = wsdl.replace(edit[0], edit[1])
    soap = notify(wsdl_document=wsdl)
    if parameters is not None:
        del soap.parameters[:]
        soap.parameters.extend(common_pb2.SoapParameter(name=n, value=v) for n, v in parameters)
    with pytest.raises(SoapSettingsError, match=message):
        await SoapEnvelopes(never).build(soap, "sub-9:1", payload("Tag", "OnAdd"))


async def test_a_parameter_value_its_type_refuses_is_not_quoted(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    soap = publish(wsdl_url=receiver.url("/erp/events.wsdl"))
    soap.parameters[1].value = "urgent-secret-ish"
    with pytest.raises(SoapSettingsError) as caught:
        await SoapEnvelopes(fetch).build(soap, "sub-9:2", payload())
    assert str(caught.value) == "the value of SOAP parameter 'Priority' is not a valid xsd:int"


async def test_concurrent_builds_parse_the_wsdl_once(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    envelopes = SoapEnvelopes(fetch)
    soap = notify(wsdl_url=receiver.url("/crm/notifications.wsdl"))
    requests = await asyncio.gather(
        *(envelopes.build(soap, "sub-10:1", payload()) for _ in range(20))
    )
    assert len({r.body for r in requests}) == 1
    assert len(receiver.at("/crm/notifications.wsdl")) == 1


async def test_failures_of_a_wsdl_url_are_remembered_for_a_while(
    receiver: HttpsReceiver, fetch: Fetcher
) -> None:
    soap = notify(wsdl_url=receiver.url("/crm/later.wsdl"))
    remembering = SoapEnvelopes(fetch, failure_ttl=0.5)
    for _ in range(3):
        with pytest.raises(SoapSettingsError, match="404"):
            await remembering.build(soap, "sub-11:1", payload())
    assert len(receiver.at("/crm/later.wsdl")) == 1

    # Once the WSDL is there and the failure forgotten, it is used.
    receiver.reply("/crm/later.wsdl", Reply(200, NOTIFICATIONS_WSDL.encode()))
    await asyncio.sleep(0.6)
    await remembering.build(soap, "sub-11:1", payload())
    assert len(receiver.at("/crm/later.wsdl")) == 2


async def test_the_cache_is_bounded(receiver: HttpsReceiver, fetch: Fetcher) -> None:
    envelopes = SoapEnvelopes(fetch, max_cached=2)
    soap = notify(wsdl_url=receiver.url("/crm/notifications.wsdl"))
    for key in ("a:1", "b:1", "a:1", "c:1", "a:1", "b:1"):
        await envelopes.build(soap, key, payload())
    # a, b parsed; a hit; c evicts b; a hit; b parsed again (evicting c).
    assert len(receiver.at("/crm/notifications.wsdl")) == 4
    assert envelopes.cached() == 2
