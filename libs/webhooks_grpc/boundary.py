"""The last line between a caller's bytes and a handler: every error gets a deliberate status.

grpc.aio answers UNKNOWN, with the Python exception's name and a server-side traceback,
both for a request body that does not decode (garbage, or invalid UTF-8 in a string
field: the deserializer raises before any handler or interceptor runs) and for any
exception a handler did not expect. ``BoundaryInterceptor`` wraps every handler so that:

- an undecodable body is INVALID_ARGUMENT ``request: not a valid <Message>`` (the
  deserializer returns a marker instead of raising; the handler is never called);
- an ``InvalidField`` a handler lets through is INVALID_ARGUMENT naming its field;
- a NATS error a handler lets through is UNAVAILABLE: the broker is away or did not answer,
  and asking again later may well work;
- NotImplementedError (a generated servicer's stub) is UNIMPLEMENTED;
- anything else is INTERNAL, logged once with the method and its traceback, never UNKNOWN.

The first two are logged at most once per (method, kind) and minute, with how many calls
were not (``LogEvery``): a flood of garbage calls, or every call while the broker is
away, must not flood the log.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
import nats.errors
import nats.js.errors
from google.protobuf import timestamp_pb2

from webhooks_catalogue.limits import TIMESTAMP_MAX_SECONDS, TIMESTAMP_MIN_SECONDS
from webhooks_grpc.errors import abort
from webhooks_telemetry.logs import LogEvery

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
Behaviour = Callable[..., Any]

BROKER_ERRORS = (nats.errors.Error, nats.js.errors.Error)


class InvalidField(ValueError):
    """A request field that cannot be used; ``field`` is its path (``filter.since``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def to_datetime(value: timestamp_pb2.Timestamp, field: str) -> datetime:
    """The aware (UTC) datetime of a request's Timestamp, or InvalidField when out of range.

    ``Timestamp.ToDatetime`` raises a bare ValueError (or OverflowError) for a value outside
    the documented range, which would reach the caller as UNKNOWN.
    """
    if not 0 <= value.nanos <= 999_999_999:
        raise InvalidField(field, f"nanos must be between 0 and 999999999, got {value.nanos}")
    if not TIMESTAMP_MIN_SECONDS <= value.seconds <= TIMESTAMP_MAX_SECONDS:
        raise InvalidField(
            field,
            "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z "
            f"(seconds {TIMESTAMP_MIN_SECONDS} to {TIMESTAMP_MAX_SECONDS}), "
            f"got seconds {value.seconds}",
        )
    return value.ToDatetime(tzinfo=UTC)


class Undecodable:
    """What the wrapped deserializer returns for a body that is not a valid message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _deserializer(
    deserialize: Callable[[bytes], Any] | None, message: str
) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def guarded(body: bytes) -> Any:
        try:
            return deserialize(body)
        except Exception:  # DecodeError, bad UTF-8, whatever the parser raises
            return Undecodable(message)

    return guarded


def _message_name(deserialize: Callable[[bytes], Any] | None) -> str:
    # Generated handlers pass ``<Message>.FromString``: its class names the message.
    owner = getattr(deserialize, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "name", "") or "request message")


async def _refuse_undecodable(
    method: str, request: Undecodable, context: Context, log_every: LogEvery
) -> None:
    held = log_every.due((method, "undecodable"))
    if held is not None:
        log.info(
            "refused %s: the request is not a valid %s; %d more such calls since the last line",
            method,
            request.message,
            held,
        )
    await abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"not a valid {request.message} (the body does not decode)",
        "request",
    )


async def _answer(method: str, error: Exception, context: Context, log_every: LogEvery) -> None:
    """The deliberate status for an exception a handler let through."""
    if isinstance(error, InvalidField):
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, error.message, error.field)
    if isinstance(error, BROKER_ERRORS):
        held = log_every.due((method, "broker"))
        if held is not None:
            log.warning(
                "%s: the broker did not answer: %s; %d more such calls since the last line",
                method,
                type(error).__name__,
                held,
            )
        await abort(
            context,
            grpc.StatusCode.UNAVAILABLE,
            f"the message broker is unavailable ({type(error).__name__}); retry later",
        )
    if isinstance(error, NotImplementedError):  # what a generated servicer's stub raises
        await abort(context, grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
    log.error("unexpected %s in %s", type(error).__name__, method, exc_info=error)
    await abort(context, grpc.StatusCode.INTERNAL, "internal error; see the service's log")


async def _checked(
    method: str, requests: AsyncIterator[Any], context: Context, log_every: LogEvery
) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Undecodable):
            await _refuse_undecodable(method, request, context, log_every)
        yield request


def _guard(
    method: str,
    behaviour: Behaviour,
    request_streaming: bool,
    streaming: bool,
    log_every: LogEvery,
) -> Any:
    async def prepared(request: Any, context: Context) -> Any:
        if request_streaming:
            return _checked(method, request, context, log_every)
        if isinstance(request, Undecodable):
            await _refuse_undecodable(method, request, context, log_every)
        return request

    if streaming and inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            request = await prepared(request, context)
            try:
                async for response in behaviour(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await _answer(method, error, context, log_every)

        return stream

    async def unary(request: Any, context: Context) -> Any:
        request = await prepared(request, context)
        try:
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _answer(method, error, context, log_every)

    return unary


_KINDS: dict[tuple[bool, bool], tuple[str, Callable[..., grpc.RpcMethodHandler[Any, Any]]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


class BoundaryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Innermost interceptor: sees every handler (health and reflection included) first,
    and its deserializer is the one grpc uses (outer interceptors copy it)."""

    def __init__(self, log_every: LogEvery | None = None) -> None:
        # The server's rate limit of refusal lines, by (method, kind): the methods are the
        # registered ones (grpc answers UNIMPLEMENTED to others before this runs).
        self._log_every = log_every if log_every is not None else LogEvery()
        # The guarded handler of each method, made once: grpc hands the innermost
        # interceptor the same registered handler on every call of a method, and making
        # the wrapper per call would cost every RPC (PublishEvents' hot path included).
        self._guarded: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        known = self._guarded.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        guarded = self._guard(method, handler)
        # Bounded: only registered methods get here (grpc answers others UNIMPLEMENTED).
        self._guarded[method] = (handler, guarded)
        return guarded

    def _guard(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        request_streaming = handler.request_streaming
        attribute, factory = _KINDS[(request_streaming, handler.response_streaming)]
        deserialize = handler.request_deserializer
        return factory(
            _guard(
                method,
                getattr(handler, attribute),
                request_streaming,
                handler.response_streaming,
                self._log_every,
            ),
            request_deserializer=_deserializer(deserialize, _message_name(deserialize)),
            response_serializer=handler.response_serializer,
        )
