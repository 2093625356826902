"""The rules a subscription's fields obey, and their canonical form.

Pure functions: each takes what a caller wrote and returns the canonical value, or raises
InvalidField with the value's path in SubscriptionSpec; InvalidFields when independent
values are wrong (every one of them: the first problem of each). Messages never repeat a secret or a
URL (a URL may carry credentials). The authentication's rules are in ``authentication``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

import webhooks_catalogue
from webhooks_catalogue import CatalogueError, CatalogueErrors, limits
from webhooks_catalogue.retry_policy import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_RETRIES,
    MAX_INTERVAL_SECONDS,
    MAX_RETRIES,
)
from webhooks_subscriptions.domain.errors import (
    InvalidField,
    InvalidFields,
    collect,
    valid_or_none,
)

# XML 1.0 (fifth edition) NameStartChar and NameChar, without ":" (an NCName).
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
NCNAME = re.compile(f"[{_NAME_START}][{_NAME_START}\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040]*")
# Characters XML 1.0 can carry at all; anything else cannot be put into an envelope.
_XML_CHARS = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_URN = re.compile(r"urn:[a-z0-9][a-z0-9-]{0,31}:\S+", re.IGNORECASE)
_WSDL_ROOTS = {
    "{http://schemas.xmlsoap.org/wsdl/}definitions": "{http://schemas.xmlsoap.org/wsdl/}",
    "{http://www.w3.org/ns/wsdl}description": "{http://www.w3.org/ns/wsdl}",
}


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidField("name", "is required")
    name = name.strip()
    if len(name) > limits.NAME_LENGTH:
        raise InvalidField(
            "name", f"must be at most {limits.NAME_LENGTH} characters, got {len(name)}"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in name):
        raise InvalidField("name", "must not contain control characters or line breaks")
    return name


def check_state_size(size: int) -> None:
    """The whole subscription, as the relay publishes it, must fit one NATS message with
    room to spare; each field within its own bound can still add up to more."""
    if size > limits.SUBSCRIPTION_STATE_BYTES:
        raise InvalidField(
            "subscription",
            f"the whole subscription serialises to {size} bytes, at most "
            f"{limits.SUBSCRIPTION_STATE_BYTES} bytes are allowed: use fewer triggers or values, "
            "or give the WSDL by wsdl_url",
        )


def normalise_name(name: str) -> str:
    """The form two names share when they differ only in case, width or spacing."""
    # NFKC again after casefold: casefolding can produce sequences NFKC would change.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def validate_triggers(
    entity: str, triggers: Sequence[Mapping[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    try:
        return webhooks_catalogue.validate_triggers(entity, triggers)
    except CatalogueErrors as errors:
        problems = [InvalidField(error.field, error.message) for error in errors.errors]
        raise InvalidFields(problems) from errors
    except CatalogueError as error:
        raise InvalidField(error.field, error.message) from error


def validate_url(value: object, field: str, *, allow_http_loopback: bool) -> str:
    """An absolute https URL (http only to a loopback host when allowed)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, "is required")
    url = value.strip()
    if len(url) > limits.URL_LENGTH:
        raise InvalidField(field, f"must be at most {limits.URL_LENGTH} characters, got {len(url)}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InvalidField(field, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError:
        raise InvalidField(field, "is not a well-formed URL") from None
    host = _host(parts, field)
    if parts.username is not None or parts.password is not None:
        raise InvalidField(field, "must not contain credentials; use authentication")
    if "#" in url:
        raise InvalidField(field, "must not have a fragment")
    scheme = parts.scheme.lower()
    if scheme == "http" and allow_http_loopback and _is_loopback(host):
        return url
    if scheme != "https":
        raise InvalidField(field, "must be an https:// URL")
    return url


def _host(parts: SplitResult, field: str) -> str:
    host = parts.hostname or ""
    if not parts.scheme or not host:
        raise InvalidField(field, "must be an absolute URL with a host")
    if parts.netloc.rpartition("@")[2].startswith("["):
        return host  # urlsplit has already checked the IPv6 literal
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidField(field, "has an invalid host name") from None
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidField(field, "has an invalid host name")
    return host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_webhook(webhook: Mapping[str, Any], *, allow_http_loopback: bool) -> dict[str, Any]:
    """The canonical webhook; its type, URL, certificate, SOAP settings and rate limit
    are checked each on its own, and every problem is reported."""
    kind, url, certificate, soap, rate = collect(
        lambda: _webhook_type(webhook.get("type")),
        lambda: validate_url(
            webhook.get("url"), "webhook.url", allow_http_loopback=allow_http_loopback
        ),
        lambda: certificate_id(webhook.get("client_certificate_id")),
        lambda: _soap_settings(webhook, allow_http_loopback),
        lambda: _rate_limit(webhook.get("rate_limit_per_second")),
    )
    canonical: dict[str, Any] = {
        "type": kind,
        "url": url,
        "client_certificate_id": certificate,
        "soap": soap,
    }
    if rate:  # absent when none: a webhook stored before limits existed compares equal
        canonical["rate_limit_per_second"] = rate
    return canonical


def _webhook_type(value: object) -> str:
    kind = value.strip().upper() if isinstance(value, str) else ""
    if kind not in ("REST", "SOAP"):
        raise InvalidField("webhook.type", "must be REST or SOAP")
    return kind


def certificate_id(value: object) -> str:
    certificate = value or ""
    if not isinstance(certificate, str) or (certificate and not _UUID.fullmatch(certificate)):
        raise InvalidField("webhook.client_certificate_id", "must be a certificate id (a UUID)")
    return certificate.lower()


def _soap_settings(webhook: Mapping[str, Any], allow_http_loopback: bool) -> dict[str, Any] | None:
    """The canonical SOAP settings of a SOAP webhook; None for any other type."""
    soap = webhook.get("soap") or {}
    if not isinstance(soap, Mapping):
        raise InvalidField("webhook.soap", "must be an object")
    kind = valid_or_none(lambda: _webhook_type(webhook.get("type")))
    if kind == "REST" and any(value not in (None, "", [], 0) for value in soap.values()):
        raise InvalidField("webhook.soap", "only SOAP webhooks take SOAP settings")
    return _soap(soap, allow_http_loopback) if kind == "SOAP" else None


def _rate_limit(value: Any) -> int:
    try:
        return webhooks_catalogue.validate_rate_limit(value)
    except CatalogueError as error:
        raise InvalidField(error.field, error.message) from error


def webhook_presentation(webhook: Mapping[str, Any]) -> tuple[str, str, str]:
    """(method, format, content_type) of a canonical webhook, shown to users read-only."""
    if webhook["type"] == "REST":
        return "POST", "JSON", "application/json"
    if webhook["soap"]["version"] == "1.2":
        return "POST", "XML", "application/soap+xml"
    return "POST", "XML", "text/xml"


def _soap(soap: Mapping[str, Any], allow_http_loopback: bool) -> dict[str, Any]:
    field = "webhook.soap"
    operation, namespace, action, version, wsdl, parameters = collect(
        lambda: _soap_operation(soap),
        lambda: _soap_namespace(soap),
        lambda: _soap_action(soap),
        lambda: _soap_version(soap),
        lambda: _wsdl(soap, valid_or_none(lambda: _soap_operation(soap)), allow_http_loopback),
        lambda: _soap_parameters(soap.get("parameters") or [], f"{field}.parameters"),
    )
    return {
        "operation": operation,
        "namespace": namespace,
        "soap_action": action,
        "version": version,
        "parameters": parameters,
        "wsdl_url": wsdl[0],
        "wsdl_document": wsdl[1],
    }


def _soap_operation(soap: Mapping[str, Any]) -> str:
    field = "webhook.soap.operation"
    operation = _text(soap, "operation", "webhook.soap")
    if not operation:
        raise InvalidField(field, "is required")
    _check_xml_name_length(field, operation)
    if not NCNAME.fullmatch(operation):
        raise InvalidField(field, "must be an XML name without a prefix")
    return operation


def _soap_namespace(soap: Mapping[str, Any]) -> str:
    field = "webhook.soap.namespace"
    namespace = _text(soap, "namespace", "webhook.soap")
    if len(namespace) > limits.URL_LENGTH:
        raise InvalidField(field, f"must be at most {limits.URL_LENGTH} characters")
    if namespace and not _absolute_uri(namespace):
        raise InvalidField(field, "must be an absolute http(s) or urn: URI")
    return namespace


def _soap_action(soap: Mapping[str, Any]) -> str:
    action = _text(soap, "soap_action", "webhook.soap")
    # The action travels inside a quoted HTTP header or media-type parameter.
    if len(action) > limits.SOAP_ACTION_LENGTH or any(
        ch == '"' or not ch.isprintable() for ch in action
    ):
        raise InvalidField(
            "webhook.soap.soap_action",
            f"must be at most {limits.SOAP_ACTION_LENGTH} printable characters without '\"'",
        )
    return action


def _soap_version(soap: Mapping[str, Any]) -> str:
    version = _text(soap, "version", "webhook.soap") or "1.1"
    if version not in ("1.1", "1.2"):
        raise InvalidField("webhook.soap.version", "must be 1.1 or 1.2")
    return version


def _wsdl(
    soap: Mapping[str, Any], operation: str | None, allow_http_loopback: bool
) -> tuple[str, str]:
    """(wsdl_url, wsdl_document); a document is checked to list the operation when the
    operation itself is valid."""
    field = "webhook.soap"
    wsdl_url = _text(soap, "wsdl_url", field)
    wsdl_document = _text(soap, "wsdl_document", field)
    if wsdl_url and wsdl_document:
        raise InvalidField(f"{field}.wsdl_document", "give either wsdl_url or wsdl_document")
    if wsdl_url:
        wsdl_url = validate_url(
            wsdl_url, f"{field}.wsdl_url", allow_http_loopback=allow_http_loopback
        )
    if wsdl_document:
        _check_wsdl(wsdl_document, operation, field)
    return wsdl_url, wsdl_document


def _check_xml_name_length(field: str, name: str) -> None:
    if len(name) > limits.XML_NAME_LENGTH:
        bound = limits.XML_NAME_LENGTH
        raise InvalidField(field, f"must be at most {bound} characters, got {len(name)}")


def _text(values: Mapping[str, Any], key: str, field: str) -> str:
    value = values.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidField(f"{field}.{key}", "must be a string")
    return value.strip()


def _absolute_uri(value: str) -> bool:
    if len(value) > limits.URL_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in value):
        return False
    if _URN.fullmatch(value):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _soap_parameters(parameters: object, field: str) -> list[dict[str, str]]:
    if not isinstance(parameters, list | tuple):
        raise InvalidField(field, "must be a list")
    if len(parameters) > limits.SOAP_PARAMETERS:
        limit = limits.SOAP_PARAMETERS
        raise InvalidField(field, f"at most {limit} parameters, got {len(parameters)}")
    result: list[dict[str, str]] = []
    first_use: dict[str, int] = {}
    for i, parameter in enumerate(parameters):
        path = f"{field}[{i}]"
        if not isinstance(parameter, Mapping):
            raise InvalidField(path, 'must be an object with "name" and "value"')
        name = _text(parameter, "name", path)
        _check_xml_name_length(f"{path}.name", name)
        if not NCNAME.fullmatch(name):
            raise InvalidField(f"{path}.name", "must be an XML name without a prefix")
        if name in first_use:
            raise InvalidField(f"{path}.name", f"is already used by parameters[{first_use[name]}]")
        first_use[name] = i
        value = parameter.get("value") or ""
        if not isinstance(value, str):
            raise InvalidField(f"{path}.value", "must be a string")
        if len(value) > limits.SOAP_PARAMETER_VALUE_LENGTH:
            limit = limits.SOAP_PARAMETER_VALUE_LENGTH
            raise InvalidField(f"{path}.value", f"must be at most {limit} characters")
        if not _XML_CHARS.fullmatch(value):
            raise InvalidField(f"{path}.value", "contains characters XML cannot carry")
        result.append({"name": name, "value": value})
    return result


def _check_wsdl(document: str, operation: str | None, field: str) -> None:
    path = f"{field}.wsdl_document"
    size = len(document.encode("utf-8"))
    if size > limits.WSDL_DOCUMENT_BYTES:
        limit = limits.WSDL_DOCUMENT_BYTES
        raise InvalidField(path, f"must be at most {limit} bytes, got {size}; or give a wsdl_url")
    # A WSDL needs no DTD; refusing one rules out entity-expansion tricks outright.
    if "<!DOCTYPE" in document.upper():
        raise InvalidField(path, "must not contain a DOCTYPE")
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        raise InvalidField(path, "is not well-formed XML") from None
    prefix = _WSDL_ROOTS.get(root.tag)
    if prefix is None:
        raise InvalidField(path, "must be a WSDL 1.1 definitions or WSDL 2.0 description")
    container = "portType" if prefix.endswith("/wsdl/}") else "interface"
    operations = {op.get("name") for op in root.iterfind(f"{prefix}{container}/{prefix}operation")}
    # Operations may live in an imported document; only a document that lists some can
    # say the chosen one is missing.
    if operation is not None and operations and operation not in operations:
        raise InvalidField(f"{field}.operation", "is not an operation of the WSDL document")


MIN_RETRY_INTERVAL_SECONDS = 10


def validate_retry_policy(
    policy: Mapping[str, Any] | None, *, min_interval: int = MIN_RETRY_INTERVAL_SECONDS
) -> dict[str, int]:
    """Retries 0..5 (default 3) and seconds between attempts ``min_interval``..86400
    (default 300); an operator may lower the minimum (drills, tests)."""
    given = policy or {}
    retries, interval = collect(
        lambda: _bounded(given, "retries", DEFAULT_RETRIES, 0, MAX_RETRIES),
        lambda: _bounded(
            given, "interval_seconds", DEFAULT_INTERVAL_SECONDS, min_interval, MAX_INTERVAL_SECONDS
        ),
    )
    return {"retries": retries, "interval_seconds": interval}


def _bounded(values: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = values.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(f"retry_policy.{key}", "must be an integer")
    if not low <= value <= high:
        raise InvalidField(f"retry_policy.{key}", f"must be between {low} and {high}")
    return value
