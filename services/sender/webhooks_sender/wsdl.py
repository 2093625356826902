"""SOAP envelopes from a WSDL: the WSDL loaded through the guarded transport, the
operation's binding and inputs found, and the envelope built by zeep (``Plan``). The
envelope's XML rules are ``soap_envelope.py``'s; caching plans is ``soap.py``'s.

How the binding and inputs are chosen, where the event goes, and what loading refuses:
services/sender/README.md, "SOAP envelopes from a WSDL".
"""

from __future__ import annotations

import asyncio
import copy
import io
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import zeep
import zeep.proxy
import zeep.xsd

# No lxml stubs in the environment (lxml-stubs is not a dependency): etree is Any here.
from lxml import etree  # type: ignore[import-untyped]
from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding
from zeep.xsd.context import XmlParserContext

from webhooks.v1 import common_pb2
from webhooks_sender.soap_envelope import (
    SOAP11_NAMESPACE,
    SOAP12_NAMESPACE,
    Flat,
    Names,
    SoapRequest,
    SoapSettingsError,
    append,
    checked_action,
    detail,
    qname,
    request,
    xml_name,
    xml_text,
)
from webhooks_sender.wsdl_fetch import FetchTransport, redacted

__all__ = ["Plan", "load_plan"]

log = logging.getLogger(__name__)

MAX_DETAIL = 300  # characters of a third-party error message quoted in ours


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

    def child(self, key: str) -> tuple[str, Names]:
        name = xml_name(key)
        element = self.children.get(name)
        if element is None:
            return qname(self.namespace, name), Flat(self.namespace)
        return element.qname.text, _Schema(element)


@dataclass
class Plan:
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
                append(event, root_key, root_value, Flat(soap.namespace or None))
                kwargs[event_name] = etree.tostring(event[0], encoding="unicode")
            else:
                holder = etree.Element("_")
                append(holder, root_key, root_value, _SingleName(event_input))
                built = holder[0]
                kwargs[event_name] = self._parsed(event_input, built)
        elif self.wildcard is not None:
            holder = etree.Element("_")
            append(holder, root_key, root_value, Flat(soap.namespace or None))
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
                f"subscription's parameters and the event: {detail(exc)}"
            ) from None
        if built is not None and event_input is not None:
            _put_back(message, event_input.qname.text, built)
        etree.cleanup_namespaces(message)
        action = soap.soap_action or self.action
        origin = "the subscription" if soap.soap_action else "the WSDL"
        return request(message, self.version, checked_action(action, origin))

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
                f"operation {self.operation!r}: {detail(exc)}"
            ) from None


class _SingleName:
    """Names the event's root element after a zeep element, its content after its type."""

    __slots__ = ("element",)

    def __init__(self, element: Any) -> None:
        self.element = element

    def child(self, key: str) -> tuple[str, Names]:
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


_SETTINGS = zeep.Settings(
    strict=True,
    forbid_dtd=True,  # a WSDL needs none; refusing them rules out entity tricks
    forbid_entities=True,
    forbid_external=False,  # imports are wanted: they go through the guarded fetch
    xml_huge_tree=False,
)


def load_plan(
    soap: common_pb2.SoapSettings,
    fetch: Callable[[str], Awaitable[bytes]],
    loop: asyncio.AbstractEventLoop,
    timeout: float,
) -> Plan:
    """Parse the WSDL and find the operation (in a worker thread)."""
    transport = FetchTransport(fetch, loop, timeout)
    transport.root = soap.wsdl_url or None
    source = f"the WSDL at {redacted(soap.wsdl_url)}" if soap.wsdl_url else "the inline WSDL"
    wsdl: Any = soap.wsdl_url or io.BytesIO(soap.wsdl_document.encode("utf-8"))
    try:
        client = zeep.Client(wsdl, transport=transport, settings=_SETTINGS)  # type: ignore[no-untyped-call]
    except Exception as exc:
        if transport.problem is not None:
            raise SoapSettingsError(transport.problem) from transport.cause
        raise SoapSettingsError(f"{source} cannot be parsed: {detail(exc)}") from None
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
    return Plan(
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
