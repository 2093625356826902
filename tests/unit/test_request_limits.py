"""Bounds on PublishEvents, ReplayEvents, SendTestEvent and the failed-events filters: each
at and past its bound, the refusal naming the field and the bound without quoting the value;
and the .proto comments state the numbers of webhooks_catalogue.limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhooks.v1 import failures_pb2, messages_pb2
from webhooks_catalogue import limits
from webhooks_catalogue.samples import sample_event
from webhooks_failures.filters import InvalidRequest, filter_of
from webhooks_router.validation import InvalidEvent, validate_event

NOW = 1_714_651_200.0  # 2024-05-02T12:00:00Z
KIB = 1024


def whatsapp(**fields: str) -> messages_pb2.PlatformEvent:
    event = sample_event("WhatsApp", "OnMessageStatus")
    for name, value in fields.items():
        setattr(event, name, value)
    return event


def refusal(event: messages_pb2.PlatformEvent) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event, now=NOW)
    return caught.value


@pytest.mark.parametrize(
    ("field", "bound"),
    [
        ("entity", limits.CATALOGUE_NAME_LENGTH),
        ("trigger", limits.CATALOGUE_NAME_LENGTH),
        ("event_id", limits.EVENT_ID_LENGTH),
        ("whatsapp_status", limits.WHATSAPP_STATUS_LENGTH),
        ("whatsapp_channel", limits.WHATSAPP_CHANNEL_ID_LENGTH),
    ],
)
def test_event_strings_past_their_bound_name_field_and_bound(field: str, bound: int) -> None:
    error = refusal(whatsapp(**{field: "a" * 100_000}))
    assert error.field == field
    assert str(bound) in error.reason
    assert len(error.reason) < 200  # never the value quoted back


def test_event_subchannel_bound() -> None:
    event = sample_event("Object", "OnNew")
    event.subchannel = "s" * limits.SUBCHANNEL_LENGTH
    validate_event(event, now=NOW)
    event.subchannel += "s"
    error = refusal(event)
    assert (error.field, str(limits.SUBCHANNEL_LENGTH) in error.reason) == ("subchannel", True)


def test_event_data_bound() -> None:
    event = sample_event("Object", "OnNew")
    padding = limits.EVENT_DATA_BYTES - len(b'{"x":""}')
    event.data_json = b'{"x":"' + b"a" * padding + b'"}'
    validate_event(event, now=NOW)
    event.data_json = b'{"x":"' + b"a" * (padding + 1) + b'"}'
    error = refusal(event)
    assert error.field == "data_json"
    assert str(limits.EVENT_DATA_BYTES) in error.reason


def test_an_invalid_tenant_is_quoted_short() -> None:
    error = refusal(whatsapp(tenant="#" * 100_000))
    assert error.field == "tenant"
    assert len(error.reason) < 200


def filter_refusal(request: failures_pb2.FailedEventFilter) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        filter_of(request)
    return caught.value


@pytest.mark.parametrize(
    ("build", "field", "bound"),
    [
        (
            lambda n: failures_pb2.FailedEventFilter(subscription_ids=["s"] * n),
            "filter.subscription_ids",
            limits.FILTER_SUBSCRIPTION_IDS,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(subscription_ids=["s" * n]),
            "filter.subscription_ids",
            limits.ID_LENGTH,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(error_codes=["500"] * n),
            "filter.error_codes",
            limits.FILTER_ERROR_CODES,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(error_codes=["5" * n]),
            "filter.error_codes",
            limits.ERROR_CODE_LENGTH,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(
                states=[failures_pb2.FAILED_EVENT_STATE_FAILED] * n
            ),
            "filter.states",
            limits.FILTER_STATES,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(entity="O" * n),
            "filter.entity",
            limits.CATALOGUE_NAME_LENGTH,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(trigger="O" * n),
            "filter.trigger",
            limits.CATALOGUE_NAME_LENGTH,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(subchannel="s" * n),
            "filter.subchannel",
            limits.FILTER_TEXT_LENGTH,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(message_contains="m" * n),
            "filter.message_contains",
            limits.FILTER_TEXT_LENGTH,
        ),
        (
            lambda n: failures_pb2.FailedEventFilter(min_retry_attempts=n),
            "filter.min_retry_attempts",
            limits.FILTER_RETRY_ATTEMPTS,
        ),
    ],
)
def test_filter_bounds(build: object, field: str, bound: int) -> None:
    """At the bound a filter is taken (or refused for another reason than its size); one
    past it, refused naming the field and the bound, the value not quoted."""
    assert callable(build)
    try:
        filter_of(build(bound))
    except InvalidRequest as at_bound:
        assert str(bound) not in at_bound.message or at_bound.field != field
    error = filter_refusal(build(bound + 1))
    assert error.field == field
    assert str(bound) in error.message
    assert len(error.message) < 300


# --- the contracts say the same numbers ---------------------------------------------------

PROTOS = Path(__file__).resolve().parents[2] / "protos" / "webhooks" / "v1"
# (file, the field's declaration, the bound its comment must state)
DOCUMENTED: list[tuple[str, str, str]] = [
    ("messages.proto", "string event_id = 1;", f"at most {limits.EVENT_ID_LENGTH}"),
    ("messages.proto", "string subchannel = 7;", f"at most {limits.SUBCHANNEL_LENGTH}"),
    (
        "messages.proto",
        "bytes data_json = 12;",
        f"at most {limits.EVENT_DATA_BYTES // KIB} KiB",
    ),
    ("router.proto", "repeated PlatformEvent events = 1;", "WEBHOOKS_ROUTER_MAX_BATCH"),
    (
        "common.proto",
        "int32 rate_limit_per_second = 5;",
        f"At most {limits.RATE_LIMIT_PER_SECOND:,}",
    ),
    ("router.proto", "string subscription_id = 1;", f"at most {limits.ID_LENGTH}"),
    ("router.proto", "google.protobuf.Timestamp since = 2;", "0001-01-01"),
    ("sender.proto", "string subscription_id = 1;", f"at most {limits.ID_LENGTH}"),
    ("sender.proto", "string trigger = 2;", f"at most {limits.CATALOGUE_NAME_LENGTH}"),
    ("sender.proto", "bytes data_json = 3;", f"at most {limits.EVENT_DATA_BYTES // KIB} KiB"),
    (
        "failures.proto",
        "repeated string subscription_ids = 1;",
        f"at most {limits.FILTER_SUBSCRIPTION_IDS}",
    ),
    ("failures.proto", "string entity = 2;", f"at most {limits.CATALOGUE_NAME_LENGTH}"),
    ("failures.proto", "string trigger = 3;", f"at most {limits.CATALOGUE_NAME_LENGTH}"),
    ("failures.proto", "string subchannel = 5;", f"at most {limits.FILTER_TEXT_LENGTH}"),
    (
        "failures.proto",
        "repeated string error_codes = 6;",
        f"at most {limits.FILTER_ERROR_CODES}",
    ),
    ("failures.proto", "repeated FailedEventState states = 7;", f"at most {limits.FILTER_STATES}"),
    ("failures.proto", "google.protobuf.Timestamp since = 8;", "0001-01-01"),
    ("failures.proto", "string message_contains = 10;", f"at most {limits.FILTER_TEXT_LENGTH}"),
    ("failures.proto", "optional int32 min_retry_attempts = 11;", "1,000,000"),
    ("failures.proto", "int32 page_size = 2;", f"at most {limits.FAILED_EVENTS_PAGE_SIZE}"),
    ("failures.proto", "string page_token = 3;", f"at most {limits.PAGE_TOKEN_LENGTH}"),
    ("failures.proto", "string delivery_id = 1;  // required", f"at most {limits.ID_LENGTH}"),
]


@pytest.mark.parametrize(("file", "declaration", "bound"), DOCUMENTED)
def test_each_bound_is_documented_on_its_field(file: str, declaration: str, bound: str) -> None:
    lines = (PROTOS / file).read_text().splitlines()
    at = [i for i, line in enumerate(lines) if line.strip().startswith(declaration)]
    assert at, f"{declaration!r} not found in {file}"
    # The comment is on the declaration's line or on the comment lines just above it.
    i = at[0]
    comment = [lines[i]]
    while i > 0 and lines[i - 1].strip().startswith("//"):
        i -= 1
        comment.insert(0, lines[i])
    assert bound in " ".join(line.strip() for line in comment), (file, declaration)
