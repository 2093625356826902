"""Tenancy on every RPC of SubscriptionService: one organisation's token neither sees nor
changes another's subscriptions or certificates; tokens act only for their own tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.field_mask_pb2 import FieldMask

from tests.integration.conftest import (
    Metadata,
    SubscriptionsService,
    basic_auth,
    bearer,
    rest_spec,
    rpc_error,
)
from tests.support.certs import issue_client_certificate, make_ca
from webhooks.v1 import subscriptions_pb2
from webhooks_grpc import describe_rpc_error, field_violations

SERVICE = subscriptions_pb2.DESCRIPTOR.services_by_name["SubscriptionService"]


@dataclass
class AcmeData:
    subscription: subscriptions_pb2.Subscription
    certificate: subscriptions_pb2.Certificate
    certificate_pem: str
    private_key_pem: str


Call = Callable[[SubscriptionsService, Metadata, AcmeData], Awaitable[Any]]


def _request(message: str, /, **fields: Any) -> Any:
    return getattr(subscriptions_pb2, message)(**fields)


# Every RPC, aimed at acme's data.
CALLS: dict[str, Call] = {
    "CreateSubscription": lambda s, md, acme: s.stub.CreateSubscription(
        _request(
            "CreateSubscriptionRequest",
            subscription=rest_spec("Uses acme's certificate", certificate_id=acme.certificate.id),
        ),
        metadata=md,
    ),
    "GetSubscription": lambda s, md, acme: s.stub.GetSubscription(
        _request("GetSubscriptionRequest", id=acme.subscription.id), metadata=md
    ),
    "ListSubscriptions": lambda s, md, acme: s.stub.ListSubscriptions(
        _request("ListSubscriptionsRequest"), metadata=md
    ),
    "UpdateSubscription": lambda s, md, acme: s.stub.UpdateSubscription(
        _request(
            "UpdateSubscriptionRequest",
            id=acme.subscription.id,
            subscription=subscriptions_pb2.SubscriptionSpec(name="Hijacked"),
            update_mask=FieldMask(paths=["name"]),
        ),
        metadata=md,
    ),
    "SetSubscriptionActive": lambda s, md, acme: s.stub.SetSubscriptionActive(
        _request("SetSubscriptionActiveRequest", id=acme.subscription.id, active=False),
        metadata=md,
    ),
    "DeleteSubscription": lambda s, md, acme: s.stub.DeleteSubscription(
        _request("DeleteSubscriptionRequest", id=acme.subscription.id), metadata=md
    ),
    "GetSubscriptionHistory": lambda s, md, acme: s.stub.GetSubscriptionHistory(
        _request("GetSubscriptionHistoryRequest", id=acme.subscription.id), metadata=md
    ),
    "RotateSigningSecret": lambda s, md, acme: s.stub.RotateSigningSecret(
        _request("RotateSigningSecretRequest", id=acme.subscription.id), metadata=md
    ),
    "GetCatalogue": lambda s, md, acme: s.stub.GetCatalogue(
        _request("GetCatalogueRequest"), metadata=md
    ),
    # The same certificate again: a tenant's upload lands in its own organisation only.
    "UploadCertificate": lambda s, md, acme: s.stub.UploadCertificate(
        _request(
            "UploadCertificateRequest",
            name="acme client",
            certificate_pem=acme.certificate_pem,
            private_key_pem=acme.private_key_pem,
        ),
        metadata=md,
    ),
    "ListCertificates": lambda s, md, acme: s.stub.ListCertificates(
        _request("ListCertificatesRequest"), metadata=md
    ),
    "DeleteCertificate": lambda s, md, acme: s.stub.DeleteCertificate(
        _request("DeleteCertificateRequest", id=acme.certificate.id), metadata=md
    ),
}
NOT_FOUND_CALLS = {
    "GetSubscription",
    "UpdateSubscription",
    "SetSubscriptionActive",
    "DeleteSubscription",
    "GetSubscriptionHistory",
    "RotateSigningSecret",
    "DeleteCertificate",
}


def test_the_table_covers_every_rpc() -> None:
    assert set(CALLS) == {method.name for method in SERVICE.methods}


async def make_acme(service: SubscriptionsService) -> AcmeData:
    issued = issue_client_certificate(make_ca(), "acme-client")
    certificate = await service.stub.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="acme client",
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=service.acme,
    )
    created = await service.create(
        rest_spec(
            "Acme orders",
            authentication=basic_auth("acme", "acme-pw"),
            certificate_id=certificate.id,
        )
    )
    return AcmeData(
        subscription=created.subscription,
        certificate=certificate,
        certificate_pem=issued.certificate_pem,
        private_key_pem=issued.private_key_pem,
    )


async def acme_state(service: SubscriptionsService, acme: AcmeData) -> tuple[Any, ...]:
    """Everything acme can see of its own data."""
    history = await service.history(acme.subscription.id)
    certificates = await service.stub.ListCertificates(
        subscriptions_pb2.ListCertificatesRequest(), metadata=service.acme
    )
    return (
        await service.get(acme.subscription.id),
        await service.list_all(),
        list(history.entries),
        list(certificates.certificates),
    )


async def test_another_tenants_token_can_neither_see_nor_change_acmes_data(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    acme = await make_acme(service)
    before = await acme_state(service, acme)
    assert before[0] == acme.subscription
    for globex in (service.globex, service.platform("globex")):
        for name, call in CALLS.items():
            if name in NOT_FOUND_CALLS:
                error = await rpc_error(call(service, globex, acme))
                assert error.code() == grpc.StatusCode.NOT_FOUND, (name, describe_rpc_error(error))
            elif name == "CreateSubscription":
                error = await rpc_error(call(service, globex, acme))
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
                assert [f for f, _ in field_violations(error)] == [
                    "subscription.webhook.client_certificate_id"
                ]
            elif name == "ListSubscriptions":
                reply = await call(service, globex, acme)
                assert list(reply.subscriptions) == [], name
            elif name == "ListCertificates":
                reply = await call(service, globex, acme)
                assert all(c.tenant == "globex" for c in reply.certificates)
                assert acme.certificate.id not in {c.id for c in reply.certificates}
            elif name == "UploadCertificate":
                reply = await call(service, globex, acme)
                assert reply.tenant == "globex" and reply.id != acme.certificate.id
            else:  # GetCatalogue: the same catalogue for everyone, no tenant data
                reply = await call(service, globex, acme)
                assert [e.name for e in reply.entities][:1] == ["Object"]
        assert await acme_state(service, acme) == before
    # What globex did create stays in globex.
    globex_certificates = await service.stub.ListCertificates(
        subscriptions_pb2.ListCertificatesRequest(), metadata=service.globex
    )
    assert len(globex_certificates.certificates) == 2
    assert await service.list_all(service.globex) == []


async def test_a_tenant_token_naming_another_tenant_is_refused_on_every_rpc(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    acme = await make_acme(service)
    before = await acme_state(service, acme)
    refused: list[tuple[Metadata, grpc.StatusCode]] = [
        (bearer("globex-admin", "acme"), grpc.StatusCode.PERMISSION_DENIED),
        (bearer("acme-admin", "globex"), grpc.StatusCode.PERMISSION_DENIED),
        ([], grpc.StatusCode.UNAUTHENTICATED),
        ([("authorization", "Bearer not-a-token")], grpc.StatusCode.UNAUTHENTICATED),
        ([("x-webhooks-tenant", "acme")], grpc.StatusCode.UNAUTHENTICATED),
    ]
    for metadata, code in refused:
        for name, call in CALLS.items():
            error = await rpc_error(call(service, metadata, acme))
            assert error.code() == code, (name, metadata, describe_rpc_error(error))
    assert await acme_state(service, acme) == before


async def test_the_platform_token_acts_for_the_tenant_it_names(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    acme = await make_acme(service)
    as_acme = service.platform("acme")
    assert await service.get(acme.subscription.id, as_acme) == acme.subscription
    assert [s.id for s in await service.list_all(as_acme)] == [acme.subscription.id]
    renamed = await CALLS["UpdateSubscription"](service, as_acme, acme)
    assert (renamed.name, renamed.tenant) == ("Hijacked", "acme")
    history = await service.history(acme.subscription.id)
    assert [(e.event_type, e.actor) for e in history.entries] == [
        ("Created", "acme-admin"),
        ("Renamed", "platform"),
    ]
    created = await service.create(rest_spec("Made by the platform"), as_acme)
    assert created.subscription.tenant == "acme"
    assert created.subscription.id in {s.id for s in await service.list_all(service.acme)}
    # Without naming a tenant the platform token is refused.
    error = await rpc_error(service.get(acme.subscription.id, bearer("platform")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
