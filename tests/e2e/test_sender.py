"""The sender run for real: ``webhooks serve sender`` as a separate process next to
``serve subscriptions``, on a nats-server of this module, delivering to HTTPS receivers
under a test CA in this process (the sender trusts that CA through WEBHOOKS_CA_BUNDLE and
admits loopback through WEBHOOKS_OUTBOUND_ALLOW, as an operator would; the stack is
``tests.support.sender_stack``).

Subscriptions are made through the subscriptions API; jobs are put on DELIVERIES as the
router would put them; what comes out is what the receivers got and what ATTEMPTS holds.
Each test uses its own tenant, so the attempts it reads are its own.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
import standardwebhooks
from google.protobuf.field_mask_pb2 import FieldMask
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from tests.support.certs import issue_client_certificate, make_ca
from tests.support.receivers import HttpsReceiver, Received, Reply
from tests.support.sender_stack import (
    FAILED,
    FC,
    RPC_TIMEOUT,
    SUCCEEDED,
    Stack,
    new_tenant,
    platform,
    rest,
    running_stack,
)
from tests.support.token_server import TokenServer
from webhooks.v1 import (
    common_pb2,
    messages_pb2,
    sender_pb2,
    subscriptions_pb2,
)
from webhooks_messaging import delivery_job_subject, delivery_retry_subject


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("sender")) as running:
        yield running


@pytest.fixture
async def receiver(stack: Stack) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack.pki) as running:
        yield running


# ---- what arrives


async def test_a_rest_delivery_is_the_shaped_payload_signed_and_recorded(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("rest")
    attempts = await stack.attempts(tenant)
    created = await stack.create(tenant, rest("rest hook", receiver.url("/in")))
    job = await stack.send(created.subscription)

    await receiver.wait_for(1, "/in", timeout=20)
    got = receiver.at("/in")[0]
    assert got.body == job.payload_json
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == job.delivery_id
    assert got.headers["webhook-attempt"] == "1"
    assert got.headers["traceparent"].startswith("00-")
    assert "webhooks-platform" in got.headers["user-agent"]
    verifier = standardwebhooks.Webhook(created.signing_secret)
    verifier.verify(got.body, dict(got.headers))
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verifier.verify(got.body + b" ", dict(got.headers))

    await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
    (record,) = attempts.of(job.delivery_id)
    assert record.outcome == SUCCEEDED
    assert record.status_code == 204
    assert record.attempt == 1 and record.max_attempts == 1
    assert record.request_body == job.payload_json
    assert (record.channel, record.subchannel) == (7, "sales")
    assert record.url == receiver.url("/in")
    assert record.subscription_name == "rest hook"
    assert not record.will_retry


async def test_basic_credentials_are_sent_and_never_recorded(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("basic")
    attempts = await stack.attempts(tenant)
    auth = common_pb2.Authentication(
        basic=common_pb2.BasicAuth(username="hook-user", password="p@ss:wörd")
    )
    created = await stack.create(
        tenant, rest("basic hook", receiver.url("/basic"), authentication=auth)
    )
    job = await stack.send(created.subscription)
    await receiver.wait_for(1, "/basic", timeout=20)
    expected = base64.b64encode("hook-user:p@ss:wörd".encode()).decode()
    assert receiver.at("/basic")[0].headers["authorization"] == f"Basic {expected}"
    await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
    stored = attempts.of(job.delivery_id)[0].SerializeToString()
    assert b"p@ss" not in stored and expected.encode() not in stored


async def test_oauth_client_credentials_one_token_for_many_deliveries_and_401_refreshes(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("oauth")
    attempts = await stack.attempts(tenant)
    async with TokenServer(
        stack.pki, client_id="sender", client_secret="s3cret-value", scope="hooks.write"
    ) as tokens:
        receiver.reply("/oauth", tokens.protected())
        auth = common_pb2.Authentication(
            oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
                token_url=tokens.url,
                scope="hooks.write",
                client_id="sender",
                client_secret="s3cret-value",
            )
        )
        created = await stack.create(
            tenant, rest("oauth hook", receiver.url("/oauth"), authentication=auth)
        )
        jobs = [await stack.send(created.subscription) for _ in range(100)]
        await attempts.wait(lambda: len(attempts.records) >= 100, timeout=30)
        assert all(r.outcome == SUCCEEDED for r in attempts.records)
        assert tokens.requests == 1

        # The token is revoked before its expiry: the endpoint says 401; the sender gets
        # one new token and sends that attempt once more.
        tokens.revoke()
        job = await stack.send(created.subscription)
        await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
        (record,) = attempts.of(job.delivery_id)
        assert record.outcome == SUCCEEDED
        assert tokens.requests == 2
        assert len(receiver.at("/oauth")) == len(jobs) + 2
        stored = record.SerializeToString()
        assert b"s3cret-value" not in stored
        assert tokens.issued[-1].encode() not in stored

        # A token endpoint that fails: its own failure class, and nothing is sent.
        tokens.revoke()
        tokens.fail(TokenServer.oauth_error("invalid_client", 401))
        before = len(receiver.at("/oauth"))
        job = await stack.send(created.subscription)
        await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
        (record,) = attempts.of(job.delivery_id)
        # The revoked token is still cached: the endpoint says 401, the refresh fails.
        assert record.failure_class == FC.FAILURE_CLASS_OAUTH_TOKEN
        assert "invalid_client" in record.error_message
        assert len(receiver.at("/oauth")) == before + 1  # the 401 one, none after


async def test_mtls_with_the_tenants_uploaded_certificate(stack: Stack) -> None:
    tenant = new_tenant("mtls")
    attempts = await stack.attempts(tenant)
    client_ca = make_ca("Tenant client CA")
    issued = issue_client_certificate(client_ca, "acme-sender")
    certificate = await stack.subs.UploadCertificate(
        subscriptions_pb2.UploadCertificateRequest(
            name="acme client",
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
        ),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    async with HttpsReceiver(stack.pki, client_ca=client_ca) as strict:
        with_certificate = await stack.create(
            tenant, rest("mtls hook", strict.url("/mtls"), certificate_id=certificate.id)
        )
        without = await stack.create(tenant, rest("no cert hook", strict.url("/mtls")))
        accepted = await stack.send(with_certificate.subscription)
        refused = await stack.send(without.subscription)
        await attempts.wait(lambda: len(attempts.records) >= 2)
        assert attempts.of(accepted.delivery_id)[0].outcome == SUCCEEDED
        assert strict.at("/mtls")[0].client_certificate_cn == "acme-sender"
        failed = attempts.of(refused.delivery_id)[0]
        assert failed.outcome == FAILED
        assert failed.failure_class in (FC.FAILURE_CLASS_TLS, FC.FAILURE_CLASS_CONNECT)
        assert len(strict.at("/mtls")) == 1


async def test_soap_envelope_and_a_soap_fault(stack: Stack, receiver: HttpsReceiver) -> None:
    tenant = new_tenant("soap")
    attempts = await stack.attempts(tenant)
    spec = subscriptions_pb2.SubscriptionSpec(
        name="soap hook",
        entity="Object",
        triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_SOAP,
            url=receiver.url("/soap"),
            soap=common_pb2.SoapSettings(
                operation="Notify",
                namespace="urn:example:hooks",
                soap_action="urn:example:hooks#Notify",
                parameters=[common_pb2.SoapParameter(name="Source", value="webhooks")],
            ),
        ),
        retry_policy=common_pb2.RetryPolicy(retries=0, interval_seconds=1),
    )
    created = await stack.create(tenant, spec)
    fault = (
        b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
        b'envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode>'
        b"<faultstring>Queue full</faultstring></soap:Fault></soap:Body></soap:Envelope>"
    )
    receiver.reply("/soap", Reply(500, fault, {"Content-Type": "text/xml"}))
    job = await stack.send(created.subscription)
    await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
    (record,) = attempts.of(job.delivery_id)
    got = receiver.at("/soap")[0]
    assert got.headers["content-type"].startswith("text/xml")
    assert got.headers["soapaction"] == '"urn:example:hooks#Notify"'
    assert b"urn:example:hooks" in got.body and b"Envelope" in got.body
    assert record.request_body == got.body
    assert record.failure_class == FC.FAILURE_CLASS_SOAP_FAULT
    assert "Queue full" in record.error_message and "Server" in record.error_message


# ---- retries


async def test_retries_three_means_four_attempts_then_failed(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("retry")
    attempts = await stack.attempts(tenant)
    receiver.reply("/down", Reply(500, b"down"))
    three = await stack.create(tenant, rest("three", receiver.url("/down"), retries=3))
    none = await stack.create(tenant, rest("none", receiver.url("/down"), retries=0))
    job3 = await stack.send(three.subscription)
    job0 = await stack.send(none.subscription)
    await attempts.wait(lambda: len(attempts.of(job3.delivery_id)) >= 4, timeout=40)
    await asyncio.sleep(2.5)  # an extra attempt would come about a second later
    records = attempts.of(job3.delivery_id)
    assert [r.attempt for r in records] == [1, 2, 3, 4]
    assert [r.will_retry for r in records] == [True, True, True, False]
    assert all(r.max_attempts == 4 and r.status_code == 500 for r in records)
    assert records[0].response_snippet == b"down"
    gaps = [
        b.started_at.ToDatetime() - a.started_at.ToDatetime()
        for a, b in itertools.pairwise(records)
    ]
    assert all(gap.total_seconds() >= 0.9 for gap in gaps), gaps
    assert [r.attempt for r in attempts.of(job0.delivery_id)] == [1]
    assert len(receiver.at("/down")) == 5
    # Every attempt of a delivery carries the same webhook-id.
    assert {r.headers["webhook-id"] for r in receiver.at("/down")} == {
        job3.delivery_id,
        job0.delivery_id,
    }


async def test_success_on_the_second_attempt_stops_and_410_stops_at_once(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("recover")
    attempts = await stack.attempts(tenant)
    calls = 0

    def flaky(request: Received) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(503 if calls == 1 else 200)

    receiver.reply("/flaky", flaky)
    receiver.reply("/gone", Reply(410))
    flaky_sub = await stack.create(tenant, rest("flaky", receiver.url("/flaky"), retries=3))
    gone_sub = await stack.create(tenant, rest("gone", receiver.url("/gone"), retries=3))
    recovered = await stack.send(flaky_sub.subscription)
    gone = await stack.send(gone_sub.subscription)
    await attempts.wait(lambda: len(attempts.of(recovered.delivery_id)) >= 2)
    await asyncio.sleep(2.5)
    assert [r.outcome for r in attempts.of(recovered.delivery_id)] == [FAILED, SUCCEEDED]
    (record,) = attempts.of(gone.delivery_id)
    assert record.status_code == 410 and not record.will_retry


async def test_retry_after_is_honoured(stack: Stack, receiver: HttpsReceiver) -> None:
    tenant = new_tenant("later")
    attempts = await stack.attempts(tenant)
    calls = 0

    def busy(request: Received) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(429, headers={"Retry-After": "3"}) if calls == 1 else Reply(204)

    receiver.reply("/busy", busy)
    created = await stack.create(tenant, rest("busy", receiver.url("/busy"), retries=2))
    job = await stack.send(created.subscription)
    await attempts.wait(lambda: len(attempts.of(job.delivery_id)) >= 2, timeout=20)
    first, second = attempts.of(job.delivery_id)
    gap = second.started_at.ToDatetime() - first.started_at.ToDatetime()
    assert gap.total_seconds() >= 3.0, gap
    planned = first.next_attempt_at.ToDatetime() - first.started_at.ToDatetime()
    assert planned.total_seconds() >= 3.0


async def test_a_retry_survives_a_sender_restart(stack: Stack, receiver: HttpsReceiver) -> None:
    tenant = new_tenant("restart")
    attempts = await stack.attempts(tenant)
    calls = 0

    def once_down(request: Received) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(500) if calls == 1 else Reply(200)

    receiver.reply("/restart", once_down)
    created = await stack.create(
        tenant, rest("restart", receiver.url("/restart"), retries=1, interval=4)
    )
    job = await stack.send(created.subscription)
    await attempts.wait(lambda: len(attempts.of(job.delivery_id)) >= 1)
    # The retry is scheduled once the attempt's record is stored: kill the sender only when
    # the schedule is on DELIVERIES, so what is tested is the schedule outliving it.
    retry_subject = delivery_retry_subject(f"{job.delivery_id}:0")
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            await stack.js.get_last_msg("DELIVERIES", retry_subject)
            break
        except NotFoundError:
            assert asyncio.get_running_loop().time() < deadline, "no retry scheduled"
            await asyncio.sleep(0.05)
    stack.sender.kill()  # the next attempt is due in 4 s; no sender is running then
    await asyncio.sleep(5)
    await stack.sender.start()
    await attempts.wait(lambda: len(attempts.of(job.delivery_id)) >= 2, timeout=30)
    assert [r.outcome for r in attempts.of(job.delivery_id)] == [FAILED, SUCCEEDED]


# ---- bad input


async def test_malformed_jobs_and_gone_subscriptions_are_recorded_and_delivery_goes_on(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("bad")
    attempts = await stack.attempts(tenant)
    letters: list[messages_pb2.DeadLetter] = []

    async def on_letter(msg: Msg) -> None:
        letters.append(messages_pb2.DeadLetter.FromString(msg.data))

    await stack.nc.subscribe("deadletters.sender.>", cb=on_letter)
    created = await stack.create(tenant, rest("bad", receiver.url("/ok")))
    deleted = await stack.create(tenant, rest("deleted", receiver.url("/never")))
    await stack.subs.DeleteSubscription(
        subscriptions_pb2.DeleteSubscriptionRequest(id=deleted.subscription.id),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    subject = delivery_job_subject(tenant, created.subscription.id)
    await stack.js.publish(subject, b"\xff\x00 not a job")
    await stack.js.publish(subject, messages_pb2.DeliveryJob(job_id="x").SerializeToString())
    for_deleted = await stack.send(deleted.subscription)
    good = await stack.send(created.subscription)
    await attempts.wait(
        lambda: bool(attempts.of(good.delivery_id)) and bool(attempts.of(for_deleted.delivery_id))
    )
    assert attempts.of(good.delivery_id)[0].outcome == SUCCEEDED
    gone = attempts.of(for_deleted.delivery_id)[0]
    assert gone.failure_class == FC.FAILURE_CLASS_SUBSCRIPTION_GONE
    assert "deleted" in gone.error_message and not gone.will_retry
    assert receiver.at("/never") == []
    await attempts.wait(lambda: len(letters) >= 2, timeout=5, what="dead letters")
    reasons = sorted(letter.reason.split(":")[0] for letter in letters)
    assert reasons == ["invalid", "undecodable"]


# ---- the API


async def test_send_test_event_reports_what_the_endpoint_said(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("test-event")
    attempts = await stack.attempts(tenant)
    receiver.reply("/test", Reply(502, b"bad gateway"))
    created = await stack.create(tenant, rest("tested", receiver.url("/test")))
    response = await stack.senders.SendTestEvent(
        sender_pb2.SendTestEventRequest(subscription_id=created.subscription.id),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    attempt = response.attempt
    assert attempt.status_code == 502
    assert attempt.failure_class == FC.FAILURE_CLASS_HTTP_STATUS
    assert attempt.response_snippet == b"bad gateway"
    body = json.loads(receiver.at("/test")[0].body)
    assert body["Event"]["Subscription"] == "Object" and body["Event"]["Name"] == "OnNew"
    # Not part of the delivery record: nothing on ATTEMPTS.
    await asyncio.sleep(1)
    assert attempts.records == []

    # Another tenant does not see it.
    with pytest.raises(Exception) as refused:
        await stack.senders.SendTestEvent(
            sender_pb2.SendTestEventRequest(subscription_id=created.subscription.id),
            metadata=platform(new_tenant("other")),
            timeout=RPC_TIMEOUT,
        )
    assert "NOT_FOUND" in str(refused.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"Score": 1e400}', "too large for a float"),
        (b'{"a":' + b"[" * 700 + b"]" * 700 + b"}", "nested too deeply"),
        (b'{"a": NaN}', "not valid JSON"),
    ],
)
async def test_send_test_event_refuses_data_an_event_could_not_carry(
    stack: Stack, receiver: HttpsReceiver, data: bytes, reason: str
) -> None:
    """The rules of an event's data (webhooks_catalogue.event_data), as PublishEvents has."""
    tenant = new_tenant("test-data")
    created = await stack.create(tenant, rest("tested", receiver.url("/test-data")))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.senders.SendTestEvent(
            sender_pb2.SendTestEventRequest(
                subscription_id=created.subscription.id, data_json=data
            ),
            metadata=platform(tenant),
            timeout=RPC_TIMEOUT,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith("data_json: ")
    assert reason in (refused.value.details() or "")
    assert receiver.at("/test-data") == []


# ---- the outbound guard, redirects, settings that change or cannot be used


async def test_refused_destinations_for_webhook_token_and_wsdl_urls(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    """Loopback is admitted in this stack; metadata and private addresses are not."""
    tenant = new_tenant("guard")
    attempts = await stack.attempts(tenant)
    metadata_hook = await stack.create(
        tenant, rest("metadata", "https://169.254.169.254/latest/meta-data")
    )
    token_auth = common_pb2.Authentication(
        oauth2_client_credentials=common_pb2.OAuth2ClientCredentials(
            token_url="https://10.20.30.40/oauth/token",
            client_id="sender",
            client_secret="never-sent-anywhere",
        )
    )
    private_token = await stack.create(
        tenant, rest("private token url", receiver.url("/token-guarded"), authentication=token_auth)
    )
    wsdl_spec = subscriptions_pb2.SubscriptionSpec(
        name="private wsdl",
        entity="Object",
        triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_SOAP,
            url=receiver.url("/wsdl-guarded"),
            soap=common_pb2.SoapSettings(
                operation="Notify", wsdl_url="https://192.168.10.1/service?wsdl"
            ),
        ),
        retry_policy=common_pb2.RetryPolicy(retries=0, interval_seconds=1),
    )
    private_wsdl = await stack.create(tenant, wsdl_spec)
    jobs = [
        await stack.send(created.subscription)
        for created in (metadata_hook, private_token, private_wsdl)
    ]
    await attempts.wait(lambda: all(attempts.of(job.delivery_id) for job in jobs))
    for job in jobs:
        (record,) = attempts.of(job.delivery_id)
        assert record.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION, record
        assert "refused destination" in record.error_message
    assert "metadata" in attempts.of(jobs[0].delivery_id)[0].error_message
    # The WSDL's refusal is now served from the sender's failure cache: still refused.
    again = await stack.send(private_wsdl.subscription)
    await attempts.wait(lambda: bool(attempts.of(again.delivery_id)))
    (record,) = attempts.of(again.delivery_id)
    assert record.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION, record
    # Neither the webhook behind the refused token URL nor the SOAP endpoint got anything.
    assert receiver.at("/token-guarded") == [] and receiver.at("/wsdl-guarded") == []


async def test_a_redirect_is_a_failed_attempt_and_not_followed(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("redirect")
    attempts = await stack.attempts(tenant)
    receiver.reply("/moved", Reply(302, headers={"Location": receiver.url("/elsewhere")}))
    created = await stack.create(tenant, rest("moved", receiver.url("/moved")))
    job = await stack.send(created.subscription)
    await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
    (record,) = attempts.of(job.delivery_id)
    assert record.status_code == 302 and record.failure_class == FC.FAILURE_CLASS_HTTP_STATUS
    assert "not followed" in record.error_message
    assert len(receiver.at("/moved")) == 1 and receiver.at("/elsewhere") == []


async def test_a_changed_url_applies_to_the_next_attempt(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("moved-url")
    attempts = await stack.attempts(tenant)
    receiver.reply("/old", Reply(500))
    created = await stack.create(
        tenant, rest("moving", receiver.url("/old"), retries=1, interval=3)
    )
    job = await stack.send(created.subscription)
    await attempts.wait(lambda: bool(attempts.of(job.delivery_id)))
    await stack.subs.UpdateSubscription(
        subscriptions_pb2.UpdateSubscriptionRequest(
            id=created.subscription.id,
            subscription=subscriptions_pb2.SubscriptionSpec(
                webhook=common_pb2.Webhook(
                    type=common_pb2.WEBHOOK_TYPE_REST, url=receiver.url("/new")
                )
            ),
            update_mask=FieldMask(paths=["webhook"]),
        ),
        metadata=platform(tenant),
        timeout=RPC_TIMEOUT,
    )
    await attempts.wait(lambda: len(attempts.of(job.delivery_id)) >= 2, timeout=20)
    first, second = attempts.of(job.delivery_id)
    assert (first.status_code, second.outcome) == (500, SUCCEEDED)
    assert second.url == receiver.url("/new")
    assert receiver.at("/new")[0].headers["webhook-id"] == job.delivery_id


async def test_an_unparseable_wsdl_is_recorded_and_delivery_goes_on(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    tenant = new_tenant("bad-wsdl")
    attempts = await stack.attempts(tenant)
    receiver.reply(
        "/broken.wsdl", Reply(200, b"<definitions><unclosed>", {"Content-Type": "text/xml"})
    )
    spec = subscriptions_pb2.SubscriptionSpec(
        name="broken wsdl",
        entity="Object",
        triggers=[common_pb2.TriggerSpec(trigger="OnNew")],
        webhook=common_pb2.Webhook(
            type=common_pb2.WEBHOOK_TYPE_SOAP,
            url=receiver.url("/soap-broken"),
            soap=common_pb2.SoapSettings(operation="Notify", wsdl_url=receiver.url("/broken.wsdl")),
        ),
        retry_policy=common_pb2.RetryPolicy(retries=0, interval_seconds=1),
    )
    broken = await stack.create(tenant, spec)
    healthy = await stack.create(tenant, rest("after broken", receiver.url("/after")))
    bad_job = await stack.send(broken.subscription)
    good_job = await stack.send(healthy.subscription)
    await attempts.wait(
        lambda: bool(attempts.of(bad_job.delivery_id)) and bool(attempts.of(good_job.delivery_id))
    )
    (record,) = attempts.of(bad_job.delivery_id)
    assert record.failure_class == FC.FAILURE_CLASS_CONFIGURATION
    assert "broken.wsdl" in record.error_message
    assert attempts.of(good_job.delivery_id)[0].outcome == SUCCEEDED
    assert receiver.at("/soap-broken") == []
