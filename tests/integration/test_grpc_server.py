"""run_service end to end on port 0: health, reflection, auth, rich errors, tracing, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import grpc.aio
import nats.errors
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from webhooks.v1 import common_pb2, subscriptions_pb2, subscriptions_pb2_grpc
from webhooks_config import ConfigError, Settings, load_settings
from webhooks_grpc import (
    AuthError,
    Principal,
    abort,
    authenticate,
    current_principal,
    describe_rpc_error,
    field_violations,
    load_tokens,
    run_service,
    to_datetime,
)
from webhooks_grpc.boundary import BoundaryInterceptor
from webhooks_telemetry import setup_tracing

SERVICE = "webhooks.v1.SubscriptionService"
TENANT_TOKEN, PLATFORM_TOKEN = "tenant-secret-1", "platform-secret-1"
TOKENS = [
    {"name": "acme-app", "token": TENANT_TOKEN, "tenant": "acme"},
    {"name": "platform", "token": PLATFORM_TOKEN, "tenant": "*"},
]
EXPORTER = InMemorySpanExporter()


class Subscriptions(subscriptions_pb2_grpc.SubscriptionServiceServicer):
    """GetCatalogue records its caller; GetSubscription is slow; Create rejects a field."""

    def __init__(self) -> None:
        self.seen: list[Principal] = []
        self.slow_started = asyncio.Event()

    async def GetCatalogue(
        self, request: subscriptions_pb2.GetCatalogueRequest, context: Any
    ) -> common_pb2.Catalogue:
        self.seen.append(current_principal())
        return common_pb2.Catalogue()

    async def GetSubscription(
        self, request: subscriptions_pb2.GetSubscriptionRequest, context: Any
    ) -> subscriptions_pb2.Subscription:
        self.slow_started.set()
        await asyncio.sleep(0.5)
        return subscriptions_pb2.Subscription(id=request.id, tenant=current_principal().tenant)

    async def CreateSubscription(
        self, request: subscriptions_pb2.CreateSubscriptionRequest, context: Any
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "must not be empty", "name")

    async def UpdateSubscription(
        self, request: subscriptions_pb2.UpdateSubscriptionRequest, context: Any
    ) -> subscriptions_pb2.Subscription:
        raise RuntimeError("a bug with a detail the caller must not see")

    async def DeleteSubscription(
        self, request: subscriptions_pb2.DeleteSubscriptionRequest, context: Any
    ) -> subscriptions_pb2.DeleteSubscriptionResponse:
        raise nats.errors.TimeoutError

    async def ListSubscriptions(
        self, request: subscriptions_pb2.ListSubscriptionsRequest, context: Any
    ) -> subscriptions_pb2.ListSubscriptionsResponse:
        to_datetime(timestamp_pb2.Timestamp(seconds=2**62), "created_after")
        return subscriptions_pb2.ListSubscriptionsResponse()


async def broken(request: bytes, context: Any) -> AsyncIterator[bytes]:
    """A server-streaming method that fails after its first reply."""
    yield b"first"
    raise ValueError("half way")


async def count(request: bytes, context: Any) -> AsyncIterator[bytes]:
    """A server-streaming method: yields the caller's tenant twice."""
    for _ in range(2):
        yield current_principal().tenant.encode()


@dataclass
class Running:
    port: int
    stop: asyncio.Event
    task: asyncio.Task[None]
    servicer: Subscriptions
    channel: grpc.aio.Channel
    stub: subscriptions_pb2_grpc.SubscriptionServiceStub
    shut_down: list[str] = field(default_factory=list)


def service_settings(data_dir: Path) -> Settings:
    return load_settings(
        {
            "WEBHOOKS_DATA_DIR": str(data_dir),
            "WEBHOOKS_SUBSCRIPTIONS_ADDR": "127.0.0.1:0",
            "WEBHOOKS_TOKENS": json.dumps(TOKENS),
        }
    )


async def start(data_dir: Path) -> Running:
    settings = service_settings(data_dir)
    setup_tracing("subscriptions", settings, extra_exporter=EXPORTER)
    servicer = Subscriptions()
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    shut_down: list[str] = []

    def register(server: grpc.aio.Server) -> Sequence[str]:
        subscriptions_pb2_grpc.add_SubscriptionServiceServicer_to_server(servicer, server)
        handler = grpc.method_handlers_generic_handler(
            "test.Counter",
            {
                "Count": grpc.unary_stream_rpc_method_handler(count),
                "Broken": grpc.unary_stream_rpc_method_handler(broken),
            },
        )
        server.add_generic_rpc_handlers([handler])
        return [SERVICE]

    async def background(stopping: asyncio.Event) -> None:
        await stopping.wait()
        shut_down.append("background")

    async def on_shutdown() -> None:
        shut_down.append("on_shutdown")

    task = asyncio.create_task(
        run_service(
            "subscriptions",
            settings,
            register,
            background=[background],
            on_shutdown=on_shutdown,
            ready=bound.set_result,
            stop=stop,
        )
    )
    port = await asyncio.wait_for(bound, 10)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = subscriptions_pb2_grpc.SubscriptionServiceStub(channel)
    return Running(port, stop, task, servicer, channel, stub, shut_down)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    service = await start(tmp_path)
    yield service
    service.stop.set()
    await asyncio.wait_for(service.task, 15)
    await service.channel.close(None)


def bearer(token: str, tenant: str | None = None) -> list[tuple[str, str]]:
    metadata = [("authorization", f"Bearer {token}")]
    return metadata + ([("x-webhooks-tenant", tenant)] if tenant is not None else [])


async def catalogue_error(
    running: Running, metadata: list[tuple[str, str]]
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.stub.GetCatalogue(subscriptions_pb2.GetCatalogueRequest(), metadata=metadata)
    return caught.value


async def test_health_is_serving_without_a_token(running: Running) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    for name in ("", SERVICE):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names = set()
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names |= {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize(
    ("metadata", "code", "text"),
    [
        ([], grpc.StatusCode.UNAUTHENTICATED, "bearer token required"),
        (bearer("wrong"), grpc.StatusCode.UNAUTHENTICATED, "invalid token"),
        ([("authorization", TENANT_TOKEN)], grpc.StatusCode.UNAUTHENTICATED, "Bearer"),
        (
            bearer(PLATFORM_TOKEN),
            grpc.StatusCode.INVALID_ARGUMENT,
            "x-webhooks-tenant: required with a platform token",
        ),
        (bearer(PLATFORM_TOKEN, "bad.tenant"), grpc.StatusCode.INVALID_ARGUMENT, "x-webhooks"),
        (bearer(TENANT_TOKEN, "globex"), grpc.StatusCode.PERMISSION_DENIED, "x-webhooks-tenant"),
    ],
)
async def test_refused_callers(
    running: Running, metadata: list[tuple[str, str]], code: grpc.StatusCode, text: str
) -> None:
    error = await catalogue_error(running, metadata)
    assert error.code() == code
    assert text in (error.details() or "")
    assert running.servicer.seen == []


async def test_the_handler_sees_the_caller(running: Running) -> None:
    request = subscriptions_pb2.GetCatalogueRequest()
    await running.stub.GetCatalogue(request, metadata=bearer(TENANT_TOKEN))
    await running.stub.GetCatalogue(request, metadata=bearer(TENANT_TOKEN, "acme"))
    await running.stub.GetCatalogue(request, metadata=bearer(PLATFORM_TOKEN, "globex"))
    assert running.servicer.seen == [
        Principal(name="acme-app", tenant="acme", platform=False),
        Principal(name="acme-app", tenant="acme", platform=False),
        Principal(name="platform", tenant="globex", platform=True),
    ]


async def test_a_streaming_handler_sees_the_caller(running: Running) -> None:
    call = running.channel.unary_stream("/test.Counter/Count")  # type: ignore[call-arg]
    replies = [r async for r in call(b"", metadata=bearer(PLATFORM_TOKEN, "initech"))]
    assert replies == [b"initech", b"initech"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [r async for r in call(b"", metadata=bearer("wrong"))]
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_rejected_field_reaches_every_client(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.stub.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(), metadata=bearer(TENANT_TOKEN)
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "name: must not be empty"
    assert field_violations(error) == [("name", "must not be empty")]
    assert describe_rpc_error(error) == "INVALID_ARGUMENT: name: must not be empty"


CATALOGUE = "/webhooks.v1.SubscriptionService/GetCatalogue"
GET = "/webhooks.v1.SubscriptionService/GetSubscription"  # its field 1 is a string


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff", b"\x0a\x40abc", b"\x0a\x02\xff\xfe"],
    ids=["garbage", "truncated", "utf8"],
)
async def test_an_undecodable_body_is_invalid_argument_in_one_log_line(
    running: Running, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    raw = running.channel.unary_unary(GET)  # type: ignore[call-arg]
    caplog.clear()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(body, metadata=bearer(TENANT_TOKEN))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("request: not a valid GetSubscriptionRequest")
    assert [field for field, _ in field_violations(error)] == ["request"]
    assert not running.servicer.slow_started.is_set()  # the handler never ran
    records = [r for r in caplog.records if GET in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None, caplog.text
    assert "Traceback" not in caplog.text


async def test_an_undecodable_body_of_an_unauthenticated_caller_is_unauthenticated(
    running: Running,
) -> None:
    raw = running.channel.unary_unary(CATALOGUE)  # type: ignore[call-arg]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\xff\xff\xff")
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_undecodable_health_check_is_invalid_argument(running: Running) -> None:
    raw = running.channel.unary_unary("/grpc.health.v1.Health/Check")  # type: ignore[call-arg]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\x0a\x02\xff\xfe")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_flood_of_garbage_calls_logs_one_line_per_method_and_minute(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    raw = running.channel.unary_unary(GET)  # type: ignore[call-arg]
    bodies = [b"\xff\xff\xff", b"\x0a\x40abc", b"\x0a\x02\xff\xfe"]
    codes = set()
    for i in range(100):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(bodies[i % len(bodies)], metadata=bearer(TENANT_TOKEN))
        codes.add(caught.value.code())
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    records = [r for r in caplog.records if GET in r.getMessage()]
    assert len(records) == 1, caplog.text
    # Another method has its own line; the next one's names how many were not logged.
    other = "/webhooks.v1.SubscriptionService/DeleteSubscription"
    raw_other = running.channel.unary_unary(other)  # type: ignore[call-arg]
    with pytest.raises(grpc.aio.AioRpcError):
        await raw_other(b"\xff", metadata=bearer(TENANT_TOKEN))
    assert len([r for r in caplog.records if other in r.getMessage()]) == 1, caplog.text
    # So does a broker error, by method: one line for 20 calls while the broker is away.
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await running.stub.DeleteSubscription(
                subscriptions_pb2.DeleteSubscriptionRequest(), metadata=bearer(TENANT_TOKEN)
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    broker = [r for r in caplog.records if "broker did not answer" in r.getMessage()]
    assert len(broker) == 1, caplog.text
    assert "Traceback" not in caplog.text


async def test_an_unexpected_exception_is_internal_and_logged_once(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.stub.UpdateSubscription(
            subscriptions_pb2.UpdateSubscriptionRequest(), metadata=bearer(TENANT_TOKEN)
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "detail" not in (error.details() or "")
    method = "/webhooks.v1.SubscriptionService/UpdateSubscription"
    records = [r for r in caplog.records if method in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None, caplog.text


async def test_a_streaming_handler_failing_half_way_is_internal(running: Running) -> None:
    call = running.channel.unary_stream("/test.Counter/Broken")  # type: ignore[call-arg]
    replies: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for reply in call(b"", metadata=bearer(TENANT_TOKEN)):
            replies.append(reply)
    assert replies == [b"first"]
    assert caught.value.code() == grpc.StatusCode.INTERNAL


async def test_a_broker_error_is_unavailable(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.stub.DeleteSubscription(
            subscriptions_pb2.DeleteSubscriptionRequest(), metadata=bearer(TENANT_TOKEN)
        )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry" in (caught.value.details() or "")


async def test_an_invalid_field_raised_by_a_handler_names_the_field(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await running.stub.ListSubscriptions(
            subscriptions_pb2.ListSubscriptionsRequest(), metadata=bearer(TENANT_TOKEN)
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("created_after: must be between 0001-01-01")
    assert [field for field, _ in field_violations(error)] == ["created_after"]


@pytest.mark.parametrize(
    ("seconds", "nanos", "valid"),
    [
        (-62_135_596_800, 0, True),
        (253_402_300_799, 999_999_999, True),
        (0, 0, True),
        (-62_135_596_801, 0, False),
        (253_402_300_800, 0, False),
        (2**62, 0, False),
        (-(2**62), 0, False),
        (0, -1, False),
        (0, 1_000_000_000, False),
    ],
)
def test_to_datetime_accepts_exactly_the_timestamp_range(
    seconds: int, nanos: int, valid: bool
) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    if valid:
        converted = to_datetime(stamp, "at")
        assert converted.tzinfo is not None
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        assert (converted - epoch) // timedelta(seconds=1) == seconds
    else:
        with pytest.raises(ValueError, match=r"^at: "):
            to_datetime(stamp, "at")


async def test_a_server_span_continues_the_callers_trace(running: Running) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    EXPORTER.clear()
    await running.stub.GetCatalogue(
        subscriptions_pb2.GetCatalogueRequest(),
        metadata=[*bearer(TENANT_TOKEN), ("traceparent", traceparent)],
    )
    spans = [
        s
        for s in EXPORTER.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == f"/{SERVICE}/GetCatalogue"
    ]
    assert len(spans) == 1
    assert format(spans[0].context.trace_id, "032x") == trace_id
    assert spans[0].resource.attributes["service.name"] == "webhooks-subscriptions"
    # No token ever reaches a span.
    for span in EXPORTER.get_finished_spans():
        assert TENANT_TOKEN not in json.dumps(dict(span.attributes or {}), default=str)


async def test_shutdown_finishes_the_rpc_in_flight(tmp_path: Path) -> None:
    service = await start(tmp_path)
    try:
        slow = asyncio.ensure_future(
            service.stub.GetSubscription(
                subscriptions_pb2.GetSubscriptionRequest(id="s1"), metadata=bearer(TENANT_TOKEN)
            )
        )
        await asyncio.wait_for(service.servicer.slow_started.wait(), 5)
        service.stop.set()
        reply = await asyncio.wait_for(slow, 5)
        assert (reply.id, reply.tenant) == ("s1", "acme")
        await asyncio.wait_for(service.task, 15)
        assert service.shut_down == ["background", "on_shutdown"]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service.stub.GetCatalogue(
                subscriptions_pb2.GetCatalogueRequest(), metadata=bearer(TENANT_TOKEN), timeout=2
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.stop.set()
        await service.channel.close(None)


def test_tokens_come_from_the_data_dir_file_when_nothing_else_is_set(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").write_text(json.dumps(TOKENS))
    tokens = load_tokens(load_settings({"WEBHOOKS_DATA_DIR": str(tmp_path)}))
    assert len(tokens) == 2
    entry = tokens.lookup(PLATFORM_TOKEN)
    assert entry is not None
    assert (entry.name, entry.tenant) == ("platform", "*")
    assert tokens.lookup("nope") is None


def test_no_tokens_means_every_call_is_unauthenticated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = load_tokens(load_settings({"WEBHOOKS_DATA_DIR": str(tmp_path)}))
    assert len(tokens) == 0
    assert "no API tokens configured" in caplog.text
    with pytest.raises(AuthError) as caught:
        authenticate(tokens, [("authorization", "Bearer anything")])
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_malformed_token_config_is_refused_without_echoing_it(tmp_path: Path) -> None:
    settings = load_settings(
        {"WEBHOOKS_DATA_DIR": str(tmp_path), "WEBHOOKS_TOKENS": '[{"token": "s3cret"'}
    )
    with pytest.raises(ConfigError) as caught:
        load_tokens(settings)
    assert "s3cret" not in str(caught.value)
    assert "WEBHOOKS_TOKENS" in str(caught.value)


async def test_the_boundary_guards_each_registered_handler_once() -> None:
    """The guarded handler is made once per method and handler, not per call."""
    boundary = BoundaryInterceptor()

    async def echo(request: bytes, context: object) -> bytes:
        return request

    first = grpc.unary_unary_rpc_method_handler(echo)
    second = grpc.unary_unary_rpc_method_handler(echo)
    current = first

    async def continuation(details: object) -> grpc.RpcMethodHandler[bytes, bytes]:
        return current

    details = SimpleNamespace(method="/test.Echo/Say", invocation_metadata=())
    one = await boundary.intercept_service(continuation, details)  # type: ignore[arg-type]
    again = await boundary.intercept_service(continuation, details)  # type: ignore[arg-type]
    assert one is again and one is not first
    current = second  # a handler registered anew: guarded anew
    other = await boundary.intercept_service(continuation, details)  # type: ignore[arg-type]
    assert other is not one
