"""SOAP envelopes as XML: the request's bytes, content type and headers, the event's JSON
written as XML, and the generic envelope (no WSDL). What a WSDL adds is in ``wsdl.py``.

``SoapSettingsError`` says that the subscription's SOAP settings cannot be used as they are
(the caller records a failed attempt of class CONFIGURATION).

The rules (versions and actions, JSON to XML, the generic envelope):
services/sender/README.md, "SOAP envelopes".
"""

from __future__ import annotations

import math
import re
import xml.parsers.expat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

# No lxml stubs in the environment (lxml-stubs is not a dependency): etree is Any here.
from lxml import etree  # type: ignore[import-untyped]

from webhooks.v1 import common_pb2

__all__ = [
    "SOAP11_NAMESPACE",
    "SOAP12_NAMESPACE",
    "Flat",
    "Names",
    "SoapRequest",
    "SoapSettingsError",
    "append",
    "checked_action",
    "cut",
    "detail",
    "generic_request",
    "qname",
    "request",
    "xml_name",
    "xml_text",
]

SOAP11_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_NIL = f"{{{XSI_NAMESPACE}}}nil"
MAX_DETAIL = 300  # characters of a third-party error message quoted in ours

# XML 1.0 (fifth edition) NameStartChar and NameChar, without ":" (an NCName), as the
# subscriptions service validates operation and parameter names.
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_MORE = "\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
_NCNAME = re.compile(f"[{_NAME_START}][{_NAME_START}{_NAME_MORE}]*")
_NAME_START_CHAR = re.compile(f"[{_NAME_START}]")
_NAME_CHAR = re.compile(f"[{_NAME_START}{_NAME_MORE}]")
# An "_" that starts what reads as an escape must itself be escaped.
_LOOKS_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})_")
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class SoapRequest:
    body: bytes
    content_type: str
    headers: dict[str, str]


class SoapSettingsError(Exception):
    """The subscription's SOAP settings cannot be used; the message says what is wrong.

    When a fetch failed, ``__cause__`` is the fetch's own exception (so a caller can tell
    a refused destination from an unreachable one).
    """


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detail(exc: BaseException) -> str:
    """A third-party error's message on one line, cut to quote in ours."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return cut(text, MAX_DETAIL)


# --------------------------------------------------------------------------------------
# JSON to XML


@lru_cache(maxsize=8192)
def xml_name(key: str) -> str:
    """``key`` as an XML NCName (see the module docstring for the encoding)."""
    if not key:
        return "_"
    if key.isascii() and "_x" not in key and _NCNAME.fullmatch(key):
        return key
    out = []
    for i, ch in enumerate(key):
        if ch == "_" and _LOOKS_ESCAPED.match(key, i):
            out.append("_x005F_")
        elif _portable_name_char(ch, i == 0):
            out.append(ch)
        else:
            point = ord(ch)
            out.append(f"_x{point:04X}_" if point <= 0xFFFF else f"_x{point:08X}_")
    return "".join(out)


@lru_cache(maxsize=65536)
def _portable_name_char(ch: str, first: bool) -> bool:
    """Whether ``ch`` may stand in a name (first or not) under XML 1.0 fifth edition and
    fourth edition alike."""
    if not (_NAME_START_CHAR if first else _NAME_CHAR).fullmatch(ch):
        return False
    if ch.isascii():
        return True  # the ASCII name characters are the same in both editions
    # expat implements the fourth edition's character classes: asking it is exact where
    # copying its tables (Appendix B, hundreds of ranges) would not be.
    parser = xml.parsers.expat.ParserCreate()
    try:
        parser.Parse(f"<{ch}/>" if first else f"<a{ch}/>", True)
    except xml.parsers.expat.ExpatError:
        return False
    return True


def xml_text(value: str) -> str:
    """``value`` with the characters XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML_CHAR.sub("\ufffd", value) if _NOT_XML_CHAR.search(value) else value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "INF" if value > 0 else "-INF"
        return repr(value)  # the shortest text that reads back as the same double, as JSON
    if isinstance(value, str):
        return xml_text(value)
    return xml_text(str(value))


def qname(namespace: str | None, localname: str) -> str:
    return f"{{{namespace}}}{localname}" if namespace else localname


class Names(Protocol):
    def child(self, key: str) -> tuple[str, Names]:
        """The tag of the element for ``key``, and how its own children are named."""


class Flat:
    """Every element in one namespace (or none)."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace

    def child(self, key: str) -> tuple[str, Names]:
        return qname(self.namespace, xml_name(key)), self


def append(parent: etree._Element, key: str, value: Any, names: Names) -> None:
    tag, inner = names.child(key)
    if isinstance(value, list | tuple):
        for item in value:
            _append_one(parent, tag, item, inner)
    else:
        _append_one(parent, tag, value, inner)


def _append_one(parent: etree._Element, tag: str, value: Any, names: Names) -> None:
    element = etree.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for key, item in value.items():
            append(element, str(key), item, names)
    elif isinstance(value, list | tuple):
        append(element, "item", value, names)  # an array inside an array
    elif value is None:
        element.set(_XSI_NIL, "true")
    else:
        element.text = _scalar(value)


# --------------------------------------------------------------------------------------
# Requests


def _version(soap: common_pb2.SoapSettings) -> str:
    return "1.2" if soap.version == common_pb2.SOAP_VERSION_1_2 else "1.1"


def checked_action(action: str, origin: str) -> str:
    # The action travels inside a quoted header value or media-type parameter.
    if any(ch in '"\\' or not ch.isprintable() for ch in action):
        raise SoapSettingsError(
            f"the SOAP action from {origin} contains characters a header cannot carry"
        )
    return action


def request(envelope: etree._Element, version: str, action: str) -> SoapRequest:
    body = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
    if version == "1.2":
        content_type = "application/soap+xml; charset=utf-8"
        if action:
            content_type += f'; action="{action}"'
        return SoapRequest(body, content_type, {})
    return SoapRequest(body, "text/xml; charset=utf-8", {"SOAPAction": f'"{action}"'})


def generic_request(soap: common_pb2.SoapSettings, envelope: Mapping[str, Any]) -> SoapRequest:
    if not _NCNAME.fullmatch(soap.operation):
        raise SoapSettingsError(f"the SOAP operation {soap.operation!r} is not an XML name")
    version = _version(soap)
    env = SOAP12_NAMESPACE if version == "1.2" else SOAP11_NAMESPACE
    namespace = soap.namespace or None
    root = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env, "xsi": XSI_NAMESPACE})
    body = etree.SubElement(root, f"{{{env}}}Body")
    operation = etree.SubElement(
        body, qname(namespace, soap.operation), nsmap={None: namespace} if namespace else None
    )
    for parameter in soap.parameters:
        if not _NCNAME.fullmatch(parameter.name):
            raise SoapSettingsError(f"the SOAP parameter {parameter.name!r} is not an XML name")
        element = etree.SubElement(operation, qname(namespace, parameter.name))
        element.text = xml_text(parameter.value)
    names = Flat(namespace)
    for key, value in envelope.items():
        append(operation, key, value, names)
    return request(root, version, checked_action(soap.soap_action, "the subscription"))
