"""The one exception a command raises to stop with a message and an exit code, and the
text of a failed call.

The top level (``main``) prints it on stderr, one line, or one line per field when the
service refused several fields at once; nothing below it prints errors.
"""

from __future__ import annotations

from typing import Any

EXIT_FAILURE = 1  # the service refused or failed the request
EXIT_USAGE = 2  # the command line cannot be used (argparse uses 2 as well)


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def data_size_problem(size: int) -> str:
    """Why an event's data of ``size`` bytes cannot be sent (webhooks_catalogue.limits)."""
    from webhooks_catalogue.limits import EVENT_DATA_BYTES

    return (
        f"data is {size:,} bytes; an event's data may be at most "
        f"{EVENT_DATA_BYTES:,} bytes ({EVENT_DATA_BYTES // 1024} KiB); nothing was sent"
    )


def field_violations(err: Any) -> list[tuple[str, str]]:
    """(field, description) of every BadRequest violation in a failed call's status."""
    from google.rpc import error_details_pb2  # type: ignore[import-untyped]
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(err)
    except (ValueError, AttributeError):  # a garbled trailer must not hide the error
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def rpc_error_text(err: Any) -> str:
    """``CODE: message`` and the field it names; a refusal of several fields: a line
    naming how many, then ``field: what is wrong`` on a line each."""
    code_of = getattr(err, "code", None)
    details_of = getattr(err, "details", None)
    code = code_of() if callable(code_of) else None
    details = (details_of() if callable(details_of) else None) or str(err)
    name = code.name if code is not None else "UNKNOWN"
    violations = field_violations(err)
    if len(violations) > 1:
        lines = [f"{name}: {len(violations)} fields to correct:"]
        lines += [
            f"  {field}: {description}" if field else f"  {description}"
            for field, description in violations
        ]
        return "\n".join(lines)
    line = f"{name}: {details}"
    missing = [field for field, _ in violations if field and field not in details]
    if missing:
        line += f" (field: {', '.join(missing)})"
    return line
