"""SOAP 1.1 / 1.2 envelopes for SOAP subscriptions, and SOAP Fault parsing.

``SoapEnvelopes.build(soap, cache_key, envelope)`` turns the shaped payload (the JSON
envelope ``{"Event": {...}}`` as a dict) into a ``SoapRequest``: the envelope's bytes, the
content type and the extra headers. ``parse_fault(body)`` reads a SOAP Fault out of a
response body. ``SoapSettingsError`` says that the subscription's SOAP settings cannot be
used as they are (the caller records a failed attempt of class CONFIGURATION).

Versions and actions
--------------------
SOAP 1.1: ``Content-Type: text/xml; charset=utf-8`` and ``SOAPAction: "<action>"`` (``""``
when there is no action: the header is mandatory in 1.1). SOAP 1.2:
``Content-Type: application/soap+xml; charset=utf-8; action="<action>"`` (no action
parameter when there is no action) and no SOAPAction header.

JSON to XML (the event, in both kinds of envelope)
--------------------------------------------------
- an object is an element per key, in the key order of the object;
- an array is the element repeated once per item (an empty array: no element); an array
  that is itself an item of an array becomes one element holding its items as repeated
  ``item`` elements;
- ``null`` is an empty element with ``xsi:nil="true"``;
- ``true``/``false`` are written ``true``/``false``, numbers as JSON writes them (NaN and
  infinities, which only lenient JSON has, as XSD's ``NaN``, ``INF``, ``-INF``), strings as
  text (escaped by the serializer);
- a character XML 1.0 cannot carry (control characters, lone surrogates, U+FFFE/U+FFFF)
  becomes U+FFFD in text;
- a key is used as the element name when it is an XML NCName (no ``:``) under both the
  fourth and the fifth edition of XML 1.0, so that parsers of either accept it (expat and
  Xerces keep the fourth edition's narrower letters, libxml2 and .NET the fifth's).
  Otherwise every character that cannot stand where it is becomes ``_xHHHH_``
  (``_xHHHHHHHH_`` beyond U+FFFF), the hex of its code point, as ISO/IEC 9075-14 (SQL/XML)
  and .NET's ``XmlConvert.EncodeLocalName`` do, so ``order id`` is ``order_x0020_id`` and
  ``1st`` is ``_x0031_st``; an ``_`` that would otherwise read as the start of such an
  escape is itself written ``_x005F_``, so decoding is unambiguous; the empty key is ``_``.

The generic envelope (no WSDL)
------------------------------
``Envelope/Body/<operation>`` in ``namespace`` (no namespace when none is configured),
holding first the configured parameters as ``<name>value</name>``, then the event
(``<Event>...</Event>``). Every element inside the body element is in the same namespace
(like a schema with ``elementFormDefault="qualified"``).

With a WSDL (``wsdl_url`` or inline ``wsdl_document``)
------------------------------------------------------
The WSDL (and every document it imports, each fetched through the caller's ``fetch``: the
guarded transport) is parsed with zeep and cached per ``cache_key``; zeep builds the
envelope of the operation named ``operation`` (``Client.create_message``), so the body is
what the WSDL asks for. The binding is the first SOAP binding (ports of services first)
that has the operation, preferring one of the configured version when the settings name
one; the SOAP version is the binding's, the action the subscription's ``soap_action``, else
the binding operation's ``soapAction``.

The operation's *inputs* are the children of its body element (document/literal wrapped:
the wrapper element's children; several parts or RPC style: the parts):

- each configured parameter fills the input of the same name; a parameter that names no
  input, or an input of a complex type, is a settings error, as is a value the input's
  simple type refuses (the value itself is never quoted: it may be a key);
- the event goes into the input named like the envelope's root ("Event"). When that input
  has a complex type (or ``xsd:anyType``), the event's XML is built with the schema's
  element names and namespaces (an element the schema does not name, under an
  ``xsd:any``, takes its parent's namespace), parsed by zeep against the input's type
  (which must accept it), and sent as built (so values keep their exact text, such as the
  milliseconds of ``OccurredAt``); when that input has a simple type (``xsd:string``), it
  receives the event's XML as text. Without such an input, the event element goes into the
  input's ``xsd:any`` wildcard, in the subscription's ``namespace`` (none when empty).
  Without either, the WSDL does not fit: settings error.
- required inputs left empty make zeep refuse the message: settings error.

WSDL loading runs zeep (synchronous) in a worker thread (``asyncio.to_thread``); its
transport hands every URL to ``fetch`` on the event loop and waits for the result, so no
document is ever fetched except through the guarded transport. Only https locations are
loaded (an inline document's relative or file imports are refused; plain http only for the
``wsdl_url`` itself, which the subscriptions service admits over http solely to a loopback
host under ``WEBHOOKS_ALLOW_HTTP_LOOPBACK``: an import over http could be read or altered on
the way, and every other URL the platform fetches is https), at most
``MAX_DOCUMENTS`` documents of ``MAX_DOCUMENT_BYTES`` each per WSDL; DTDs and entities are
refused. Loads of the same key share one fetch (single flight); failures of a
``wsdl_url`` are remembered for ``failure_ttl`` seconds so a dead WSDL server is not asked
again by every delivery waiting for it, failures of an inline document until evicted; a
remembered failure is raised with its fetch's exception as ``__cause__`` again, so a
refused destination stays one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import io
import logging
import math
import re
import time
import xml.parsers.expat
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import zeep
import zeep.proxy
import zeep.xsd

# No lxml stubs in the environment (lxml-stubs is not a dependency): etree is Any here.
from lxml import etree  # type: ignore[import-untyped]
from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding
from zeep.xsd.context import XmlParserContext

from webhooks.v1 import common_pb2

__all__ = [
    "MAX_DOCUMENTS",
    "MAX_DOCUMENT_BYTES",
    "SOAP11_NAMESPACE",
    "SOAP12_NAMESPACE",
    "SoapEnvelopes",
    "SoapFault",
    "SoapRequest",
    "SoapSettingsError",
    "parse_fault",
    "xml_name",
]

log = logging.getLogger(__name__)

SOAP11_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_NIL = f"{{{XSI_NAMESPACE}}}nil"

MAX_DOCUMENTS = 32  # WSDL + imported WSDLs and schemas, per subscription
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_FAULT_TEXT = 1024  # characters kept of a fault's code and string
_MAX_DETAIL = 300  # characters of a third-party error message quoted in ours

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


@dataclass(frozen=True)
class SoapFault:
    code: str
    string: str


# --------------------------------------------------------------------------------------
# SOAP Faults


def _fault_parser() -> etree.XMLParser:
    # No entities, no DTD, no network: a response body is untrusted. recover=True keeps
    # what came before a cut (the transport keeps at most 8 KiB of a response body), so a
    # long fault whose code and string came first is still read.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
    )


def parse_fault(body: bytes) -> SoapFault | None:
    """The SOAP Fault (1.1 or 1.2) in a response body, or None when it holds none."""
    if not body:
        return None
    try:
        root = etree.fromstring(body, _fault_parser())
    except (etree.LxmlError, ValueError):
        return None
    if root is None:
        return None
    # A SOAP message must not contain a DTD (SOAP 1.1 section 3, SOAP 1.2 part 1 5.0).
    if root.getroottree().docinfo.doctype:
        return None
    namespace = etree.QName(root).namespace
    if namespace not in (SOAP11_NAMESPACE, SOAP12_NAMESPACE) or etree.QName(root).localname != (
        "Envelope"
    ):
        return None
    fault = root.find(f"{{{namespace}}}Body/{{{namespace}}}Fault")
    if fault is None:
        return None
    if namespace == SOAP11_NAMESPACE:
        # faultcode/faultstring are unqualified in 1.1, but some servers qualify them.
        return SoapFault(
            code=_text(_child(fault, "faultcode")), string=_text(_child(fault, "faultstring"))
        )
    codes = []
    code = fault.find(f"{{{namespace}}}Code")
    while code is not None:
        value = _text(code.find(f"{{{namespace}}}Value"))
        if value:
            codes.append(value)
        code = code.find(f"{{{namespace}}}Subcode")
    texts = fault.findall(f"{{{namespace}}}Reason/{{{namespace}}}Text")
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    english = [t for t in texts if (t.get(lang) or "").lower().startswith("en")]
    reason = (english or texts or [None])[0]
    return SoapFault(code=_cut("/".join(codes)), string=_text(reason))


def _child(parent: etree._Element, localname: str) -> etree._Element | None:
    for child in parent:
        if isinstance(child.tag, str) and etree.QName(child).localname == localname:
            return child
    return None


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return _cut("".join(element.itertext()).strip())


def _cut(text: str, limit: int = MAX_FAULT_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _qname(namespace: str | None, localname: str) -> str:
    return f"{{{namespace}}}{localname}" if namespace else localname


class _Names(Protocol):
    def child(self, key: str) -> tuple[str, _Names]:
        """The tag of the element for ``key``, and how its own children are named."""


class _Flat:
    """Every element in one namespace (or none)."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace

    def child(self, key: str) -> tuple[str, _Names]:
        return _qname(self.namespace, xml_name(key)), self


class _Schema:
    """Names from a zeep element's type: its child elements' qualified names, or, for what
    the schema does not name (content of an xsd:any), the parent's namespace."""

    __slots__ = ("children", "namespace")

    def __init__(self, element: Any) -> None:
        self.namespace: str | None = element.qname.namespace
        self.children: dict[str, Any] = {}
        for _name, child in getattr(element.type, "elements", ()):
            if isinstance(child, zeep.xsd.Element) and child.qname is not None:
                self.children.setdefault(child.qname.localname, child)

    def child(self, key: str) -> tuple[str, _Names]:
        name = xml_name(key)
        element = self.children.get(name)
        if element is None:
            return _qname(self.namespace, name), _Flat(self.namespace)
        return element.qname.text, _Schema(element)


def _append(parent: etree._Element, key: str, value: Any, names: _Names) -> None:
    tag, inner = names.child(key)
    if isinstance(value, list | tuple):
        for item in value:
            _append_one(parent, tag, item, inner)
    else:
        _append_one(parent, tag, value, inner)


def _append_one(parent: etree._Element, tag: str, value: Any, names: _Names) -> None:
    element = etree.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _append(element, str(key), item, names)
    elif isinstance(value, list | tuple):
        _append(element, "item", value, names)  # an array inside an array
    elif value is None:
        element.set(_XSI_NIL, "true")
    else:
        element.text = _scalar(value)


# --------------------------------------------------------------------------------------
# Requests


def _version(soap: common_pb2.SoapSettings) -> str:
    return "1.2" if soap.version == common_pb2.SOAP_VERSION_1_2 else "1.1"


def _checked_action(action: str, origin: str) -> str:
    # The action travels inside a quoted header value or media-type parameter.
    if any(ch in '"\\' or not ch.isprintable() for ch in action):
        raise SoapSettingsError(
            f"the SOAP action from {origin} contains characters a header cannot carry"
        )
    return action


def _request(envelope: etree._Element, version: str, action: str) -> SoapRequest:
    body = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
    if version == "1.2":
        content_type = "application/soap+xml; charset=utf-8"
        if action:
            content_type += f'; action="{action}"'
        return SoapRequest(body, content_type, {})
    return SoapRequest(body, "text/xml; charset=utf-8", {"SOAPAction": f'"{action}"'})


def _generic(soap: common_pb2.SoapSettings, envelope: Mapping[str, Any]) -> SoapRequest:
    if not _NCNAME.fullmatch(soap.operation):
        raise SoapSettingsError(f"the SOAP operation {soap.operation!r} is not an XML name")
    version = _version(soap)
    env = SOAP12_NAMESPACE if version == "1.2" else SOAP11_NAMESPACE
    namespace = soap.namespace or None
    root = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env, "xsi": XSI_NAMESPACE})
    body = etree.SubElement(root, f"{{{env}}}Body")
    operation = etree.SubElement(
        body, _qname(namespace, soap.operation), nsmap={None: namespace} if namespace else None
    )
    for parameter in soap.parameters:
        if not _NCNAME.fullmatch(parameter.name):
            raise SoapSettingsError(f"the SOAP parameter {parameter.name!r} is not an XML name")
        element = etree.SubElement(operation, _qname(namespace, parameter.name))
        element.text = xml_text(parameter.value)
    names = _Flat(namespace)
    for key, value in envelope.items():
        _append(operation, key, value, names)
    return _request(root, version, _checked_action(soap.soap_action, "the subscription"))


@dataclass
class _Plan:
    """What a parsed WSDL says about one operation, ready to build envelopes."""

    client: Any  # zeep.Client
    service: Any  # zeep.proxy.ServiceProxy over the chosen binding
    operation: str
    version: str
    action: str  # the binding operation's soapAction
    inputs: dict[str, Any]  # input name -> zeep Element
    wildcard: str | None  # the input name zeep gives an xsd:any, if any

    def build(self, soap: common_pb2.SoapSettings, envelope: Mapping[str, Any]) -> SoapRequest:
        if len(envelope) != 1:
            raise ValueError("the envelope must have exactly one root key")
        ((root_key, root_value),) = envelope.items()
        kwargs: dict[str, Any] = {}
        event_name = xml_name(root_key)
        event_input = self.inputs.get(event_name)
        for parameter in soap.parameters:
            kwargs[parameter.name] = self._parameter(parameter, event_input)
        built: etree._Element | None = None  # the event element to put back after zeep
        if event_input is not None:
            if isinstance(event_input.type, zeep.xsd.AnySimpleType):
                event = etree.Element("_")
                _append(event, root_key, root_value, _Flat(soap.namespace or None))
                kwargs[event_name] = etree.tostring(event[0], encoding="unicode")
            else:
                holder = etree.Element("_")
                _append(holder, root_key, root_value, _SingleName(event_input))
                built = holder[0]
                kwargs[event_name] = self._parsed(event_input, built)
        elif self.wildcard is not None:
            holder = etree.Element("_")
            _append(holder, root_key, root_value, _Flat(soap.namespace or None))
            kwargs[self.wildcard] = holder[0]
        else:
            raise SoapSettingsError(
                f"the input of WSDL operation {self.operation!r} has neither an element "
                f"named {event_name!r} nor an xsd:any for the event"
            )
        try:
            message = self.client.create_message(self.service, self.operation, **kwargs)
        except Exception as exc:  # zeep's ValidationError, TypeError for unknown inputs, ...
            raise SoapSettingsError(
                f"the input of WSDL operation {self.operation!r} cannot be built from the "
                f"subscription's parameters and the event: {_detail(exc)}"
            ) from None
        if built is not None and event_input is not None:
            _put_back(message, event_input.qname.text, built)
        etree.cleanup_namespaces(message)
        action = soap.soap_action or self.action
        origin = "the subscription" if soap.soap_action else "the WSDL"
        return _request(message, self.version, _checked_action(action, origin))

    def _parameter(self, parameter: common_pb2.SoapParameter, event_input: Any) -> Any:
        element = self.inputs.get(parameter.name)
        if element is None or element is event_input:
            names = ", ".join(n for n in self.inputs if self.inputs[n] is not event_input)
            raise SoapSettingsError(
                f"the SOAP parameter {parameter.name!r} is not an input of WSDL operation "
                f"{self.operation!r} (inputs: {names or 'none'})"
            )
        if not isinstance(element.type, zeep.xsd.AnySimpleType):
            raise SoapSettingsError(
                f"the SOAP parameter {parameter.name!r} names an input of a complex type in "
                f"WSDL operation {self.operation!r}; parameters only fill simple values"
            )
        try:
            # The value read as the input's type, so zeep writes it in that type's form.
            return element.type.pythonvalue(xml_text(parameter.value))
        except Exception:
            kind = element.type.qname.localname if element.type.qname else "type"
            raise SoapSettingsError(
                f"the value of SOAP parameter {parameter.name!r} is not a valid xsd:{kind}"
            ) from None

    def _parsed(self, element: Any, built: etree._Element) -> Any:
        context = XmlParserContext(settings=self.client.settings)  # type: ignore[no-untyped-call]
        try:
            # A copy: zeep's value keeps the xsd:any content as the very elements parsed,
            # and rendering moves them into the message, out of the event put back later.
            return element.parse(copy.deepcopy(built), self.client.wsdl.types, context=context)
        except Exception as exc:
            raise SoapSettingsError(
                f"the event does not fit element {element.qname.localname!r} of WSDL "
                f"operation {self.operation!r}: {_detail(exc)}"
            ) from None


class _SingleName:
    """Names the event's root element after a zeep element, its content after its type."""

    __slots__ = ("element",)

    def __init__(self, element: Any) -> None:
        self.element = element

    def child(self, key: str) -> tuple[str, _Names]:
        return self.element.qname.text, _Schema(self.element)


def _put_back(message: etree._Element, tag: str, built: etree._Element) -> None:
    # zeep renders the event from the parsed value, which loses exact text (a dateTime's
    # milliseconds); the element as built was accepted by the same parse, so it goes back.
    for parent in message.iter(f"{{{SOAP11_NAMESPACE}}}Body", f"{{{SOAP12_NAMESPACE}}}Body"):
        for candidate in (*parent, *(c for p in parent for c in p)):
            if candidate.tag == tag:
                candidate.getparent().replace(candidate, built)
                return
    raise AssertionError("zeep did not render the event's element")  # pragma: no cover


def _detail(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _cut(text, _MAX_DETAIL)


def _scrubbed(exc: BaseException, url: str) -> str:
    """The fetch error's message without what in a URL may carry credentials.

    Errors often quote the URL, not always as given (re-encoded, userinfo dropped), so
    every query string and userinfo in the text goes, not only the URL's exact text.
    """
    text = _detail(exc).replace(url, _redacted(url))
    text = re.sub(r"//[^/\s'\"@]*@", "//", text)
    return re.sub(r"\?[^\s'\"]*", "", text)


def _redacted(url: str) -> str:
    """``url`` without user info, query and fragment: they may carry credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme:
        return _cut(url.split("?", 1)[0], 200)
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# --------------------------------------------------------------------------------------
# WSDL loading


class _Refused(Exception):
    """Raised inside zeep's parse to stop it; the real reason is on the transport."""


class _FetchTransport(zeep.Transport):  # type: ignore[misc]
    """A zeep transport whose only way out is the caller's guarded ``fetch``.

    zeep loads synchronously from the worker thread; each load is handed to the event
    loop and awaited there, so the guarded transport's vetting applies to the WSDL and
    to every import.
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[bytes]],
        loop: asyncio.AbstractEventLoop,
        timeout: float,
    ) -> None:
        # Not Transport.__init__: it opens a requests Session, which must never be used.
        self.cache = None
        self.load_timeout = timeout
        self.operation_timeout = None
        self.logger = log
        self.session = None
        self._close_session = False
        self._fetch = fetch
        self._loop = loop
        self.documents: dict[str, bytes] = {}
        self.root: str | None = None  # the wsdl_url: the one location that may be http
        self.problem: str | None = None
        self.cause: BaseException | None = None

    def load(self, url: str) -> bytes:
        if self.problem is not None:
            raise _Refused(self.problem)
        if url in self.documents:
            return self.documents[url]
        scheme = urlsplit(str(url)).scheme.lower()
        if scheme not in ("https", "http"):
            return self._refuse(
                f"cannot fetch {_redacted(str(url))!r}: only absolute http(s) URLs are fetched "
                "(an inline WSDL document cannot import relative locations)"
            )
        if scheme == "http" and url != self.root:
            return self._refuse(
                f"cannot fetch {_redacted(str(url))!r}: WSDL imports are fetched over https only"
            )
        if len(self.documents) >= MAX_DOCUMENTS:
            return self._refuse(f"the WSDL imports more than {MAX_DOCUMENTS} documents")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # pragma: no cover - waiting here would deadlock the loop
            raise RuntimeError("WSDL documents are only loaded from a worker thread")
        future = asyncio.run_coroutine_threadsafe(self._get(url), self._loop)
        try:
            content = future.result(self.load_timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            return self._refuse(f"fetching {_redacted(url)} timed out", exc)
        except Exception as exc:
            return self._refuse(f"cannot fetch {_redacted(url)}: {_scrubbed(exc, url)}", exc)
        if len(content) > MAX_DOCUMENT_BYTES:
            return self._refuse(f"{_redacted(url)} is larger than {MAX_DOCUMENT_BYTES} bytes")
        self.documents[url] = content
        return content

    async def _get(self, url: str) -> bytes:
        return bytes(await self._fetch(url))

    def _refuse(self, problem: str, cause: BaseException | None = None) -> bytes:
        self.problem, self.cause = problem, cause
        raise _Refused(problem)


_SETTINGS = zeep.Settings(
    strict=True,
    forbid_dtd=True,  # a WSDL needs none; refusing them rules out entity tricks
    forbid_entities=True,
    forbid_external=False,  # imports are wanted: they go through the guarded fetch
    xml_huge_tree=False,
)


def _load(
    soap: common_pb2.SoapSettings,
    fetch: Callable[[str], Awaitable[bytes]],
    loop: asyncio.AbstractEventLoop,
    timeout: float,
) -> _Plan:
    """Parse the WSDL and find the operation (in a worker thread)."""
    transport = _FetchTransport(fetch, loop, timeout)
    transport.root = soap.wsdl_url or None
    source = f"the WSDL at {_redacted(soap.wsdl_url)}" if soap.wsdl_url else "the inline WSDL"
    wsdl: Any = soap.wsdl_url or io.BytesIO(soap.wsdl_document.encode("utf-8"))
    try:
        client = zeep.Client(wsdl, transport=transport, settings=_SETTINGS)  # type: ignore[no-untyped-call]
    except Exception as exc:
        if transport.problem is not None:
            raise SoapSettingsError(transport.problem) from transport.cause
        raise SoapSettingsError(f"{source} cannot be parsed: {_detail(exc)}") from None
    if transport.problem is not None:  # zeep went on without a document: still refused
        raise SoapSettingsError(transport.problem) from transport.cause
    binding = _binding(client.wsdl, soap, source)
    operation = binding.get(soap.operation)
    message = operation.input
    body = getattr(message, "body", None)
    if body is None:
        raise SoapSettingsError(
            f"WSDL operation {soap.operation!r} in {source} has no SOAP body to fill"
        )
    inputs: dict[str, Any] = {}
    wildcard = None
    for name, element in getattr(body.type, "elements", ()):
        if isinstance(element, zeep.xsd.Any):
            wildcard = wildcard or name
        elif isinstance(element, zeep.xsd.Element):
            inputs[name] = element
    return _Plan(
        client=client,
        service=zeep.proxy.ServiceProxy(client, binding, address=""),  # type: ignore[no-untyped-call]
        operation=soap.operation,
        version="1.2" if isinstance(binding, Soap12Binding) else "1.1",
        action=operation.soapaction or "",
        inputs=inputs,
        wildcard=wildcard,
    )


def _binding(wsdl: Any, soap: common_pb2.SoapSettings, source: str) -> Any:
    bindings: list[Any] = []
    for service in wsdl.services.values():
        bindings.extend(port.binding for port in service.ports.values())
    bindings.extend(wsdl.bindings.values())
    soap_bindings = [b for b in dict.fromkeys(bindings) if isinstance(b, SoapBinding)]
    having = [b for b in soap_bindings if soap.operation in b.all()]  # type: ignore[no-untyped-call]
    if not having:
        operations = sorted({name for b in soap_bindings for name in b.all()})  # type: ignore[no-untyped-call]
        listed = ", ".join(operations[:20]) + (", …" if len(operations) > 20 else "")
        raise SoapSettingsError(
            f"operation {soap.operation!r} is not in {source} "
            f"(its SOAP operations: {listed or 'none'})"
        )
    if soap.version != common_pb2.SOAP_VERSION_UNSPECIFIED:
        wanted = soap.version == common_pb2.SOAP_VERSION_1_2
        for binding in having:
            if isinstance(binding, Soap12Binding) == wanted:
                return binding
    return having[0]


@dataclass
class _Cached:
    plan: _Plan | None
    error: str | None
    expires: float  # time.monotonic(); math.inf for what does not expire
    # The failed fetch's exception: the caller classes a refused destination by it.
    cause: BaseException | None = None


class SoapEnvelopes:
    """Builds the SOAP requests of subscriptions; WSDLs parsed once per ``cache_key``.

    ``fetch(url)`` is the guarded HTTP GET every WSDL and import goes through; it raises
    on a refused destination, a failed request or a non-2xx status.
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[bytes]],
        *,
        max_cached: int = 256,
        failure_ttl: float = 30.0,
        fetch_timeout: float = 60.0,
    ) -> None:
        self._fetch = fetch
        self._max_cached = max_cached
        self._failure_ttl = failure_ttl
        self._fetch_timeout = fetch_timeout
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._loading: dict[str, asyncio.Task[_Plan]] = {}

    async def build(
        self, soap: common_pb2.SoapSettings, cache_key: str, envelope: Mapping[str, Any]
    ) -> SoapRequest:
        """The request for ``envelope`` (the shaped JSON payload as a dict).

        ``cache_key`` names the settings' version ("<subscription id>:<version>"): a WSDL
        is parsed once per key. Raises ``SoapSettingsError`` when the settings cannot be
        used.
        """
        if not soap.wsdl_url and not soap.wsdl_document:
            return _generic(soap, envelope)
        plan = await self._plan(soap, cache_key)
        return plan.build(soap, envelope)

    def cached(self) -> int:
        """How many keys the cache holds (plans and remembered failures)."""
        return len(self._cache)

    async def _plan(self, soap: common_pb2.SoapSettings, key: str) -> _Plan:
        cached = self._cache.get(key)
        if cached is not None:
            if cached.expires > time.monotonic():
                self._cache.move_to_end(key)
                if cached.plan is not None:
                    return cached.plan
                raise SoapSettingsError(cached.error) from cached.cause
            del self._cache[key]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(soap, key), name=f"wsdl {key}")
            self._loading[key] = task
            # Retrieved here so a load every waiter gave up on does not log as unretrieved.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        # shield: one waiter cancelled (its attempt timed out) must not cancel the load
        # the others wait for.
        return await asyncio.shield(task)

    async def _load(self, soap: common_pb2.SoapSettings, key: str) -> _Plan:
        loop = asyncio.get_running_loop()
        try:
            plan = await asyncio.to_thread(_load, soap, self._fetch, loop, self._fetch_timeout)
        except SoapSettingsError as exc:
            ttl = self._failure_ttl if soap.wsdl_url else math.inf
            if ttl > 0:
                cause = exc.__cause__
                if cause is not None:  # its frames need not live as long as the entry
                    cause = cause.with_traceback(None)
                self._remember(key, _Cached(None, str(exc), time.monotonic() + ttl, cause))
            raise
        else:
            self._remember(key, _Cached(plan, None, math.inf))
            return plan
        finally:
            self._loading.pop(key, None)

    def _remember(self, key: str, entry: _Cached) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
