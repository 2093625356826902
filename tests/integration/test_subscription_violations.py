"""Every field violation of a request at once, over real gRPC on both stores (issue 16):
one INVALID_ARGUMENT whose BadRequest names each bad field in the form's order, and whose
message is the first violation and how many more there are."""

from __future__ import annotations

import grpc
import grpc.aio
from google.protobuf.field_mask_pb2 import FieldMask

from tests.integration.conftest import SubscriptionsService, rest_spec, rpc_error
from webhooks.v1 import common_pb2, subscriptions_pb2
from webhooks_grpc import describe_rpc_error, field_violations

Spec = subscriptions_pb2.SubscriptionSpec


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, describe_rpc_error(error)
    return [field for field, _ in field_violations(error)]


async def test_an_empty_create_names_every_missing_field_at_once(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    error = await rpc_error(service.create(Spec()))
    assert violations(error) == [
        "subscription.name",
        "subscription.entity",
        "subscription.triggers",
        "subscription.webhook.type",
        "subscription.webhook.url",
    ]
    described = dict(field_violations(error))
    assert described["subscription.name"] == "is required"
    assert described["subscription.webhook.url"] == "is required"
    # One readable line for clients that read no details: the first, and how many more.
    assert error.details() == "subscription.name: is required (and 4 more problems)"
    assert await service.list_all() == []


async def test_an_empty_form_as_the_console_sends_it_names_each_part(
    subscriptions_service: SubscriptionsService,
) -> None:
    """A form left empty: no name, no entity, one trigger row without a trigger, a REST
    webhook without a URL, basic authentication without credentials."""
    spec = Spec(
        entity="",
        triggers=[common_pb2.TriggerSpec()],
        webhook=common_pb2.Webhook(type=common_pb2.WEBHOOK_TYPE_REST),
        authentication=common_pb2.Authentication(basic=common_pb2.BasicAuth()),
        retry_policy=common_pb2.RetryPolicy(retries=6, interval_seconds=5),
    )
    error = await rpc_error(subscriptions_service.create(spec))
    assert violations(error) == [
        "subscription.name",
        "subscription.entity",
        "subscription.triggers[0].trigger",
        "subscription.webhook.url",
        "subscription.authentication.basic.username",
        "subscription.authentication.basic.password",
        "subscription.retry_policy.retries",
        "subscription.retry_policy.interval_seconds",
    ]
    assert (error.details() or "").endswith("(and 7 more problems)"), error.details()


async def test_two_bad_triggers_are_both_named(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    triggers = [
        common_pb2.TriggerSpec(trigger="OnNew", channels=[1]),
        common_pb2.TriggerSpec(trigger="OnNothing"),
        common_pb2.TriggerSpec(trigger="OnNew", channels=[99]),
    ]
    error = await rpc_error(service.create(rest_spec("Two bad triggers", triggers=triggers)))
    assert violations(error) == [
        "subscription.triggers[1].trigger",
        "subscription.triggers[2].channels[0]",
    ]
    assert (error.details() or "").startswith("subscription.triggers[1].trigger: ")
    assert (error.details() or "").endswith(" (and 1 more problem)"), error.details()
    assert await service.list_all() == []


async def test_an_update_with_a_bad_name_and_retry_policy_names_both_and_changes_nothing(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    created = await service.create(rest_spec("Kept as it was"))
    subscription_id = created.subscription.id
    request = subscriptions_pb2.UpdateSubscriptionRequest(
        id=subscription_id,
        subscription=Spec(name="  ", retry_policy=common_pb2.RetryPolicy(interval_seconds=1)),
        update_mask=FieldMask(paths=["retry_policy", "name"]),
    )
    error = await rpc_error(service.stub.UpdateSubscription(request, metadata=service.acme))
    # The form's order, whatever the mask's.
    assert violations(error) == ["subscription.name", "subscription.retry_policy.interval_seconds"]
    assert error.details() == "subscription.name: is required (and 1 more problem)"
    stored = await service.get(subscription_id)
    assert stored.name == "Kept as it was"
    assert stored.version == created.subscription.version


async def test_a_single_problem_is_reported_as_before(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    error = await rpc_error(service.create(rest_spec("Plain http", url="http://example.com/")))
    assert violations(error) == ["subscription.webhook.url"]
    assert error.details() == "subscription.webhook.url: must be an https:// URL"
