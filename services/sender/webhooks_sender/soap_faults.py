"""SOAP Faults (1.1 and 1.2) read out of a response body: ``parse_fault(body)``."""

from __future__ import annotations

from dataclasses import dataclass

# No lxml stubs in the environment (lxml-stubs is not a dependency): etree is Any here.
from lxml import etree  # type: ignore[import-untyped]

from webhooks_sender.soap_envelope import SOAP11_NAMESPACE, SOAP12_NAMESPACE, cut

__all__ = ["MAX_FAULT_TEXT", "SoapFault", "parse_fault"]

MAX_FAULT_TEXT = 1024  # characters kept of a fault's code and string


@dataclass(frozen=True)
class SoapFault:
    code: str
    string: str


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
    return SoapFault(code=cut("/".join(codes), MAX_FAULT_TEXT), string=_text(reason))


def _child(parent: etree._Element, localname: str) -> etree._Element | None:
    for child in parent:
        if isinstance(child.tag, str) and etree.QName(child).localname == localname:
            return child
    return None


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return cut("".join(element.itertext()).strip(), MAX_FAULT_TEXT)
