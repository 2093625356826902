"""Every RPC of every service, called with bad input, answers a deliberate status.

The services run as real processes (``running_platform``); the RPCs are enumerated from
the contracts' service descriptors, so a new RPC or field is swept without touching this
file. Each method gets a table of bad requests built from its input message: empty,
undecodable and truncated bodies, and for every field (up to a few levels deep) an
oversize value (strings, bytes, lists, maps), invalid UTF-8 in a string, an unknown enum
number, out-of-range integers and timestamps. The sweep fails on any UNKNOWN (an exception
the service did not expect reached the caller as its Python name), on any INTERNAL (the
last-resort guard caught one), and on any traceback in a service's log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from tests.support.platform_stack import (
    RPC_TIMEOUT,
    Platform,
    new_tenant,
    platform,
    platform_event,
    rest,
    running_platform,
)
from tests.support.service_process import ServiceProcess
from tests.support.waiting import eventually
from webhooks.v1 import failures_pb2, router_pb2, sender_pb2, subscriptions_pb2
from webhooks_grpc import field_violations

CONTRACTS: tuple[ModuleType, ...] = (subscriptions_pb2, router_pb2, sender_pb2, failures_pb2)
OVERSIZE_TEXT = 100_000  # characters: far over any bound, far under the 4 MiB message limit
OVERSIZE_BYTES = 1_000_000
OVERSIZE_LIST = 20_000
DEPTH = 4  # how deep into nested messages fields are swept
CONCURRENCY = 8
# Same length as the marker, so swapping them keeps every length prefix right.
MARKER = b"Zq7-marker-Zq7"
INVALID_UTF8 = b"\xff\xfe\xc0\xaf\xed\xa0\x80" + b"\xff" * (len(MARKER) - 7)
TIMESTAMPS = {
    "far future": timestamp_pb2.Timestamp(seconds=2**62),
    "before year 1": timestamp_pb2.Timestamp(seconds=-(2**62)),
    "negative nanos": timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=-1),
    "nanos over a second": timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=2_000_000_000),
}
INTEGERS = {
    FieldDescriptor.CPPTYPE_INT32: (-1, -(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-1, -(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (2**32 - 1,),
    FieldDescriptor.CPPTYPE_UINT64: (2**64 - 1,),
}
# A refusal the sweep accepts is any code but these: UNKNOWN is an unexpected exception
# reaching the caller, INTERNAL the guard catching one, DEADLINE_EXCEEDED a hang.
FORBIDDEN = (
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)
LOG_ALARMS = ("Traceback", "Unexpected [", "Exception in callback")


def rpc_methods() -> list[MethodDescriptor]:
    """Every method of every service of the contracts."""
    return [
        method
        for module in CONTRACTS
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def process_of(running: Platform, method: MethodDescriptor) -> ServiceProcess:
    """The process serving ``method``: the one named like the method's .proto file."""
    stem = Path(method.containing_service.file.name).stem
    serving = {
        "subscriptions": running.subscriptions,
        "router": running.routers[0],
        "sender": running.senders[0],
        "failures": running.failures_process,
    }[stem]
    assert serving is not None
    return serving


@dataclass(frozen=True)
class BadInput:
    name: str
    body: bytes


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _leaves(
    descriptor: Descriptor, path: tuple[FieldDescriptor, ...] = ()
) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Paths to every field (a Timestamp, a map and a list are leaves), DEPTH levels deep."""
    for field in descriptor.fields:
        here = (*path, field)
        yield here
        nested = field.message_type
        if (
            nested is not None
            and not _is_map(field)
            and nested.full_name != "google.protobuf.Timestamp"
            and len(here) < DEPTH
            and nested not in [f.containing_type for f in path]
        ):
            yield from _leaves(nested, here)


def _parent(message: Message, path: tuple[FieldDescriptor, ...]) -> Message:
    """The message holding the last field of ``path`` (each one on the way set/added)."""
    current = message
    for field in path[:-1]:
        value = getattr(current, field.name)
        current = value.add() if _is_repeated(field) else value
    return current


def _scalar(field: FieldDescriptor) -> Any:
    return {
        FieldDescriptor.CPPTYPE_STRING: b"x" if field.type == FieldDescriptor.TYPE_BYTES else "x",
        FieldDescriptor.CPPTYPE_BOOL: True,
        FieldDescriptor.CPPTYPE_DOUBLE: 1.0,
        FieldDescriptor.CPPTYPE_FLOAT: 1.0,
    }.get(field.cpp_type, 1)


def _values(field: FieldDescriptor) -> Iterator[tuple[str, Any]]:
    """(name, value) of each bad value of one non-message field."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            yield "oversize bytes", b"a" * OVERSIZE_BYTES
        else:
            yield "oversize string", "a" * OVERSIZE_TEXT
            yield "invalid UTF-8", MARKER.decode()
    elif field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        yield "unknown enum number", 99_999
        yield "negative enum number", -5
    elif field.cpp_type in INTEGERS:
        for number in INTEGERS[field.cpp_type]:
            yield f"integer {number}", number


def _build(request_type: type[Message], path: tuple[FieldDescriptor, ...], apply: Any) -> bytes:
    message = request_type()
    apply(_parent(message, path), path[-1])
    return message.SerializeToString().replace(MARKER, INVALID_UTF8)


def bad_inputs(descriptor: Descriptor) -> Iterator[BadInput]:
    request_type = GetMessageClass(descriptor)
    yield BadInput("empty", b"")
    yield BadInput("undecodable", b"\xff\xff\xff\xff\xff")
    yield BadInput("truncated", b"\x0a\x40abc")
    for path in _leaves(descriptor):
        field = path[-1]
        where = ".".join(f.name for f in path)

        if _is_map(field):
            value_type = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]

            def fill_map(parent: Message, leaf: FieldDescriptor, value: Any = value_type) -> None:
                entries = getattr(parent, leaf.name)
                for index in range(OVERSIZE_LIST):
                    if value.message_type is None:
                        entries[f"k{index}"] = _scalar(value)
                    else:
                        entries[f"k{index}"].SetInParent()

            yield BadInput(f"{where}: oversize map", _build(request_type, path, fill_map))
            continue
        if _is_repeated(field):

            def fill_list(parent: Message, leaf: FieldDescriptor) -> None:
                items = getattr(parent, leaf.name)
                for _ in range(OVERSIZE_LIST):
                    if leaf.message_type is None:
                        items.append(_scalar(leaf))
                    else:
                        items.add()

            yield BadInput(f"{where}: oversize list", _build(request_type, path, fill_list))
        if field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                for name, stamp in TIMESTAMPS.items():

                    def set_stamp(
                        parent: Message, leaf: FieldDescriptor, stamp: Any = stamp
                    ) -> None:
                        target = getattr(parent, leaf.name)
                        (target.add() if _is_repeated(leaf) else target).CopyFrom(stamp)

                    yield BadInput(f"{where}: {name}", _build(request_type, path, set_stamp))
            continue
        for name, value in _values(field):

            def set_value(parent: Message, leaf: FieldDescriptor, value: Any = value) -> None:
                if _is_repeated(leaf):
                    getattr(parent, leaf.name).append(value)
                else:
                    setattr(parent, leaf.name, value)

            yield BadInput(f"{where}: {name}", _build(request_type, path, set_value))


@dataclass(frozen=True)
class Outcome:
    method: MethodDescriptor
    case: str
    code: grpc.StatusCode
    details: str
    response: bytes  # of a unary call that succeeded

    @property
    def name(self) -> str:
        return f"{self.method.full_name} [{self.case}]"


async def call_raw(
    channel: grpc.aio.Channel, method: MethodDescriptor, body: bytes, tenant: str
) -> tuple[grpc.StatusCode, str, bytes]:
    """The status (and a unary answer) of calling ``method`` with ``body`` as it is."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    response = b""
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path)(  # type: ignore[call-arg]
                body, metadata=platform(tenant), timeout=RPC_TIMEOUT
            )
            async for _ in stream:
                pass
        else:
            call = channel.unary_unary(path)  # type: ignore[call-arg]
            response = await call(body, metadata=platform(tenant), timeout=RPC_TIMEOUT)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or "", b""
    return grpc.StatusCode.OK, "", response


@dataclass
class Sweep:
    outcomes: list[Outcome]
    alarms: list[str]  # traceback lines the services logged meanwhile


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path_factory.mktemp("sweep")) as running:
        yield running


@pytest.fixture(scope="module")
async def sweep(stack: Platform) -> Sweep:
    """Every bad input to every RPC, once for the module's tests."""
    tenant = new_tenant("sweep")
    offsets = log_offsets(stack)
    limit = asyncio.Semaphore(CONCURRENCY)
    outcomes: list[Outcome] = []

    async def one(method: MethodDescriptor, case: BadInput) -> None:
        channel = process_of(stack, method).channel
        assert channel is not None
        async with limit:
            code, details, response = await call_raw(channel, method, case.body, tenant)
        outcomes.append(Outcome(method, case.name, code, details, response))

    await asyncio.gather(
        *(one(method, case) for method in rpc_methods() for case in bad_inputs(method.input_type))
    )
    return Sweep(outcomes, alarms_since(stack, offsets))


def log_offsets(running: Platform) -> dict[str, int]:
    return {str(p.log_path): len(p.log_text()) for p in running.processes}


def alarms_since(running: Platform, offsets: dict[str, int]) -> list[str]:
    """Lines of the services' logs, written since ``offsets``, that show a traceback."""
    found = []
    for process in running.processes:
        text = process.log_text()[offsets.get(str(process.log_path), 0) :]
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if any(alarm in line for alarm in LOG_ALARMS):
                found.append(f"{process.log_path.name}: " + " | ".join(lines[index : index + 8]))
    return found


def report(outcomes: list[Outcome]) -> str:
    return "\n".join(f"{o.name}: {o.code.name} {o.details[:200]}" for o in outcomes)


def test_the_sweep_covers_every_service() -> None:
    services = {m.containing_service.full_name for m in rpc_methods()}
    assert {
        "webhooks.v1.SubscriptionService",  # client certificates too
        "webhooks.v1.RouterService",
        "webhooks.v1.SenderService",
        "webhooks.v1.FailuresService",
    } <= services
    listing = failures_pb2.ListFailedEventsRequest.DESCRIPTOR
    cases = [case.name for case in bad_inputs(listing)]  # type: ignore[arg-type]
    assert "filter.since: far future" in cases
    assert "filter.subscription_ids: invalid UTF-8" in cases
    assert "filter.states: unknown enum number" in cases
    methods = {m.name for m in rpc_methods()}
    assert {"UploadCertificate", "PublishEvents", "SendTestEvent", "RebuildReadModel"} <= methods


def test_no_bad_input_reaches_a_caller_as_unknown(sweep: Sweep) -> None:
    wrong = [o for o in sweep.outcomes if o.code in FORBIDDEN]
    assert not wrong, (
        f"{len(wrong)} of {len(sweep.outcomes)} calls answered wrongly:\n{report(wrong)}"
    )


def test_no_bad_input_leaves_a_traceback_in_a_log(sweep: Sweep) -> None:
    assert not sweep.alarms, "tracebacks in the services' logs:\n" + "\n".join(sweep.alarms[:10])


def test_a_body_that_does_not_decode_is_invalid_argument(sweep: Sweep) -> None:
    """Garbage, a truncated message and invalid UTF-8 in any string field (which protobuf
    refuses while parsing): INVALID_ARGUMENT ``request: not a valid <Message>``."""
    undecodable = [
        o
        for o in sweep.outcomes
        if o.case in ("undecodable", "truncated") or o.case.endswith("invalid UTF-8")
    ]
    assert undecodable
    wrong = [
        o
        for o in undecodable
        if o.code != grpc.StatusCode.INVALID_ARGUMENT
        or not o.details.startswith("request: not a valid")
    ]
    assert not wrong, report(wrong)


def _accepted(outcome: Outcome) -> bool:
    """Whether the service took the request: OK, and for PublishEvents an event accepted."""
    if outcome.code != grpc.StatusCode.OK:
        return False
    if outcome.method.name == "PublishEvents":
        results = router_pb2.PublishEventsResponse.FromString(outcome.response).results
        return any(r.status != router_pb2.PUBLISH_STATUS_REJECTED for r in results)
    return True


def test_no_oversize_value_is_accepted(sweep: Sweep) -> None:
    """Every string, bytes field, list and map has a bound: over it, the call is refused
    (PublishEvents refuses the event); a lookup by an oversize id may say NOT_FOUND."""
    oversize = [o for o in sweep.outcomes if ": oversize " in o.case]
    assert oversize
    wrong = [o for o in oversize if _accepted(o)]
    assert not wrong, f"{len(wrong)} oversize values accepted:\n{report(wrong)}"


def _stamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@pytest.mark.parametrize("seconds", [2**62, -(2**62), 253_402_300_800, -62_135_596_801])
async def test_out_of_range_timestamps_name_their_field(stack: Platform, seconds: int) -> None:
    """The timestamps of ListFailedEvents, RedeliverFailedEvents and ReplayEvents: an
    INVALID_ARGUMENT naming the field, for values just past the representable range too."""
    tenant = new_tenant("stamps")
    now = _stamp(1_700_000_000)
    calls: list[tuple[str, Any]] = [
        (
            "filter.since",
            stack.failures.ListFailedEvents(
                failures_pb2.ListFailedEventsRequest(
                    filter=failures_pb2.FailedEventFilter(since=_stamp(seconds))
                ),
                metadata=platform(tenant),
                timeout=RPC_TIMEOUT,
            ),
        ),
        (
            "filter.until",
            stack.failures.RedeliverFailedEvents(
                failures_pb2.RedeliverFailedEventsRequest(
                    filter=failures_pb2.FailedEventFilter(until=_stamp(seconds)), dry_run=True
                ),
                metadata=platform(tenant),
                timeout=RPC_TIMEOUT,
            ),
        ),
        (
            "since",
            _drain(
                stack.router.ReplayEvents(
                    router_pb2.ReplayEventsRequest(
                        subscription_id="s", since=_stamp(seconds), until=now
                    ),
                    metadata=platform(tenant),
                    timeout=RPC_TIMEOUT,
                )
            ),
        ),
    ]
    for field, call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = caught.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error.details())
        assert field_violations(error)[0][0] == field
        assert (error.details() or "").startswith(f"{field}: ")


async def test_a_replay_of_the_widest_window_is_refused_by_retention(stack: Platform) -> None:
    """since 0001-01-01 and until 9999-12-31 are valid timestamps: the answer is the
    deliberate FAILED_PRECONDITION on since (EVENTS keeps at most a year), not an overflow."""
    tenant = new_tenant("widest")
    created = await stack.create_subscription(tenant, rest("widest", "https://example.com/h"))
    request = router_pb2.ReplayEventsRequest(
        subscription_id=created.subscription.id,
        since=_stamp(-62_135_596_800),
        until=_stamp(253_402_300_799),
        dry_run=True,
    )

    async def attempt() -> grpc.aio.AioRpcError | None:
        try:
            await _drain(
                stack.router.ReplayEvents(request, metadata=platform(tenant), timeout=RPC_TIMEOUT)
            )
        except grpc.aio.AioRpcError as error:
            return error
        return None

    # NOT_FOUND until the router's table has seen the new subscription.
    error = await eventually(
        attempt,
        lambda got: got is None or got.code() != grpc.StatusCode.NOT_FOUND,
        what="the replay",
    )
    assert error is not None
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    assert [field for field, _ in field_violations(error)] == ["since"]


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_publish_events_while_the_broker_is_away_is_unavailable(tmp_path: Path) -> None:
    """A client that retries on UNAVAILABLE (the README's promise) keeps the events."""
    async with running_platform(tmp_path, senders=0, failures=False) as running:
        tenant = new_tenant("away")
        assert running.nats is not None
        await asyncio.to_thread(running.nats.stop)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await running.router.PublishEvents(
                    router_pb2.PublishEventsRequest(
                        events=[platform_event(tenant, "User", "OnNew")]
                    ),
                    metadata=platform(tenant),
                    timeout=RPC_TIMEOUT,
                )
            error = caught.value
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            assert "retry" in (error.details() or ""), error.details()
            assert "Traceback" not in running.routers[0].log_text()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(running.nats.start)
