"""Error statuses: rich INVALID_ARGUMENT (and others) on the server, one clear line on the client.

A rejected field travels twice: as a ``google.rpc.BadRequest`` detail for clients that read
rich statuses, and at the start of the message for every other client. Several rejected
fields travel as one BadRequest with a violation each; the message names the first and
says how many more there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

_DETAILS_KEY = "grpc-status-details-bin"


def status_message(message: str, field: str | None) -> str:
    if field and not message.startswith(f"{field}:"):
        return f"{field}: {message}"
    return message


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    message: str,
    field: str | None = None,
) -> NoReturn:
    """End the RPC with ``code``; ``field`` (a path like ``webhook.url``) names the culprit."""
    if field:
        await abort_fields(context, code, [(field, message)])
    await _abort(context, code, message, [])


async def abort_fields(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    violations: Sequence[tuple[str, str]],
) -> NoReturn:
    """End the RPC with ``code`` and a BadRequest of every (field, description), in order.

    The message is the first violation, as ``abort`` words it, and how many more follow.
    """
    if not violations:
        raise ValueError("abort_fields needs at least one violation")
    field, message = violations[0]
    text = status_message(message, field)
    if len(violations) > 1:
        more = len(violations) - 1
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    await _abort(context, code, text, violations)


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    text: str,
    violations: Sequence[tuple[str, str]],
) -> NoReturn:
    status = status_pb2.Status(code=code.value[0], message=text)
    if violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
                for field, message in violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    rich = rpc_status.to_status(status)
    # context.abort with the status trailer, rather than abort_with_status, so that the
    # tracing interceptor's context wrapper sees the code and marks the span.
    await context.abort(rich.code, rich.details, rich.trailing_metadata)
    raise AssertionError("context.abort returned")  # it always raises


def _rich_status(err: grpc.RpcError) -> status_pb2.Status | None:
    trailing = getattr(err, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a garbled trailer must not hide the error itself
                return None
    return None


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """(field, description) of every BadRequest violation in the error's details."""
    status = _rich_status(err)
    found: list[tuple[str, str]] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def describe_rpc_error(err: grpc.aio.AioRpcError | grpc.RpcError) -> str:
    """One line for a person: ``CODE: message`` plus fields the message does not name."""
    code_of = getattr(err, "code", None)
    details_of = getattr(err, "details", None)
    code = code_of() if callable(code_of) else None
    details = (details_of() if callable(details_of) else None) or str(err)
    line = f"{code.name if code else 'UNKNOWN'}: {details}"
    missing = [f for f, _ in field_violations(err) if f and f not in details]
    if missing:
        line += f" (field: {', '.join(missing)})"
    return line
