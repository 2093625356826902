"""What an attempt's response means: its failure class, message, the wait a 429, 502, 503
or 504 asked for and whether a retry is pointless (410 Gone). Pure: no HTTP client, no broker;
the deliverer hands in the status, the headers and the SOAP Fault it read.

- a SOAP Fault in the body fails the attempt (``soap_fault``) whatever the status;
- 2xx succeeds; any other status fails it (``http_status``): a 3xx says where it pointed
  (redirects are never followed), a 429, 502, 503 or 504 keeps its ``Retry-After`` (seconds or an
  HTTP date), a 410 ends the delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from webhooks.v1 import messages_pb2
from webhooks_health import THROTTLING_STATUSES
from webhooks_secrets import shown_url
from webhooks_sender.soap_faults import SoapFault

__all__ = [
    "NO_FAILURE",
    "SUCCEEDED",
    "Outcome",
    "response_outcome",
    "retry_after_seconds",
    "shown_url",
]

FC = messages_pb2.FailureClass
# Read once: attribute access on a protobuf enum wrapper goes through a Python __getattr__,
# and ``succeeded`` is asked several times per delivery.
NO_FAILURE = FC.FAILURE_CLASS_UNSPECIFIED
MAX_MESSAGE = 1024  # characters of a SOAP Fault's message kept


@dataclass(frozen=True, slots=True)
class Outcome:
    failure_class: int  # NO_FAILURE when the attempt succeeded
    message: str = ""
    retry_after: float | None = None  # seconds a throttling status asked to wait
    final: bool = False  # a retry is pointless


SUCCEEDED = Outcome(NO_FAILURE)  # one object for every success: nothing made per delivery


def response_outcome(
    status: int, headers: Mapping[str, str], fault: SoapFault | None, now: datetime
) -> Outcome:
    """The outcome of a response of ``status`` with ``headers`` (``now``: when the attempt
    started, for a ``Retry-After`` date) and ``fault``, the SOAP Fault in its body."""
    if fault is not None:
        return Outcome(
            FC.FAILURE_CLASS_SOAP_FAULT, f"SOAP Fault {fault.code}: {fault.string}"[:MAX_MESSAGE]
        )
    if 200 <= status < 300:
        return SUCCEEDED
    message = f"HTTP {status}"
    if 300 <= status < 400:
        location = headers.get("Location", "")
        message += f": redirect to {shown_url(location) if location else '(none)'} not followed"
    retry_after = None
    if status in THROTTLING_STATUSES:
        retry_after = retry_after_seconds(headers.get("Retry-After"), now)
    return Outcome(FC.FAILURE_CLASS_HTTP_STATUS, message, retry_after, status == 410)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
