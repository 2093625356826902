"""What the console's pages must never show a person (issue 16's one-vocabulary rule), and
how a browser test reads a page's visible text: catalogue ids written differently from
their display names, UUIDs, gRPC code names, proto enum value names and internal field
paths; the text outside ``.id`` (an id shown as an id) and ``.data`` (the customer's data
as sent) elements, with every ``<details>`` opened and every select's options. And the
subscriptions the walk makes, so that every page has something of every kind to show."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from types import ModuleType

import grpc
from google.protobuf.descriptor import Descriptor
from playwright.async_api import Page

from tests.support.platform_stack import rest
from tests.support.receivers import HttpsReceiver
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


# Outside the elements that show an id as an id, or the customer's own data as sent; with
# the options of every select and what aria-label and placeholder say.
VISIBLE_TEXT = """() => {
  const hidden = Array.from(document.querySelectorAll('.id, .data'));
  const before = hidden.map((e) => e.style.display);
  hidden.forEach((e) => { e.style.display = 'none'; });
  document.querySelectorAll('details:not(.menu)').forEach((d) => { d.open = true; });
  const shown = (e) => !e.closest('.id, .data');
  const options = Array.from(document.querySelectorAll('select option')).filter(shown);
  const labels = Array.from(document.querySelectorAll('[aria-label], [placeholder]')).filter(shown);
  const text = [
    document.body.innerText,
    ...options.map((o) => o.text),
    ...labels.map((e) => e.getAttribute('aria-label') || e.getAttribute('placeholder')),
  ].join('\\n');
  hidden.forEach((e, i) => { e.style.display = before[i]; });
  return text;
}"""


PAIRS = """(selector) => Array.from(document.querySelectorAll(selector + ' dt')).map(
  (dt) => [dt.innerText.trim(), dt.nextElementSibling ? dt.nextElementSibling.innerText.trim() : '']
)"""


async def pairs(page: Page, selector: str) -> dict[str, str]:
    """The (label, value) lines of the description lists under ``selector``."""
    found: list[list[str]] = await page.evaluate(PAIRS, selector)
    return dict((label, value) for label, value in found)


# ---- what the walk makes


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


def walk_specs(
    receiver: HttpsReceiver, token_url: str, client_secret: str, certificate_id: str
) -> list[subscriptions_pb2.SubscriptionSpec]:
    """Every entity, REST and SOAP (a generic envelope, and one by WSDL URL), Basic and
    OAuth 2.0, a client certificate, WhatsApp channels and statuses, triggers with their
    components. "Object feed" answers 500 (/fail) and "ERP audit" a SOAP fault
    (/soap-fault) once the receiver is told to."""
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
            token_url=token_url, client_id="erp", client_secret=client_secret, scope="webhooks"
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
