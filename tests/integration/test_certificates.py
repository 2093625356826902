"""Client certificates: upload (checked, listed with subject and expiry), use by a
subscription of the same tenant only, deletion only when unused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import grpc.aio
from google.protobuf.field_mask_pb2 import FieldMask

from tests.integration.conftest import Metadata, SubscriptionsService, rest_spec, rpc_error
from tests.support.certs import Issued, issue_client_certificate, make_ca
from webhooks.v1 import common_pb2, subscriptions_pb2
from webhooks_grpc import describe_rpc_error, field_violations


async def upload(
    service: SubscriptionsService,
    issued: Issued,
    name: str = "client",
    metadata: Metadata | None = None,
    private_key_pem: str | None = None,
) -> subscriptions_pb2.Certificate:
    reply: subscriptions_pb2.Certificate = await service.stub.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name=name,
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem if private_key_pem is None else private_key_pem,
        ),
        metadata=metadata or service.acme,
    )
    return reply


async def listed(
    service: SubscriptionsService, metadata: Metadata | None = None
) -> list[subscriptions_pb2.Certificate]:
    reply = await service.stub.ListCertificates(
        subscriptions_pb2.ListCertificatesRequest(), metadata=metadata or service.acme
    )
    return list(reply.certificates)


async def delete(
    service: SubscriptionsService, certificate_id: str
) -> subscriptions_pb2.DeleteCertificateResponse:
    reply: subscriptions_pb2.DeleteCertificateResponse = await service.stub.DeleteCertificate(
        subscriptions_pb2.DeleteCertificateRequest(id=certificate_id), metadata=service.acme
    )
    return reply


def assert_invalid(error: grpc.aio.AioRpcError, field: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, describe_rpc_error(error)
    assert [f for f, _ in field_violations(error)] == [field], describe_rpc_error(error)


async def test_an_upload_is_listed_with_subject_and_expiry(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    ca = make_ca("Upload CA")
    issued = issue_client_certificate(ca, "orders-client")
    certificate = await upload(service, issued, "Orders client")
    assert certificate.tenant == "acme"
    assert certificate.name == "Orders client"
    assert "CN=orders-client" in certificate.subject
    assert "CN=Upload CA" in certificate.issuer
    assert certificate.not_after.ToDatetime(UTC) == issued.not_after
    assert len(certificate.fingerprint_sha256) == 64
    assert await listed(service) == [certificate]
    assert await listed(service, service.globex) == []


async def test_bad_uploads_are_refused_naming_the_field(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    ca = make_ca()
    good = issue_client_certificate(ca, "good")
    other = issue_client_certificate(ca, "other")
    now = datetime.now(UTC)
    expired = issue_client_certificate(
        ca, "expired", valid_from=now - timedelta(days=30), valid_until=now - timedelta(days=1)
    )
    cases = [
        (upload(service, good, private_key_pem=other.private_key_pem), "private_key_pem"),
        (upload(service, good, private_key_pem=""), "private_key_pem"),
        (
            upload(service, good, private_key_pem="-----BEGIN PRIVATE KEY-----\nxx"),
            "private_key_pem",
        ),
        (upload(service, expired), "certificate_pem"),
        (upload(service, Issued("not a pem", good.private_key_pem, "x", now)), "certificate_pem"),
        (upload(service, good, name=""), "name"),
        (upload(service, good, name="n" * 201), "name"),
    ]
    for call, field in cases:
        assert_invalid(await rpc_error(call), field)
    assert await listed(service) == []


async def test_a_certificate_in_use_cannot_be_deleted(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    certificate = await upload(service, issue_client_certificate(make_ca(), "in-use"))
    created = await service.create(rest_spec("mTLS", certificate_id=certificate.id.upper()))
    assert created.subscription.webhook.client_certificate_id == certificate.id
    error = await rpc_error(delete(service, certificate.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, describe_rpc_error(error)
    assert "mTLS" in (error.details() or "")
    assert await listed(service) == [certificate]
    # No longer used once the subscription points elsewhere: then it can go.
    await service.stub.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=created.subscription.id,
            subscription=subscriptions_pb2.SubscriptionSpec(
                webhook=common_pb2.Webhook(
                    type=common_pb2.WEBHOOK_TYPE_REST, url="https://hooks.example.com/in"
                )
            ),
            update_mask=FieldMask(paths=["webhook"]),
        ),
        metadata=service.acme,
    )
    await delete(service, certificate.id)
    assert await listed(service) == []
    error = await rpc_error(delete(service, certificate.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # A deleted certificate cannot be referenced any more.
    error = await rpc_error(service.create(rest_spec("Late", certificate_id=certificate.id)))
    assert_invalid(error, "subscription.webhook.client_certificate_id")


async def test_a_deleted_subscription_releases_its_certificate(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    certificate = await upload(service, issue_client_certificate(make_ca(), "released"))
    created = await service.create(rest_spec("Short lived", certificate_id=certificate.id))
    error = await rpc_error(delete(service, certificate.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    await service.stub.DeleteSubscription(
        subscriptions_pb2.DeleteSubscriptionRequest(id=created.subscription.id),
        metadata=service.acme,
    )
    await delete(service, certificate.id)
    assert await listed(service) == []


async def test_another_tenants_certificate_cannot_be_referenced(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    theirs = await upload(
        service, issue_client_certificate(make_ca(), "globex"), metadata=service.globex
    )
    mine = await upload(service, issue_client_certificate(make_ca(), "acme"))
    error = await rpc_error(service.create(rest_spec("Borrowed", certificate_id=theirs.id)))
    assert_invalid(error, "subscription.webhook.client_certificate_id")
    created = await service.create(rest_spec("Own", certificate_id=mine.id))
    error = await rpc_error(
        service.stub.UpdateSubscription(
            subscriptions_pb2.UpdateSubscriptionRequest(
                id=created.subscription.id,
                subscription=rest_spec("Own", certificate_id=theirs.id),
                update_mask=FieldMask(paths=["webhook"]),
            ),
            metadata=service.acme,
        )
    )
    assert_invalid(error, "subscription.webhook.client_certificate_id")
    assert await service.get(created.subscription.id) == created.subscription
    assert [s.name for s in await service.list_all()] == ["Own"]
    # globex's certificate is deletable by globex: acme's subscription never used it.
    await service.stub.DeleteCertificate(
        subscriptions_pb2.DeleteCertificateRequest(id=theirs.id), metadata=service.globex
    )


async def test_an_expired_certificate_cannot_be_referenced(
    subscriptions_service: SubscriptionsService,
) -> None:
    service = subscriptions_service
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    issued = issue_client_certificate(make_ca(), "expiring", valid_until=expiry)
    certificate = await upload(service, issued)
    await asyncio.sleep(max(0.0, (issued.not_after - datetime.now(UTC)).total_seconds()) + 0.1)
    error = await rpc_error(service.create(rest_spec("Too late", certificate_id=certificate.id)))
    assert_invalid(error, "subscription.webhook.client_certificate_id")
    assert "expired" in (error.details() or "")
    assert await service.list_all() == []
