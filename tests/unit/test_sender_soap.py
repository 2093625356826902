"""The sender's SOAP envelopes without a WSDL, the JSON to XML rules, and SOAP Fault parsing.

Every envelope is parsed back twice: with lxml (libxml2) and with expat (minidom), a
stricter parser many receivers use, so "well-formed" means well-formed to both. The event
is read back out of the XML with an independent decoder of the name encoding and compared
with the JSON it came from.
"""

from __future__ import annotations

import re
import xml.dom.minidom
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from webhooks.v1 import common_pb2
from webhooks_catalogue.samples import sample_data
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.soap_envelope import (
    SOAP11_NAMESPACE,
    SOAP12_NAMESPACE,
    SoapSettingsError,
    xml_name,
)
from webhooks_sender.soap_faults import SoapFault, parse_fault

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
NS = "urn:example:crm:webhooks"


async def no_fetch(url: str) -> bytes:
    raise AssertionError(f"a generic envelope fetched {url}")


def event(entity: str = "Object", trigger: str = "OnNewActivity") -> dict[str, Any]:
    return {
        "Event": {
            "Subscription": entity,
            "Name": trigger,
            "Brand": "acme",
            "EventId": "evt-0001",
            "DeliveryId": "dlv-0001",
            "SubscriptionName": "crm objects",
            "OccurredAt": "2024-05-01T09:30:00.000Z",
            entity: sample_data(entity, trigger),
        }
    }


def settings(
    version: int = common_pb2.SOAP_VERSION_1_1,
    *,
    namespace: str = NS,
    action: str = "urn:example:crm:webhooks/Notify",
    parameters: tuple[tuple[str, str], ...] = (("ApiKey", "k-123"), ("Source", "webhooks")),
) -> common_pb2.SoapSettings:
    return common_pb2.SoapSettings(
        operation="Notify",
        namespace=namespace,
        soap_action=action,
        version=version,  # type: ignore[arg-type]
        parameters=[common_pb2.SoapParameter(name=n, value=v) for n, v in parameters],
    )


async def build(soap: common_pb2.SoapSettings, payload: dict[str, Any]) -> Any:
    return await SoapEnvelopes(no_fetch).build(soap, "sub-1:1", payload)


def parse(body: bytes) -> Any:
    # expat first: it refuses what libxml2 might let through (fourth-edition names).
    xml.dom.minidom.parseString(body)
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))


# An independent decoder of the name encoding (ISO/IEC 9075-14 style _xHHHH_ escapes).
_ESCAPE = re.compile(r"_x([0-9A-F]{4}|[0-9A-F]{8})_")


def decode_name(name: str) -> str:
    return "" if name == "_" else _ESCAPE.sub(lambda m: chr(int(m[1], 16)), name)


def read_back(element: Any, like: Any, namespace: str | None) -> Any:
    """The JSON value ``element`` holds, using ``like`` (the original) only for what XML
    cannot say by itself: scalar types, and one item versus a one-item array."""
    assert etree.QName(element).namespace == namespace, element.tag
    if element.get(XSI_NIL) == "true":
        assert len(element) == 0 and not element.text
        return None
    if isinstance(like, dict):
        assert not (element.text or "").strip()
        groups: dict[str, list[Any]] = {}
        for child in element:
            groups.setdefault(decode_name(etree.QName(child).localname), []).append(child)
        result: dict[str, Any] = {}
        for key, children in groups.items():
            expected = like.get(key)
            if isinstance(expected, list):
                result[key] = [
                    read_back(c, item, namespace)
                    for c, item in zip(children, expected, strict=True)
                ]
            else:
                assert len(children) == 1, f"{key} repeated"
                result[key] = read_back(children[0], expected, namespace)
        return result
    if isinstance(like, list):  # an array inside an array: its items are <item> elements
        assert all(etree.QName(c).localname == "item" for c in element)
        return [read_back(c, item, namespace) for c, item in zip(element, like, strict=True)]
    assert len(element) == 0
    text = element.text or ""
    if isinstance(like, bool):
        return {"true": True, "false": False}[text]
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    return text


def operation_element(body: bytes, version: str) -> Any:
    env = SOAP12_NAMESPACE if version == "1.2" else SOAP11_NAMESPACE
    root = parse(body)
    assert root.tag == f"{{{env}}}Envelope"
    assert [child.tag for child in root] == [f"{{{env}}}Body"]
    (operation,) = root[0]
    return operation


@pytest.mark.parametrize(
    ("version", "label"),
    [(common_pb2.SOAP_VERSION_1_1, "1.1"), (common_pb2.SOAP_VERSION_1_2, "1.2")],
)
async def test_generic_envelope_carries_operation_parameters_and_event(
    version: int, label: str
) -> None:
    payload = event()
    request = await build(settings(version), payload)

    operation = operation_element(request.body, label)
    assert operation.tag == f"{{{NS}}}Notify"
    children = list(operation)
    assert [(c.tag, c.text) for c in children[:2]] == [
        (f"{{{NS}}}ApiKey", "k-123"),
        (f"{{{NS}}}Source", "webhooks"),
    ]
    assert len(children) == 3
    assert children[2].tag == f"{{{NS}}}Event"
    assert read_back(children[2], payload["Event"], NS) == payload["Event"]


async def test_soap_1_1_content_type_and_action_header() -> None:
    request = await build(settings(common_pb2.SOAP_VERSION_1_1), event())
    assert request.content_type == "text/xml; charset=utf-8"
    assert request.headers == {"SOAPAction": '"urn:example:crm:webhooks/Notify"'}
    # Unspecified means 1.1.
    unspecified = await build(settings(common_pb2.SOAP_VERSION_UNSPECIFIED), event())
    assert unspecified.content_type == request.content_type
    assert parse(unspecified.body).tag == f"{{{SOAP11_NAMESPACE}}}Envelope"


async def test_soap_1_2_content_type_carries_the_action() -> None:
    request = await build(settings(common_pb2.SOAP_VERSION_1_2), event())
    assert request.content_type == (
        'application/soap+xml; charset=utf-8; action="urn:example:crm:webhooks/Notify"'
    )
    assert request.headers == {}


async def test_without_an_action() -> None:
    soap11 = await build(settings(common_pb2.SOAP_VERSION_1_1, action=""), event())
    assert soap11.headers == {"SOAPAction": '""'}  # the header is mandatory in SOAP 1.1
    soap12 = await build(settings(common_pb2.SOAP_VERSION_1_2, action=""), event())
    assert soap12.content_type == "application/soap+xml; charset=utf-8"


async def test_without_a_namespace_elements_are_unqualified() -> None:
    payload = event("Tag", "OnAdd")
    request = await build(settings(namespace=""), payload)
    operation = operation_element(request.body, "1.1")
    assert operation.tag == "Notify"
    assert operation[0].tag == "ApiKey"
    assert read_back(operation[2], payload["Event"], None) == payload["Event"]


async def test_body_is_utf8_with_a_declaration() -> None:
    request = await build(settings(), event("Object", "OnNew"))
    assert request.body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert "hasn't arrived…".encode() in request.body  # UTF-8, not character references


AWKWARD: dict[str, Any] = {
    "Event": {
        "Subscription": "Form",
        "Name": "OnSubmit",
        "text": "Ünïcödé — 数据 — שלום — 😀",
        "markup": "<b>bold</b> & 'quotes' \"double\" ]]> <![CDATA[x]]>",
        "controls": "tab\tnewline\ncr\r",
        "null": None,
        "empty string": "",
        "numbers": [0, -7, 3.25, 1e-300, 12345678901234567890],
        "flags": [True, False],
        "nested": [[1, 2], [], [[3]], {"inner": [None, "x"]}],
        "empty list": [],
        "": "empty key",
        "order id": "spaces",
        "1st": "leading digit",
        "a:b": "colon",
        "-dash": "leading dash",
        "x<y>&z": "markup in key",
        "_x0041_": "looks like an escape",
        "naïve": "latin letter",
        "数据": "CJK letters",
        "x\u3400": "extension A: fifth edition only",
        "emoji😀": "astral",
        "xmlish": {"xml": "reserved prefix"},
        "deep": {"a": {"b": {"c": {"d": [{"e": None}]}}}},
    }
}


async def test_awkward_keys_and_values_make_well_formed_xml() -> None:
    request = await build(settings(), AWKWARD)
    operation = operation_element(request.body, "1.1")
    event_element = operation[2]
    # Every key comes back under the decoder, every value as it was (empty arrays leave
    # no element, so they are the one thing that does not come back).
    expected = {k: v for k, v in AWKWARD["Event"].items() if v != []}
    got = read_back(event_element, expected, NS)
    assert got == expected
    assert list(got) == list(expected)  # in the object's order
    nil = event_element.find(f"{{{NS}}}null")
    assert nil is not None and nil.get(XSI_NIL) == "true"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("Id", "Id"),
        ("order id", "order_x0020_id"),
        ("1st", "_x0031_st"),
        ("a:b", "a_x003A_b"),
        ("-x", "_x002D_x"),
        ("x-1.2", "x-1.2"),
        ("_x0041_", "_x005F_x0041_"),
        ("_x", "_x"),  # not an escape: nothing to protect
        ("", "_"),
        ("naïve", "naïve"),
        ("x\u3400", "x_x3400_"),  # a name character in the fifth edition only
        ("x😀", "x_x0001F600_"),
    ],
)
def test_xml_name(key: str, name: str) -> None:
    assert xml_name(key) == name
    etree.Element(name)  # lxml accepts it
    xml.dom.minidom.parseString(f"<{name}/>")  # so does expat
    assert decode_name(name) == key


@pytest.mark.parametrize(
    "value", ["nul\x00", "bell\x07", "lone \ud800 surrogate", "not a char \ufffe"]
)
async def test_characters_xml_cannot_carry_become_replacement_characters(value: str) -> None:
    payload = {"Event": {"Subscription": "Tag", "value": value}}
    request = await build(settings(), payload)
    text = operation_element(request.body, "1.1")[2].find(f"{{{NS}}}value").text
    assert "\ufffd" in text
    assert text.replace("\ufffd", "") == re.sub("[\x00\x07\ud800\ufffe]", "", value)


async def test_parameter_values_are_escaped() -> None:
    request = await build(settings(parameters=(("Filter", "a < b && c > d"),)), event())
    assert operation_element(request.body, "1.1")[0].text == "a < b && c > d"


@pytest.mark.parametrize(
    ("soap", "message"),
    [
        (common_pb2.SoapSettings(operation="not a name", namespace=NS), "operation"),
        (common_pb2.SoapSettings(operation="", namespace=NS), "operation"),
        (
            common_pb2.SoapSettings(
                operation="Notify", parameters=[common_pb2.SoapParameter(name="a b", value="")]
            ),
            "parameter 'a b'",
        ),
        (common_pb2.SoapSettings(operation="Notify", soap_action='a"b'), "action"),
        (common_pb2.SoapSettings(operation="Notify", soap_action="a\r\nX-Evil: 1"), "action"),
    ],
)
async def test_unusable_generic_settings(soap: common_pb2.SoapSettings, message: str) -> None:
    with pytest.raises(SoapSettingsError, match=message):
        await build(soap, event())


# --------------------------------------------------------------------------------------
# Faults

FAULT_11 = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault>
      <faultcode>soap:Client</faultcode>
      <faultstring xml:lang="en">Invalid API key &amp; unknown brand</faultstring>
      <detail><e:Error xmlns:e="urn:example">KEY_REJECTED</e:Error></detail>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>"""

FAULT_12 = """<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
              xmlns:app="urn:example:app">
  <env:Header/>
  <env:Body>
    <env:Fault>
      <env:Code>
        <env:Value>env:Sender</env:Value>
        <env:Subcode><env:Value>app:QuotaExceeded</env:Value></env:Subcode>
      </env:Code>
      <env:Reason>
        <env:Text xml:lang="de">Kontingent überschritten</env:Text>
        <env:Text xml:lang="en-GB">Quota exceeded for brand acme</env:Text>
      </env:Reason>
      <env:Detail><app:Limit>1000</app:Limit></env:Detail>
    </env:Fault>
  </env:Body>
</env:Envelope>""".encode()

RESPONSE_11 = b"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body><m:NotifyResponse xmlns:m="urn:example"><m:Accepted>true</m:Accepted>
  </m:NotifyResponse></soap:Body></soap:Envelope>"""


def test_soap_1_1_fault() -> None:
    assert parse_fault(FAULT_11) == SoapFault("soap:Client", "Invalid API key & unknown brand")


def test_soap_1_2_fault_prefers_english_and_keeps_subcodes() -> None:
    assert parse_fault(FAULT_12) == SoapFault(
        "env:Sender/app:QuotaExceeded", "Quota exceeded for brand acme"
    )


def test_soap_1_2_fault_in_another_language() -> None:
    body = FAULT_12.replace(
        b'<env:Text xml:lang="en-GB">Quota exceeded for brand acme</env:Text>', b""
    )
    assert parse_fault(body) == SoapFault(
        "env:Sender/app:QuotaExceeded", "Kontingent überschritten"
    )


def test_qualified_1_1_fault_children() -> None:
    body = FAULT_11.replace(b"faultcode>", b"soap:faultcode>").replace(
        b"faultstring", b"soap:faultstring"
    )
    assert parse_fault(body) == SoapFault("soap:Client", "Invalid API key & unknown brand")


def test_fault_cut_short_by_the_response_limit() -> None:
    cut = FAULT_11[: FAULT_11.index(b"<detail>") + 12]
    assert parse_fault(cut) == SoapFault("soap:Client", "Invalid API key & unknown brand")


def test_long_fault_text_is_cut() -> None:
    body = FAULT_11.replace(b"Invalid API key &amp; unknown brand", b"x" * 50_000)
    fault = parse_fault(body)
    assert fault is not None and 100 < len(fault.string) <= 1024


def test_a_1_2_fault_without_code_or_reason_is_still_a_fault() -> None:
    # 1.1 children in a 1.2 Fault: not read as a 1.2 code and reason, but still a fault.
    body = FAULT_11.replace(SOAP11_NAMESPACE.encode(), SOAP12_NAMESPACE.encode())
    assert parse_fault(body) == SoapFault("", "")


@pytest.mark.parametrize(
    "body",
    [
        RESPONSE_11,
        b"",
        b"not xml at all",
        b"\x00\xff\xfe garbage \x80\x81",
        b'{"Fault": {"faultcode": "x"}}',
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"<Envelope><Body><Fault><faultcode>x</faultcode></Fault></Body></Envelope>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">',
        b"<?xml version='1.0'?>",
    ],
)
def test_no_fault(body: bytes) -> None:
    assert parse_fault(body) is None


def test_entities_are_not_expanded() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE soap:Envelope ['
        b'<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
        b'<!ENTITY file SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b"<soap:Fault><faultcode>&d;</faultcode><faultstring>&file;</faultstring></soap:Fault>"
        b"</soap:Body></soap:Envelope>"
    )
    # A SOAP message may not carry a DTD at all: no fault is read out of one.
    assert parse_fault(laughs) is None
