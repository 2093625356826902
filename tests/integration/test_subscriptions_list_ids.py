"""ListSubscriptions for the console's lists (issue 16): only given ids, all but given ids,
and the total the filters match over every page."""

from __future__ import annotations

import grpc

from tests.integration.conftest import SubscriptionsService, rest_spec, rpc_error
from webhooks.v1 import subscriptions_pb2
from webhooks_grpc import field_violations

NAME_ASC = subscriptions_pb2.SUBSCRIPTION_ORDER_NAME_ASC


async def test_ids_exclude_ids_and_total(subscriptions_service: SubscriptionsService) -> None:
    service = subscriptions_service
    ids = {}
    for name in ("alpha", "beta", "gamma", "delta", "epsilon"):
        ids[name] = (await service.create(rest_spec(name))).subscription.id
    only = [ids["gamma"], ids["alpha"], "not-an-id"]
    assert await service.names(ids=only, order_by=NAME_ASC) == ["alpha", "gamma"]
    assert await service.names(exclude_ids=only, order_by=NAME_ASC) == [
        "beta",
        "delta",
        "epsilon",
    ]
    assert await service.names(ids=only, exclude_ids=[ids["alpha"]]) == ["gamma"]
    assert await service.names(ids=only, name_contains="gam") == ["gamma"]

    first = await service.list_page(page_size=2, include_total=True, order_by=NAME_ASC)
    assert [s.name for s in first.subscriptions] == ["alpha", "beta"]
    assert first.total_size == 5
    second = await service.list_page(
        page_size=2, include_total=True, order_by=NAME_ASC, page_token=first.next_page_token
    )
    assert [s.name for s in second.subscriptions] == ["delta", "epsilon"]
    assert second.total_size == 5
    counted = await service.list_page(include_total=True, name_contains="ta", page_size=1)
    assert counted.total_size == 2  # beta, delta
    assert (await service.list_page()).total_size == 0  # not asked for

    error = await rpc_error(service.list_page(ids=["x" * 65]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["ids"]
    error = await rpc_error(service.list_page(exclude_ids=["x"] * 5001))
    assert [f for f, _ in field_violations(error)] == ["exclude_ids"]
