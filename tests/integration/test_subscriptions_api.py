"""The SubscriptionService through gRPC on both stores: the rules of a subscription both ways,
name uniqueness, optimistic concurrency, updates, the life cycle, history and the listing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.json_format import MessageToDict
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.integration.conftest import (
    Metadata,
    ServiceFactory,
    SubscriptionsService,
    basic_auth,
    object_trigger,
    rest_spec,
    rpc_error,
    soap_spec,
)
from webhooks.v1 import common_pb2, messages_pb2, subscriptions_pb2
from webhooks_grpc import describe_rpc_error, field_violations
from webhooks_telemetry import setup_tracing

Spec = subscriptions_pb2.SubscriptionSpec
Build = Callable[[str], Spec]

WSDL = """<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" name="Hooks">
  <portType name="HookPort"><operation name="Notify"/><operation name="Ping"/></portType>
</definitions>"""


def changes_of(entry: subscriptions_pb2.SubscriptionHistoryEntry) -> dict[str, Any]:
    changes: dict[str, Any] = MessageToDict(entry.changes)
    return changes


def assert_invalid(error: grpc.aio.AioRpcError, field: str) -> None:
    """INVALID_ARGUMENT naming ``field`` in the rich status and at the start of the message."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, describe_rpc_error(error)
    assert [f for f, _ in field_violations(error)] == [field], describe_rpc_error(error)
    assert (error.details() or "").startswith(f"{field}:"), error.details()


def changed(change: Callable[[Spec], object], base: Build = rest_spec) -> Build:
    """A spec builder: ``base(name)`` with ``change`` applied."""

    def build(name: str) -> Spec:
        spec = base(name)
        change(spec)
        return spec

    return build


def triggers(*given: common_pb2.TriggerSpec, entity: str = "Object") -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec.entity = entity
        del spec.triggers[:]
        spec.triggers.extend(given)

    return change


def webhook(**fields: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        for key, value in fields.items():
            setattr(spec.webhook, key, value)

    return change


def auth(**kinds: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec.authentication.CopyFrom(common_pb2.Authentication(**kinds))

    return change


def retry(**fields: int) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec.retry_policy.CopyFrom(common_pb2.RetryPolicy(**fields))

    return change


def soap(**settings: Any) -> Build:
    return lambda name: soap_spec(name, **settings)


def soap_parameters(*pairs: tuple[str, str]) -> Build:
    parameters = [common_pb2.SoapParameter(name=n, value=v) for n, v in pairs]
    return lambda name: soap_spec(name, parameters=parameters)


T = common_pb2.TriggerSpec
OAUTH_CC = common_pb2.OAuth2ClientCredentials
OAUTH_PW = common_pb2.OAuth2PasswordCredentials
TOKEN_URL = "https://login.example.com/oauth/token"

# (case, spec builder, the field the error must name)
# The field a bad input is named by; or every field, when the input breaks several at once.
REJECTED: list[tuple[str, Build, str | tuple[str, ...]]] = [
    ("name missing", changed(lambda s: setattr(s, "name", "")), "subscription.name"),
    ("name blank", changed(lambda s: setattr(s, "name", "   ")), "subscription.name"),
    ("name oversized", changed(lambda s: setattr(s, "name", "n" * 201)), "subscription.name"),
    ("name line break", changed(lambda s: setattr(s, "name", "a\nb")), "subscription.name"),
    ("entity missing", changed(lambda s: setattr(s, "entity", "")), "subscription.entity"),
    ("entity unknown", changed(lambda s: setattr(s, "entity", "Ticket")), "subscription.entity"),
    ("no trigger", changed(triggers()), "subscription.triggers"),
    (
        "trigger unknown",
        changed(triggers(T(trigger="OnExplode"))),
        "subscription.triggers[0].trigger",
    ),
    (
        "trigger missing",
        changed(triggers(T(channels=[1]))),
        "subscription.triggers[0].trigger",
    ),
    (
        "channel unknown",
        changed(triggers(object_trigger(1, 99))),
        "subscription.triggers[0].channels[1]",
    ),
    (
        "foreign component",
        changed(triggers(T(trigger="OnUpdateTag", channels=[1]), entity="User")),
        "subscription.triggers[0].channels",
    ),
    (
        "trigger of another entity",
        changed(triggers(T(trigger="OnSubmit"))),
        "subscription.triggers[0].trigger",
    ),
    (
        "channel chosen twice",
        changed(triggers(object_trigger(1, 2), object_trigger(2, 3))),
        "subscription.triggers[1].channels",
    ),
    (
        "activity type chosen twice",
        changed(
            triggers(
                T(trigger="OnNewActivity", activity_types=[1]),
                T(trigger="OnNewActivity", activity_types=[1, 3]),
            )
        ),
        "subscription.triggers[1].activity_types",
    ),
    (
        "status unknown",
        changed(
            triggers(
                T(
                    trigger="OnNewActivity",
                    activity_types=[2],
                    status_changes=[common_pb2.StatusChange(from_status=1, to_status=12)],
                )
            )
        ),
        "subscription.triggers[0].status_changes[0].to",
    ),
    (
        "whatsapp status unknown",
        changed(
            triggers(
                T(trigger="OnMessageStatus", whatsapp_statuses=["sent", "lost"]),
                entity="WhatsApp",
            )
        ),
        "subscription.triggers[0].whatsapp_statuses[1]",
    ),
    (
        "webhook missing",
        changed(lambda s: s.ClearField("webhook")),
        ("subscription.webhook.type", "subscription.webhook.url"),
    ),
    ("webhook type 99", changed(webhook(type=99)), "subscription.webhook.type"),
    ("webhook type unset", changed(webhook(type=0)), "subscription.webhook.type"),
    ("url missing", changed(webhook(url="")), "subscription.webhook.url"),
    ("url http", changed(webhook(url="http://hooks.example.com/in")), "subscription.webhook.url"),
    (
        "url http loopback not allowed",
        changed(webhook(url="http://127.0.0.1:8080/in")),
        "subscription.webhook.url",
    ),
    (
        "url credentials",
        changed(webhook(url="https://user:pw@hooks.example.com/in")),
        "subscription.webhook.url",
    ),
    (
        "url oversized",
        changed(webhook(url="https://hooks.example.com/" + "a" * 2048)),
        "subscription.webhook.url",
    ),
    ("url malformed", changed(webhook(url="hooks.example.com/in")), "subscription.webhook.url"),
    (
        "url with space",
        changed(webhook(url="https://hooks.example.com/a b")),
        "subscription.webhook.url",
    ),
    (
        "url bad port",
        changed(webhook(url="https://hooks.example.com:99999/in")),
        "subscription.webhook.url",
    ),
    ("url ftp", changed(webhook(url="ftp://hooks.example.com/in")), "subscription.webhook.url"),
    (
        "rest with soap settings",
        changed(lambda s: setattr(s.webhook.soap, "operation", "Notify")),
        "subscription.webhook.soap",
    ),
    (
        "certificate id malformed",
        changed(webhook(client_certificate_id="not-a-uuid")),
        "subscription.webhook.client_certificate_id",
    ),
    (
        "certificate unknown",
        changed(webhook(client_certificate_id="3f2504e0-4f89-11d3-9a0c-0305e82c3301")),
        "subscription.webhook.client_certificate_id",
    ),
    ("soap operation missing", soap(operation=""), "subscription.webhook.soap.operation"),
    ("soap operation 1bad", soap(operation="1bad"), "subscription.webhook.soap.operation"),
    (
        "soap operation prefixed",
        soap(operation="ns:Notify"),
        "subscription.webhook.soap.operation",
    ),
    (
        "soap parameter a b",
        soap_parameters(("a b", "1")),
        "subscription.webhook.soap.parameters[0].name",
    ),
    (
        "soap parameter twice",
        soap_parameters(("a", "1"), ("a", "2")),
        "subscription.webhook.soap.parameters[1].name",
    ),
    (
        "soap parameter value oversized",
        soap_parameters(("a", "v" * 4097)),
        "subscription.webhook.soap.parameters[0].value",
    ),
    ("soap version 99", soap(version=99), "subscription.webhook.soap.version"),
    ("soap namespace", soap(namespace="not a uri"), "subscription.webhook.soap.namespace"),
    ("soap action quote", soap(soap_action='a"b'), "subscription.webhook.soap.soap_action"),
    (
        "soap wsdl malformed",
        soap(wsdl_document="<definitions"),
        "subscription.webhook.soap.wsdl_document",
    ),
    (
        "soap wsdl doctype",
        soap(wsdl_document='<!DOCTYPE x [<!ENTITY a "b">]><x/>'),
        "subscription.webhook.soap.wsdl_document",
    ),
    (
        "soap wsdl without the operation",
        soap(wsdl_document=WSDL, operation="Missing"),
        "subscription.webhook.soap.operation",
    ),
    (
        "soap wsdl oversized",
        soap(wsdl_document=WSDL.replace("</definitions>", f"<!--{'x' * 2**20}--></definitions>")),
        "subscription.webhook.soap.wsdl_document",
    ),
    (
        "soap wsdl url http",
        soap(wsdl_url="http://soap.example.com/?wsdl"),
        "subscription.webhook.soap.wsdl_url",
    ),
    (
        "soap wsdl url and document",
        soap(wsdl_url="https://soap.example.com/?wsdl", wsdl_document=WSDL),
        "subscription.webhook.soap.wsdl_document",
    ),
    (
        "basic without password",
        changed(auth(basic=common_pb2.BasicAuth(username="erp"))),
        "subscription.authentication.basic.password",
    ),
    (
        "basic without username",
        changed(auth(basic=common_pb2.BasicAuth(password="pw"))),
        "subscription.authentication.basic.username",
    ),
    (
        "basic username with colon",
        changed(auth(basic=common_pb2.BasicAuth(username="a:b", password="pw"))),
        "subscription.authentication.basic.username",
    ),
    (
        "basic password oversized",
        changed(auth(basic=common_pb2.BasicAuth(username="erp", password="p" * 1025))),
        "subscription.authentication.basic.password",
    ),
    (
        "access token missing",
        changed(auth(oauth2_access_token=common_pb2.OAuth2AccessToken(header_prefix="Bearer"))),
        "subscription.authentication.oauth2_access_token.access_token",
    ),
    (
        "access token prefix two words",
        changed(
            auth(
                oauth2_access_token=common_pb2.OAuth2AccessToken(
                    header_prefix="Bear er", access_token="t"
                )
            )
        ),
        "subscription.authentication.oauth2_access_token.header_prefix",
    ),
    (
        "client credentials without token url",
        changed(auth(oauth2_client_credentials=OAUTH_CC(client_id="c", client_secret="s"))),
        "subscription.authentication.oauth2_client_credentials.token_url",
    ),
    (
        "client credentials http token url",
        changed(
            auth(
                oauth2_client_credentials=OAUTH_CC(
                    token_url="http://login.example.com/t", client_id="c", client_secret="s"
                )
            )
        ),
        "subscription.authentication.oauth2_client_credentials.token_url",
    ),
    (
        "client credentials without secret",
        changed(auth(oauth2_client_credentials=OAUTH_CC(token_url=TOKEN_URL, client_id="c"))),
        "subscription.authentication.oauth2_client_credentials.client_secret",
    ),
    (
        "client credentials bad scope",
        changed(
            auth(
                oauth2_client_credentials=OAUTH_CC(
                    token_url=TOKEN_URL, client_id="c", client_secret="s", scope='a "b"'
                )
            )
        ),
        "subscription.authentication.oauth2_client_credentials.scope",
    ),
    (
        "password credentials without username",
        changed(
            auth(
                oauth2_password=OAUTH_PW(
                    token_url=TOKEN_URL, client_id="c", client_secret="s", password="p"
                )
            )
        ),
        "subscription.authentication.oauth2_password.username",
    ),
    (
        "password credentials without token url",
        changed(
            auth(
                oauth2_password=OAUTH_PW(
                    client_id="c", client_secret="s", username="u", password="p"
                )
            )
        ),
        "subscription.authentication.oauth2_password.token_url",
    ),
    ("retries 7", changed(retry(retries=7)), "subscription.retry_policy.retries"),
    ("retries -1", changed(retry(retries=-1)), "subscription.retry_policy.retries"),
    (
        "interval 9",
        changed(retry(interval_seconds=9)),
        "subscription.retry_policy.interval_seconds",
    ),
    (
        "interval a day and a second",
        changed(retry(interval_seconds=86401)),
        "subscription.retry_policy.interval_seconds",
    ),
]


async def test_each_bad_input_is_rejected_naming_its_field_and_nothing_is_stored(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    await service.create(rest_spec("Already here"))
    before = await service.list_all()
    wrong: list[str] = []
    for index, (case, build, field) in enumerate(REJECTED):
        name = f"Rejected {index}"
        try:
            error = await rpc_error(service.create(build(name)))
        except AssertionError as accepted:
            wrong.append(f"{case}: {str(accepted)[:60]}")
            continue
        got = [f for f, _ in field_violations(error)]
        expected = [field] if isinstance(field, str) else list(field)
        details = error.details() or ""
        if (
            error.code() != grpc.StatusCode.INVALID_ARGUMENT
            or got != expected
            or not details.startswith(f"{expected[0]}:")
        ):
            wrong.append(f"{case}: expected {field}, got {describe_rpc_error(error)} {got}")
    assert wrong == []
    assert await service.list_all() == before
    # No name was reserved by a rejected create: every one is still free.
    if service.store == "sqlite":  # the same on PostgreSQL; one store is enough for the cost
        for index in range(len(REJECTED)):
            await service.create(rest_spec(f"rejected {index}"))
        assert len(await service.list_all()) == len(REJECTED) + 1
    # Only the one good create reached the stream (plus the ones made just above).
    messages = await service.stream_messages(len(await service.list_all()))
    assert len(messages) == len(await service.list_all())


# (case, spec builder, what the stored subscription must show)
ACCEPTED: list[tuple[str, Build, Callable[[subscriptions_pb2.Subscription], bool]]] = [
    ("defaults", rest_spec, lambda s: (s.retry_policy.retries, s.active) == (3, True)),
    (
        "defaults of a REST webhook",
        rest_spec,
        lambda s: (
            (s.webhook.method, s.webhook.format, s.webhook.content_type)
            == ("POST", "JSON", "application/json")
            and s.retry_policy.interval_seconds == 300
            and not s.include_complete_data
            and s.authentication.WhichOneof("kind") == "none"
        ),
    ),
    ("name of 200", lambda _: rest_spec("x" * 199 + "é"), lambda s: len(s.name) == 200),
    ("name trimmed", lambda n: rest_spec(f"  {n}  "), lambda s: s.name == s.name.strip()),
    ("unicode name", lambda n: rest_spec(f"Zürich ✓ {n}"), lambda s: "Zürich ✓" in s.name),
    (
        "disjoint channels in two triggers",
        changed(triggers(object_trigger(1, 2), object_trigger(3))),
        lambda s: [list(t.channels) for t in s.triggers] == [[1, 2], [3]],
    ),
    (
        "trigger names canonical",
        changed(triggers(T(trigger="onnew", channels=[2, 1, 2]), entity="object")),
        lambda s: (
            (s.entity, s.triggers[0].trigger, list(s.triggers[0].channels))
            == ("Object", "OnNew", [1, 2])
        ),
    ),
    (
        "activities with status changes",
        changed(
            triggers(
                T(
                    trigger="OnNewActivity",
                    activity_types=[2],
                    status_changes=[common_pb2.StatusChange(from_status=0, to_status=2)],
                ),
                T(trigger="OnNewActivity", activity_types=[1, 3]),
            )
        ),
        lambda s: s.triggers[0].status_changes[0].to_status == 2,
    ),
    (
        "whatsapp",
        changed(
            triggers(
                T(
                    trigger="OnMessageStatus",
                    whatsapp_channels=["wa-1"],
                    whatsapp_statuses=["Read", "sent"],
                ),
                T(trigger="OnMessageStatus", whatsapp_channels=["wa-2"]),
                entity="WhatsApp",
            )
        ),
        lambda s: list(s.triggers[0].whatsapp_statuses) == ["read", "sent"],
    ),
    (
        "complete data",
        changed(lambda s: setattr(s, "include_complete_data", True)),
        lambda s: s.include_complete_data,
    ),
    (
        "soap 1.1",
        soap(),
        lambda s: (
            (s.webhook.type, s.webhook.method, s.webhook.format, s.webhook.content_type)
            == (common_pb2.WEBHOOK_TYPE_SOAP, "POST", "XML", "text/xml")
            and s.webhook.soap.version == common_pb2.SOAP_VERSION_1_1
        ),
    ),
    (
        "soap 1.2",
        soap(version=common_pb2.SOAP_VERSION_1_2),
        lambda s: s.webhook.content_type == "application/soap+xml",
    ),
    (
        "soap with parameters and a wsdl",
        lambda n: soap_spec(
            n,
            wsdl_document=WSDL,
            parameters=[common_pb2.SoapParameter(name="Source", value="crm & co")],
        ),
        lambda s: (
            s.webhook.soap.parameters[0].value == "crm & co"
            and s.webhook.soap.wsdl_document == WSDL
        ),
    ),
    (
        "soap with a wsdl url",
        soap(wsdl_url="https://soap.example.com/?wsdl"),
        lambda s: s.webhook.soap.wsdl_url == "https://soap.example.com/?wsdl",
    ),
    (
        "basic",
        changed(auth(basic=common_pb2.BasicAuth(username="erp", password="pw-1"))),
        lambda s: (
            s.authentication.basic.username == "erp"
            and s.authentication.basic.password_set
            and s.authentication.basic.password == ""
        ),
    ),
    (
        "access token with the default prefix",
        changed(auth(oauth2_access_token=common_pb2.OAuth2AccessToken(access_token="tok-1"))),
        lambda s: (
            s.authentication.oauth2_access_token.header_prefix == "Bearer"
            and s.authentication.oauth2_access_token.access_token_set
            and s.authentication.oauth2_access_token.access_token == ""
        ),
    ),
    (
        "client credentials",
        changed(
            auth(
                oauth2_client_credentials=OAUTH_CC(
                    token_url=TOKEN_URL, scope="read write", client_id="c", client_secret="s"
                )
            )
        ),
        lambda s: (
            s.authentication.oauth2_client_credentials.client_secret_set
            and s.authentication.oauth2_client_credentials.scope == "read write"
        ),
    ),
    (
        "password credentials",
        changed(
            auth(
                oauth2_password=OAUTH_PW(
                    token_url=TOKEN_URL,
                    client_id="c",
                    client_secret="s",
                    username="u",
                    password="p",
                )
            )
        ),
        lambda s: (
            s.authentication.oauth2_password.password_set
            and s.authentication.oauth2_password.client_secret_set
            and s.authentication.oauth2_password.username == "u"
        ),
    ),
    ("retries 0", changed(retry(retries=0)), lambda s: s.retry_policy.retries == 0),
    ("retries 5", changed(retry(retries=5)), lambda s: s.retry_policy.retries == 5),
    (
        "interval bounds",
        changed(retry(interval_seconds=10)),
        lambda s: (s.retry_policy.retries, s.retry_policy.interval_seconds) == (3, 10),
    ),
    (
        "interval a day",
        changed(retry(retries=1, interval_seconds=86400)),
        lambda s: s.retry_policy.interval_seconds == 86400,
    ),
]


async def test_each_good_input_is_accepted_and_stored_as_returned(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    wrong: list[str] = []
    for index, (case, build, check) in enumerate(ACCEPTED):
        try:
            created = await service.create(build(f"Accepted {index}"))
        except grpc.aio.AioRpcError as error:
            wrong.append(f"{case}: {describe_rpc_error(error)}")
            continue
        stored = await service.get(created.subscription.id)
        if stored != created.subscription:
            wrong.append(f"{case}: Get differs from what Create returned")
        if not check(stored):
            wrong.append(f"{case}: stored as {stored}")
        assert stored.version == 1
        assert created.signing_secret.startswith("whsec_")
    assert wrong == []
    listed = {s.id: s for s in await service.list_all()}
    assert len(listed) == len(ACCEPTED)
    for subscription in listed.values():
        assert subscription == await service.get(subscription.id)


async def test_http_to_loopback_only_with_the_development_setting(
    start_subscriptions: ServiceFactory,
) -> None:
    service = await start_subscriptions(WEBHOOKS_ALLOW_HTTP_LOOPBACK="true")
    for url in ("http://127.0.0.1:8080/in", "http://localhost/in", "http://[::1]:9/in"):
        created = await service.create(rest_spec(url, url=url))
        assert created.subscription.webhook.url == url
    error = await rpc_error(service.create(rest_spec("remote", url="http://example.com/in")))
    assert_invalid(error, "subscription.webhook.url")
    assert len(await service.list_all()) == 3


async def test_a_payload_over_the_grpc_limit_is_refused_and_nothing_stored(
    start_subscriptions: ServiceFactory,
) -> None:
    service = await start_subscriptions(WEBHOOKS_GRPC_MAX_MESSAGE_BYTES="65536")
    document = WSDL.replace("</definitions>", "<!--" + "x" * 70_000 + "--></definitions>")
    error = await rpc_error(service.create(soap_spec("Too big", wsdl_document=document)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, describe_rpc_error(error)
    assert await service.list_all() == []
    # The name was not reserved, and a payload under the limit passes.
    small = WSDL.replace("</definitions>", "<!--" + "x" * 50_000 + "--></definitions>")
    created = await service.create(soap_spec("Too big", wsdl_document=small))
    assert created.subscription.webhook.soap.wsdl_document == small


# --- names ---------------------------------------------------------------------------------


async def rename(
    service: SubscriptionsService, subscription_id: str, name: str, metadata: Metadata | None = None
) -> subscriptions_pb2.Subscription:
    reply: subscriptions_pb2.Subscription = await service.stub.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=subscription_id,
            subscription=Spec(name=name),
            update_mask=FieldMask(paths=["name"]),
        ),
        metadata=metadata or service.acme,
    )
    return reply


async def delete(service: SubscriptionsService, subscription_id: str) -> None:
    await service.stub.DeleteSubscription(
        subscriptions_pb2.DeleteSubscriptionRequest(id=subscription_id), metadata=service.acme
    )


async def test_names_are_unique_case_insensitively_and_never_reused(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    orders = (await service.create(rest_spec("Orders to ERP"))).subscription
    other = (await service.create(rest_spec("Other"))).subscription
    for taken in ("orders to erp", "  ORDERS   TO ERP ", "Orders\u00a0to ERP"):
        error = await rpc_error(service.create(rest_spec(taken)))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, describe_rpc_error(error)
        error = await rpc_error(rename(service, other.id, taken))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, describe_rpc_error(error)
    # Another organisation may use the name.
    await service.create(rest_spec("Orders to ERP"), service.globex)
    # A subscription may change the case of its own name.
    recased = await rename(service, orders.id, "ORDERS TO ERP")
    assert (recased.name, recased.version) == ("ORDERS TO ERP", 2)
    # A name given up by a rename stays taken.
    await rename(service, orders.id, "Orders v2")
    error = await rpc_error(service.create(rest_spec("orders to erp")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    error = await rpc_error(rename(service, other.id, "Orders to ERP"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    # Renaming back to its own former name is allowed: the reservation is its own.
    back = await rename(service, orders.id, "Orders to ERP")
    assert back.name == "Orders to ERP"
    # A deleted subscription's name stays taken.
    await delete(service, orders.id)
    for name in ("Orders to ERP", "orders v2"):
        error = await rpc_error(service.create(rest_spec(name)))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, describe_rpc_error(error)
    assert await service.names() == ["Other"]
    assert (await service.get(other.id)).version == 1


async def test_of_20_concurrent_creates_with_one_name_exactly_one_succeeds(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    results = await asyncio.gather(
        *(
            service.create(rest_spec("Race" if i % 2 else "RACE", url=f"https://h{i}.example/in"))
            for i in range(20)
        ),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, subscriptions_pb2.CreateSubscriptionResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 1, [describe_rpc_error(r) for r in refused]
    assert len(refused) == 19
    assert {r.code() for r in refused} == {grpc.StatusCode.ALREADY_EXISTS}
    listed = await service.list_all()
    assert [s.id for s in listed] == [created[0].subscription.id]
    assert listed[0].webhook.url == created[0].subscription.webhook.url
    # Only the winner's events reach the stream: one Created (after a few relay polls).
    await service.stream_messages(1)
    await asyncio.sleep(3 * service.settings.relay_poll_seconds)
    assert len(await service.stream_messages(1)) == 1


# --- optimistic concurrency -----------------------------------------------------------------


async def update(
    service: SubscriptionsService,
    subscription_id: str,
    spec: Spec,
    paths: list[str],
    expected_version: int | None = None,
    metadata: Metadata | None = None,
) -> subscriptions_pb2.Subscription:
    reply: subscriptions_pb2.Subscription = await service.stub.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=subscription_id,
            subscription=spec,
            update_mask=FieldMask(paths=paths),
            expected_version=expected_version,
        ),
        metadata=metadata or service.acme,
    )
    return reply


async def test_a_stale_expected_version_is_refused_and_changes_nothing(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = (await service.create(rest_spec("Versioned"))).subscription
    new_url = Spec(
        webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST, url="https://new.example/in")
    )
    for stale in (0, 2, 7):
        error = await rpc_error(update(service, created.id, new_url, ["webhook"], stale))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, describe_rpc_error(error)
        assert [f for f, _ in field_violations(error)] == ["expected_version"]
        assert "expected_version" in (error.details() or "")
    for call in (
        service.stub.SetSubscriptionActive(
            subscriptions_pb2.SetSubscriptionActiveRequest(
                id=created.id, active=False, expected_version=3
            ),
            metadata=service.acme,
        ),
        service.stub.DeleteSubscription(
            subscriptions_pb2.DeleteSubscriptionRequest(id=created.id, expected_version=3),
            metadata=service.acme,
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, describe_rpc_error(error)
        assert [f for f, _ in field_violations(error)] == ["expected_version"]
    assert await service.get(created.id) == created
    assert len((await service.history(created.id)).entries) == 1

    updated = await update(service, created.id, new_url, ["webhook"], 1)
    assert (updated.version, updated.webhook.url) == (2, "https://new.example/in")
    assert await service.get(created.id) == updated
    # The version just used is stale now.
    error = await rpc_error(update(service, created.id, new_url, ["webhook"], 1))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    inactive = await service.stub.SetSubscriptionActive(
        subscriptions_pb2.SetSubscriptionActiveRequest(
            id=created.id, active=False, expected_version=2
        ),
        metadata=service.acme,
    )
    assert (inactive.active, inactive.version) == (False, 3)


async def test_concurrent_updates_without_a_version_all_apply(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = (await service.create(rest_spec("Busy"))).subscription
    urls = [f"https://h{i}.example.com/in" for i in range(10)]
    replies = await asyncio.gather(
        *(
            update(
                service,
                created.id,
                Spec(webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST, url=url)),
                ["webhook"],
            )
            for url in urls
        ),
        return_exceptions=True,
    )
    failures = [describe_rpc_error(r) for r in replies if isinstance(r, grpc.aio.AioRpcError)]
    assert failures == []
    versions = sorted(r.version for r in replies if isinstance(r, subscriptions_pb2.Subscription))
    assert versions == list(range(2, 12))
    history = (await service.history(created.id)).entries
    changes = [e for e in history if e.event_type == "EndpointChanged"]
    assert sorted(changes_of(e)["webhook"]["url"] for e in changes) == sorted(urls)
    assert [e.version for e in history] == list(range(1, 12))
    final = await service.get(created.id)
    assert final.version == 11
    assert final.webhook.url == changes_of(changes[-1])["webhook"]["url"]
    listed = await service.list_all()
    assert listed == [final]


# --- update semantics ----------------------------------------------------------------------


async def test_an_update_applies_only_the_masked_fields(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = (await service.create(rest_spec("Partial"))).subscription
    # Everything else in the spec is empty and must be ignored.
    updated = await update(
        service,
        created.id,
        Spec(retry_policy=common_pb2.RetryPolicy(retries=5), include_complete_data=True),
        ["retry_policy"],
    )
    assert (updated.retry_policy.retries, updated.retry_policy.interval_seconds) == (5, 300)
    assert not updated.include_complete_data
    assert (updated.name, updated.webhook, list(updated.triggers)) == (
        created.name,
        created.webhook,
        list(created.triggers),
    )
    assert updated.version == 2
    assert updated.created_at == created.created_at
    assert updated.updated_at.ToDatetime() > created.updated_at.ToDatetime()
    # Triggers alone keep the entity; a new entity needs triggers of that entity.
    retriggered = await update(
        service, created.id, Spec(triggers=[object_trigger(5)]), ["triggers"]
    )
    assert (retriggered.entity, list(retriggered.triggers[0].channels)) == ("Object", [5])
    error = await rpc_error(update(service, created.id, Spec(entity="Satisfaction"), ["entity"]))
    assert_invalid(error, "subscription.triggers[0].trigger")
    moved = await update(
        service,
        created.id,
        Spec(entity="Satisfaction", triggers=[common_pb2.TriggerSpec(trigger="OnSubmit")]),
        ["entity", "triggers"],
    )
    assert (moved.entity, moved.version) == ("Satisfaction", 4)
    # An update that changes nothing records nothing.
    same = await update(
        service, created.id, Spec(retry_policy=common_pb2.RetryPolicy(retries=5)), ["retry_policy"]
    )
    assert same.version == 4
    # One bad field refuses the whole update: the good field is not applied either.
    error = await rpc_error(
        update(
            service,
            created.id,
            Spec(name="Partial renamed", retry_policy=common_pb2.RetryPolicy(retries=7)),
            ["name", "retry_policy"],
        )
    )
    assert_invalid(error, "subscription.retry_policy.retries")
    assert (await service.get(created.id)) == moved
    assert await service.names() == ["Partial"]
    # ... and does not reserve the name it carried.
    renamed = await rename(service, created.id, "Partial renamed")
    assert renamed.name == "Partial renamed"


async def test_update_mask_is_required_and_checked(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = (await service.create(rest_spec("Masked"))).subscription
    for paths in ([], ["colour"], ["webhook.url"], ["name", "signing_secret"], ["active"]):
        error = await rpc_error(update(service, created.id, Spec(name="x"), paths))
        assert_invalid(error, "update_mask")
    assert await service.get(created.id) == created


def stream_state(messages: list[Any], subscription_id: str) -> messages_pb2.SubscriptionState:
    """The latest published state of a subscription."""
    states = []
    for message in messages:
        event = messages_pb2.SubscriptionDomainEvent.FromString(message.data)
        if event.HasField("subscription") and event.subscription.id == subscription_id:
            states.append(event.subscription)
    assert states, f"no message of {subscription_id}"
    return states[-1]


async def test_an_omitted_secret_keeps_its_value(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = (
        await service.create(rest_spec("Kept", authentication=basic_auth("erp", "pw-kept-1")))
    ).subscription
    # The same username and no password: nothing changes at all.
    same = await update(
        service,
        created.id,
        Spec(authentication=basic_auth("erp", "")),
        ["authentication"],
    )
    assert same.version == 1
    # A new username and no password: the username changes, the password stays.
    changed_user = await update(
        service,
        created.id,
        Spec(authentication=basic_auth("erp-2", "")),
        ["authentication"],
    )
    assert changed_user.version == 2
    assert changed_user.authentication.basic.username == "erp-2"
    assert changed_user.authentication.basic.password_set
    # What the sender receives still opens to the original password.
    state = stream_state(await service.stream_messages(2), created.id)
    assert state.version == 2
    assert state.authentication.basic.username == "erp-2"
    assert service.secrets.open(state.authentication.basic.password) == "pw-kept-1"
    # A new password replaces it.
    await update(
        service,
        created.id,
        Spec(authentication=basic_auth("erp-2", "pw-new-2")),
        ["authentication"],
    )
    state = stream_state(await service.stream_messages(3), created.id)
    assert service.secrets.open(state.authentication.basic.password) == "pw-new-2"
    history = (await service.history(created.id)).entries
    assert [e.event_type for e in history] == ["Created", "AuthChanged", "AuthChanged"]


async def test_changing_the_authentication_kind_needs_the_new_kinds_secrets(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = (
        await service.create(rest_spec("Kind", authentication=basic_auth("erp", "pw")))
    ).subscription
    cases = [
        (
            common_pb2.Authentication(
                oauth2_access_token=common_pb2.OAuth2AccessToken(header_prefix="Bearer")
            ),
            "subscription.authentication.oauth2_access_token.access_token",
        ),
        (
            common_pb2.Authentication(
                oauth2_password=OAUTH_PW(
                    token_url=TOKEN_URL, client_id="c", client_secret="s", username="erp"
                )
            ),
            "subscription.authentication.oauth2_password.password",
        ),
        (
            common_pb2.Authentication(
                oauth2_client_credentials=OAUTH_CC(token_url=TOKEN_URL, client_id="c")
            ),
            "subscription.authentication.oauth2_client_credentials.client_secret",
        ),
    ]
    for authentication, field in cases:
        error = await rpc_error(
            update(service, created.id, Spec(authentication=authentication), ["authentication"])
        )
        assert_invalid(error, field)
    assert await service.get(created.id) == created
    switched = await update(
        service,
        created.id,
        Spec(
            authentication=common_pb2.Authentication(
                oauth2_access_token=common_pb2.OAuth2AccessToken(access_token="tok-9")
            )
        ),
        ["authentication"],
    )
    assert switched.authentication.oauth2_access_token.access_token_set
    # No authentication at all drops the secrets.
    none = await update(service, created.id, Spec(), ["authentication"])
    assert none.authentication.WhichOneof("kind") == "none"
    state = stream_state(await service.stream_messages(3), created.id)
    assert state.authentication.WhichOneof("kind") == "none"


# --- life cycle and history ------------------------------------------------------------------


async def set_active(
    service: SubscriptionsService,
    subscription_id: str,
    active: bool,
    metadata: Metadata | None = None,
) -> subscriptions_pb2.Subscription:
    reply: subscriptions_pb2.Subscription = await service.stub.SetSubscriptionActive(
        subscriptions_pb2.SetSubscriptionActiveRequest(id=subscription_id, active=active),
        metadata=metadata or service.acme,
    )
    return reply


async def rotate(
    service: SubscriptionsService, subscription_id: str, overlap_seconds: int | None = None
) -> subscriptions_pb2.RotateSigningSecretResponse:
    reply: subscriptions_pb2.RotateSigningSecretResponse = await service.stub.RotateSigningSecret(
        subscriptions_pb2.RotateSigningSecretRequest(
            id=subscription_id, overlap_seconds=overlap_seconds
        ),
        metadata=service.acme,
    )
    return reply


async def test_the_life_cycle_is_an_exact_audit_trail(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    password, token = "pw-audit-7f3a", "tok-audit-91c2"
    created = await service.create(rest_spec("Audited", authentication=basic_auth("erp", password)))
    subscription_id = created.subscription.id
    inactive = await set_active(service, subscription_id, False)
    assert (inactive.active, inactive.version) == (False, 2)
    again = await set_active(service, subscription_id, False)
    assert again.version == 2  # no change, no event
    active = await set_active(service, subscription_id, True, service.platform("acme"))
    assert (active.active, active.version) == (True, 3)
    await rename(service, subscription_id, "Audited v2")
    await update(
        service,
        subscription_id,
        Spec(
            authentication=common_pb2.Authentication(
                oauth2_access_token=common_pb2.OAuth2AccessToken(access_token=token)
            )
        ),
        ["authentication"],
    )
    before = datetime.now(UTC)
    rotated = await rotate(service, subscription_id, 600)
    after = datetime.now(UTC)
    assert rotated.signing_secret.startswith("whsec_")
    assert rotated.signing_secret != created.signing_secret
    info = rotated.subscription.signing_secret
    assert info.set
    valid_until = info.previous_valid_until.ToDatetime(UTC)
    assert before + timedelta(seconds=599) <= valid_until <= after + timedelta(seconds=601)
    # The rotation's own time (it once showed the change before it: here the update above).
    assert before <= info.rotated_at.ToDatetime(UTC) <= after
    assert info.rotated_at == rotated.subscription.updated_at
    default_rotation = await rotate(service, subscription_id)
    valid_until = default_rotation.subscription.signing_secret.previous_valid_until.ToDatetime(UTC)
    assert abs(valid_until - (datetime.now(UTC) + timedelta(days=1))) < timedelta(seconds=30)
    error = await rpc_error(rotate(service, subscription_id, -1))
    assert_invalid(error, "overlap_seconds")

    deleted = await service.stub.DeleteSubscription(
        subscriptions_pb2.DeleteSubscriptionRequest(id=subscription_id), metadata=service.acme
    )
    assert (deleted.id, deleted.version) == (subscription_id, 8)
    error = await rpc_error(service.get(subscription_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(set_active(service, subscription_id, False))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(
        service.stub.DeleteSubscription(
            subscriptions_pb2.DeleteSubscriptionRequest(id=subscription_id), metadata=service.acme
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await service.list_all() == []

    history = await service.history(subscription_id)
    assert [(e.version, e.event_type, e.actor) for e in history.entries] == [
        (1, "Created", "acme-admin"),
        (2, "Deactivated", "acme-admin"),
        (3, "Activated", "platform"),
        (4, "Renamed", "acme-admin"),
        (5, "AuthChanged", "acme-admin"),
        (6, "SigningSecretRotated", "acme-admin"),
        (7, "SigningSecretRotated", "acme-admin"),
        (8, "Deleted", "acme-admin"),
    ]
    times = [e.occurred_at.ToDatetime() for e in history.entries]
    assert times == sorted(times)
    assert changes_of(history.entries[0])["name"] == "Audited"
    assert changes_of(history.entries[3])["name"] == "Audited v2"
    assert changes_of(history.entries[0])["authentication"]["password"] == "***"
    raw = history.SerializeToString()
    for secret in (
        password,
        token,
        created.signing_secret,
        rotated.signing_secret,
        default_rotation.signing_secret,
    ):
        assert secret.encode() not in raw
    assert b"sealed:v1:" not in raw


async def test_unknown_and_malformed_ids_are_not_found_or_invalid(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    error = await rpc_error(service.get("3f2504e0-4f89-11d3-9a0c-0305e82c3301"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(service.get("not-an-id"))
    assert_invalid(error, "id")
    error = await rpc_error(service.history("3f2504e0-4f89-11d3-9a0c-0305e82c3301"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- listing -------------------------------------------------------------------------------


async def test_list_filters_alone_and_combined(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    user_trigger = [common_pb2.TriggerSpec(trigger="OnNew")]
    specs = [
        (rest_spec("Orders to ERP"), True),
        (rest_spec("Order audit", entity="User", triggers=user_trigger), False),
        (rest_spec("Invoices"), False),
        (rest_spec("CRM sync", entity="User", triggers=user_trigger), True),
        (rest_spec("BORDER control"), True),
    ]
    for spec, active in specs:
        await service.create(spec, active=active)

    async def names(**request: Any) -> set[str]:
        return set(await service.names(**request))

    assert await names(entity="Object") == {"Orders to ERP", "Invoices", "BORDER control"}
    assert await names(entity="user") == {"Order audit", "CRM sync"}
    assert await names(active=True) == {"Orders to ERP", "CRM sync", "BORDER control"}
    assert await names(active=False) == {"Order audit", "Invoices"}
    assert await names(name_contains="ORDER") == {"Orders to ERP", "Order audit", "BORDER control"}
    assert await names(name_contains="order", entity="Object") == {
        "Orders to ERP",
        "BORDER control",
    }
    assert await names(name_contains="order", entity="Object", active=True) == {
        "Orders to ERP",
        "BORDER control",
    }
    assert await names(name_contains="order", active=False) == {"Order audit"}
    assert await names(entity="User", active=False) == {"Order audit"}
    assert await names(name_contains="%") == set()
    assert await names(name_contains="_") == set()
    assert await names(entity="Tag") == set()
    assert await names(name_contains="zzz") == set()
    assert await names(metadata=service.globex) == set()
    error = await rpc_error(service.list_page(entity="Ticket"))
    assert_invalid(error, "entity")
    error = await rpc_error(service.list_page(page_size=1001))
    assert_invalid(error, "page_size")
    error = await rpc_error(service.list_page(order_by=99))
    assert_invalid(error, "order_by")


async def test_list_orders(subscriptions_service: SubscriptionsService) -> None:
    service = subscriptions_service
    ids = {}
    for name in ("beta", "Alpha", "gamma", "delta"):
        ids[name] = (await service.create(rest_spec(name))).subscription.id
    await rename(service, ids["Alpha"], "alpha")
    orders = subscriptions_pb2
    assert await service.names() == ["delta", "gamma", "alpha", "beta"]
    assert await service.names(order_by=orders.SUBSCRIPTION_ORDER_CREATED_DESC) == [
        "delta",
        "gamma",
        "alpha",
        "beta",
    ]
    assert await service.names(order_by=orders.SUBSCRIPTION_ORDER_CREATED_ASC) == [
        "beta",
        "alpha",
        "gamma",
        "delta",
    ]
    assert await service.names(order_by=orders.SUBSCRIPTION_ORDER_NAME_ASC) == [
        "alpha",
        "beta",
        "delta",
        "gamma",
    ]
    assert await service.names(order_by=orders.SUBSCRIPTION_ORDER_UPDATED_DESC) == [
        "alpha",
        "delta",
        "gamma",
        "beta",
    ]
    # Pages of one in every order give the same sequence.
    for order in (1, 2, 3, 4):
        assert await service.names(order_by=order, page_size=1) == await service.names(
            order_by=order
        )


async def test_pages_cover_the_whole_list_once_while_it_grows(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    original: list[str] = []
    for start in range(0, 120, 20):
        batch = await asyncio.gather(
            *(service.create(rest_spec(f"Paged {i:03d}")) for i in range(start, start + 20))
        )
        original += [r.subscription.id for r in batch]
    newest_first = [s.id for s in await service.list_all(page_size=1000)]
    assert sorted(newest_first) == sorted(original)

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await service.list_page(page_size=25, page_token=token)
        pages += 1
        assert len(page.subscriptions) <= 25
        seen += [s.id for s in page.subscriptions]
        token = page.next_page_token
        if not token:
            break
        # New subscriptions land before the cursor and must not disturb the walk.
        await service.create(rest_spec(f"Added during page {pages}"))
    assert pages == 5
    assert seen == newest_first
    assert len(seen) == len(set(seen)) == 120
    assert len(await service.list_all()) == 124

    other_order = await service.list_page(page_size=25, order_by=2)
    error = await rpc_error(service.list_page(page_token=other_order.next_page_token))
    assert_invalid(error, "page_token")
    for bad in ("not a token!", "e30", "WyJjcmVhdGVkX2Rlc2MiXQ"):
        error = await rpc_error(service.list_page(page_token=bad))
        assert_invalid(error, "page_token")


async def test_listed_items_carry_no_secrets(subscriptions_service: SubscriptionsService) -> None:
    service = subscriptions_service
    password, client_secret = "pw-listed-5e1d", "cs-listed-0a9b"
    created = await service.create(rest_spec("Basic", authentication=basic_auth("erp", password)))
    await service.create(
        rest_spec(
            "Client credentials",
            authentication=common_pb2.Authentication(
                oauth2_client_credentials=OAUTH_CC(
                    token_url=TOKEN_URL, client_id="c", client_secret=client_secret
                )
            ),
        )
    )
    page = await service.list_page()
    assert len(page.subscriptions) == 2
    raw = page.SerializeToString()
    for secret in (password, client_secret, created.signing_secret):
        assert secret.encode() not in raw
    assert b"sealed:v1:" not in raw
    by_name = {s.name: s for s in page.subscriptions}
    assert by_name["Basic"].authentication.basic.password_set
    assert by_name["Client credentials"].authentication.oauth2_client_credentials.client_secret_set
    assert by_name["Basic"].signing_secret.set


# --- tracing -------------------------------------------------------------------------------


async def test_each_rpc_is_a_server_span_and_the_relay_continues_the_trace(
    start_subscriptions: ServiceFactory,
) -> None:
    exporter = InMemorySpanExporter()
    service = await start_subscriptions()
    # The provider is one per service name, created at the service's start: attaching an
    # exporter to it now sees every later span of the service.
    setup_tracing("subscriptions", service.settings, extra_exporter=exporter)
    calls = {
        "CreateSubscription": "4bf92f3577b34da6a3ce929d0e0e4736",
        "GetSubscription": "5bf92f3577b34da6a3ce929d0e0e4737",
        "ListSubscriptions": "6bf92f3577b34da6a3ce929d0e0e4738",
    }

    def traced(trace_id: str) -> Metadata:
        return [*service.acme, ("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01")]

    created = await service.create(rest_spec("Traced"), traced(calls["CreateSubscription"]))
    await service.get(created.subscription.id, traced(calls["GetSubscription"]))
    await service.list_page(traced(calls["ListSubscriptions"]))
    for method, trace_id in calls.items():
        spans = [
            span
            for span in exporter.get_finished_spans()
            if span.kind == SpanKind.SERVER
            and span.name == f"/webhooks.v1.SubscriptionService/{method}"
        ]
        assert len(spans) == 1, method
        assert format(spans[0].context.trace_id, "032x") == trace_id
        assert spans[0].resource.attributes["service.name"] == "webhooks-subscriptions"
    (message,) = await service.stream_messages(1)
    traceparent = (message.headers or {}).get("traceparent", "")
    assert traceparent.split("-")[1] == calls["CreateSubscription"], message.headers
