"""Bounds on what a tenant sends to the subscriptions service (webhooks_catalogue.limits),
through gRPC on both stores: an oversized request is refused naming the field and the bound,
nothing is stored or published, and the relay goes on publishing everyone's changes."""

from __future__ import annotations

import grpc
import grpc.aio
from google.protobuf.field_mask_pb2 import FieldMask
from werkzeug.datastructures import MultiDict

from tests.integration.conftest import (
    SubscriptionsService,
    rest_spec,
    rpc_error,
    soap_spec,
)
from webhooks.v1 import common_pb2, subscriptions_pb2
from webhooks_catalogue import limits
from webhooks_catalogue.proto import catalogue_message
from webhooks_console.form_errors import step_of
from webhooks_console.forms import build_spec, parse_form
from webhooks_console.subscription_form_views import rpc_form_errors
from webhooks_grpc import describe_rpc_error, field_violations

Spec = subscriptions_pb2.SubscriptionSpec
T = common_pb2.TriggerSpec


def whatsapp_spec(name: str, *triggers: T) -> Spec:
    spec = rest_spec(name, entity="WhatsApp", triggers=list(triggers))
    return spec


def channel_ids(count: int, prefix: str = "c") -> list[str]:
    """``count`` distinct WhatsApp channel ids of the longest length allowed."""
    width = limits.WHATSAPP_CHANNEL_ID_LENGTH
    return [f"{prefix}{i}".ljust(width, "x") for i in range(count)]


def wide_triggers() -> list[T]:
    """The most triggers, each with the most WhatsApp channel ids: ~650 KB together."""
    per = limits.WHATSAPP_CHANNELS_PER_TRIGGER
    return [
        T(trigger="OnMessageStatus", whatsapp_channels=channel_ids(per, f"t{n}-"))
        for n in range(limits.TRIGGERS)
    ]


def assert_bound(error: grpc.aio.AioRpcError, field: str, *words: str) -> None:
    """INVALID_ARGUMENT naming ``field`` and saying the bound (``words``)."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, describe_rpc_error(error)
    assert [f for f, _ in field_violations(error)] == [field], describe_rpc_error(error)
    details = error.details() or ""
    assert details.startswith(f"{field}:"), details
    for word in words:
        assert word in details, details
    assert len(details) < 500, "an error must not quote the oversized value back"


async def test_20000_whatsapp_channels_are_refused_and_nothing_is_stored_or_published(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    huge = T(trigger="OnMessageStatus", whatsapp_channels=channel_ids(20_000))
    request = subscriptions_pb2.CreateSubscriptionRequest(subscription=whatsapp_spec("Big", huge))
    assert 2_000_000 < request.ByteSize() < 4 * 1024 * 1024  # under the gRPC limit

    error = await rpc_error(service.create(request.subscription))
    assert_bound(
        error,
        "subscription.triggers[0].whatsapp_channels",
        f"at most {limits.WHATSAPP_CHANNELS_PER_TRIGGER}",
        "got 20000",
    )
    assert await service.list_all() == []

    # The relay was not stalled by it: a good change is published, and only that one.
    created = await service.create(rest_spec("Small"))
    messages = await service.stream_messages(1)
    assert len(messages) == 1
    assert created.subscription.version == 1

    # An update to the same size is refused too and changes nothing.
    update = service.stub.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=created.subscription.id,
            subscription=whatsapp_spec("Small", huge),
            update_mask=FieldMask(paths=["entity", "triggers"]),
        ),
        metadata=service.acme,
    )
    assert_bound(await rpc_error(update), "subscription.triggers[0].whatsapp_channels", "100")
    assert await service.get(created.subscription.id) == created.subscription


async def test_a_subscription_too_large_to_publish_is_refused_as_a_whole(
    subscriptions_service: SubscriptionsService,
) -> None:
    # Every list within its own bound, but 50 triggers of 100 long ids are ~650 KB together.
    service = subscriptions_service
    triggers = wide_triggers()
    error = await rpc_error(service.create(whatsapp_spec("Wide", *triggers)))
    assert_bound(error, "subscription", f"at most {limits.SUBSCRIPTION_STATE_BYTES} bytes")
    assert await service.list_all() == []
    # A subscription of half of those triggers is well within and is stored and published.
    created = await service.create(whatsapp_spec("Wide", *triggers[: limits.TRIGGERS // 5]))
    assert len(created.subscription.triggers) == limits.TRIGGERS // 5
    assert len(await service.stream_messages(1)) == 1


LONG = "x" * 100_000

# (case, spec, field named): each value past its bound, the rest of the spec valid.
OVERSIZED: list[tuple[str, Spec, str]] = [
    ("entity", rest_spec("e", entity=LONG), "subscription.entity"),
    (
        "trigger name",
        rest_spec("t", triggers=[T(trigger=LONG)]),
        "subscription.triggers[0].trigger",
    ),
    (
        "channels repeated",
        rest_spec("c", triggers=[T(trigger="OnNew", channels=[1] * 100_000)]),
        "subscription.triggers[0].channels",
    ),
    (
        "activity types repeated",
        rest_spec("a", triggers=[T(trigger="OnNewActivity", activity_types=[1] * 1000)]),
        "subscription.triggers[0].activity_types",
    ),
    (
        "status changes repeated",
        rest_spec(
            "s",
            triggers=[
                T(
                    trigger="OnNewActivity",
                    status_changes=[common_pb2.StatusChange(from_status=1, to_status=2)] * 1000,
                )
            ],
        ),
        "subscription.triggers[0].status_changes",
    ),
    (
        "whatsapp statuses repeated",
        whatsapp_spec("w", T(trigger="OnMessageStatus", whatsapp_statuses=["read"] * 1000)),
        "subscription.triggers[0].whatsapp_statuses",
    ),
    (
        "whatsapp status long",
        whatsapp_spec("w", T(trigger="OnMessageStatus", whatsapp_statuses=[LONG])),
        "subscription.triggers[0].whatsapp_statuses[0]",
    ),
    (
        "triggers",
        rest_spec("n", triggers=[T(trigger="OnNew", channels=[1])] * 1000),
        "subscription.triggers",
    ),
    ("soap operation", soap_spec("o", operation="o" * 1000), "subscription.webhook.soap.operation"),
    (
        "soap parameter name",
        soap_spec("p", parameters=[common_pb2.SoapParameter(name="p" * 1000, value="v")]),
        "subscription.webhook.soap.parameters[0].name",
    ),
    (
        "wsdl document",
        soap_spec(
            "d",
            wsdl_document='<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"><!--'
            + "x" * limits.WSDL_DOCUMENT_BYTES
            + "--></definitions>",
        ),
        "subscription.webhook.soap.wsdl_document",
    ),
]


async def test_each_oversized_value_is_refused_naming_its_field(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    wrong: list[str] = []
    for case, spec, field in OVERSIZED:
        try:
            error = await rpc_error(service.create(spec))
            assert_bound(error, field, "at most")
        except AssertionError as failed:
            wrong.append(f"{case}: {str(failed)[:300]}")
    assert wrong == []
    assert await service.list_all() == []


async def test_oversized_ids_and_list_filters_are_refused(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    long_id = "0" * 10_000
    error = await rpc_error(service.get(long_id))
    assert_bound(error, "id", "at most")
    error = await rpc_error(service.list_page(entity=LONG))
    assert_bound(error, "entity", "at most")
    error = await rpc_error(service.list_page(page_token=LONG))
    assert_bound(error, "page_token", "at most")
    upload = service.stub.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="c", certificate_pem="x" * (limits.PEM_BYTES + 1), private_key_pem="k"
        ),
        metadata=service.acme,
    )
    assert_bound(await rpc_error(upload), "certificate_pem", "at most")
    upload = service.stub.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="a\nb", certificate_pem="c", private_key_pem="k"
        ),
        metadata=service.acme,
    )
    assert_bound(await rpc_error(upload), "name")


async def test_the_console_shows_the_bound_beside_the_field(
    subscriptions_service: SubscriptionsService,
) -> None:
    # The console passes the service's message through: the form's WhatsApp channels input
    # carries "at most 100 values, got 101", on the Details step.
    service = subscriptions_service
    posted = MultiDict(
        [
            ("name", "Console"),
            ("entity", "WhatsApp"),
            ("trigger_count", "1"),
            ("triggers[0].trigger", "OnMessageStatus"),
            ("triggers[0].whatsapp_channels", ", ".join(channel_ids(101))),
            ("webhook.type", "rest"),
            ("webhook.url", "https://crm.example.com/hooks"),
            ("authentication", "none"),
            ("retry_policy.retries", "3"),
            ("retry_policy.interval_seconds", "300"),
        ]
    )
    form = parse_form(posted)
    spec, _ = build_spec(form, catalogue_message())
    error = await rpc_error(service.create(spec))
    errors = rpc_form_errors(form, error, {})
    assert [p.input for p in errors.problems] == ["triggers[0].whatsapp_channels"]
    (shown,) = errors.at("triggers[0].whatsapp_channels")
    assert "at most 100" in shown, shown
    assert step_of("triggers[0].whatsapp_channels") == "details"
    # The whole-subscription bound names no input: it is shown above the form, in words.
    error = await rpc_error(service.create(whatsapp_spec("Wide", *wide_triggers())))
    errors = rpc_form_errors(form, error, {})
    assert [p.input for p in errors.problems] == [""]
    whole = errors.problems[0].message.sentence
    assert "too large to store" in whole and "bytes" in whole, whole
