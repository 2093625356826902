"""Validation of platform events: every rule both ways, with the field it names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import webhooks_catalogue as catalogue
from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue.limits import EVENT_DATA_DEPTH
from webhooks_catalogue.samples import sample_data, sample_event
from webhooks_router.validation import (
    MAX_DATA_BYTES,
    MAX_EVENT_ID,
    InvalidEvent,
    event_subject,
    validate_event,
)

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC).timestamp()
ALL_TRIGGERS = [(e.name, t.name) for e in catalogue.ENTITIES for t in e.triggers]


def event(
    of_entity: str = "Object", of_trigger: str = "OnNew", /, **fields: Any
) -> messages_pb2.PlatformEvent:
    """A valid sample event of the trigger with ``fields`` set on top (None clears one)."""
    built = sample_event(of_entity, of_trigger)
    for name, value in fields.items():
        if value is None:
            built.ClearField(name)
        elif isinstance(value, common_pb2.StatusChange):
            getattr(built, name).CopyFrom(value)
        else:
            setattr(built, name, value)
    return built


def rejected(built: messages_pb2.PlatformEvent, subject: str | None = None) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(built, subject=subject, now=NOW)
    return caught.value


def at(*when: int) -> messages_pb2.PlatformEvent:
    """A valid event that occurred at ``when`` (year, month, day[, hour, ...]) UTC."""
    built = event()
    built.occurred_at.FromDatetime(datetime(*when).replace(tzinfo=UTC))  # type: ignore[arg-type]
    return built


# --- every trigger of the catalogue ---------------------------------------------------------


@pytest.mark.parametrize(("entity", "trigger"), ALL_TRIGGERS)
def test_every_trigger_has_a_valid_sample(entity: str, trigger: str) -> None:
    built = sample_event(entity, trigger)
    assert validate_event(built, now=NOW) == sample_data(entity, trigger)
    assert event_subject(built) == f"events.acme.{entity}.{trigger}"


def test_an_event_found_on_nats_must_be_on_its_own_subject() -> None:
    built = event()
    validate_event(built, subject="events.acme.Object.OnNew", now=NOW)
    for subject in ("events.other.Object.OnNew", "events.acme.Object.OnNewChild", "x"):
        error = rejected(built, subject=subject)
        assert error.field == "subject" and "events.acme.Object.OnNew" in error.reason


def test_the_error_message_is_field_colon_reason() -> None:
    error = rejected(event(tenant=None))
    assert (error.field, error.reason, str(error)) == (
        "tenant",
        "is required",
        "tenant: is required",
    )
    assert isinstance(error, ValueError)


# --- event id -------------------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["e", "x" * MAX_EVENT_ID, "ord-1042:evt/7~!", "a.b*c>"])
def test_event_ids_of_printable_ascii_are_accepted(event_id: str) -> None:
    validate_event(event(event_id=event_id), now=NOW)


@pytest.mark.parametrize(
    ("event_id", "reason"),
    [
        (None, "is required"),
        ("x" * (MAX_EVENT_ID + 1), "at most 128"),
        ("evt 1", "printable ASCII"),
        ("evt\t1", "printable ASCII"),
        ("evt\r\nNats-Msg-Id: x", "printable ASCII"),
        ("évt-1", "printable ASCII"),
        ("evt\x7f", "printable ASCII"),
    ],
)
def test_bad_event_ids_are_refused(event_id: str | None, reason: str) -> None:
    error = rejected(event(event_id=event_id))
    assert error.field == "event_id" and reason in error.reason


# --- tenant, entity, trigger ----------------------------------------------------------------


@pytest.mark.parametrize("tenant", [None, "acme.eu", "acme*", "-acme", "a" * 65, "ac me"])
def test_bad_tenants_are_refused(tenant: str | None) -> None:
    assert rejected(event(tenant=tenant)).field == "tenant"


def test_a_tenant_with_dashes_and_underscores_is_accepted() -> None:
    validate_event(event(tenant="acme_eu-2"), now=NOW)


@pytest.mark.parametrize("entity", [None, "Customer", "object", "OBJECT", "Object.x"])
def test_unknown_entities_are_refused_naming_the_valid_ones(entity: str | None) -> None:
    error = rejected(event(entity=entity))
    assert error.field == "entity"
    if entity:
        assert "Object, User, Satisfaction, Tag, Form, Chat, WhatsApp" in error.reason


def test_a_wrongly_cased_entity_gets_a_hint() -> None:
    assert "'Object'" in rejected(event(entity="object")).reason


@pytest.mark.parametrize("trigger", [None, "OnSubmit", "onnew", "OnNew "])
def test_unknown_triggers_are_refused_naming_the_valid_ones(trigger: str | None) -> None:
    error = rejected(event(trigger=trigger))
    assert error.field == "trigger"
    if trigger:
        assert "OnNew, OnNewChild, OnNewActivity, OnUpdateTag" in error.reason


# --- occurred at ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when", [(2000, 1, 1), (2024, 5, 2, 12, 0), (2024, 5, 3, 11, 59), (2010, 6, 1, 0, 0, 1)]
)
def test_sensible_times_are_accepted(when: tuple[int, ...]) -> None:
    validate_event(at(*when), now=NOW)


@pytest.mark.parametrize(
    ("when", "reason"),
    [((1999, 12, 31, 23, 59, 59), "before 2000"), ((2024, 5, 3, 12, 0, 1), "in the future")],
)
def test_absurd_times_are_refused(when: tuple[int, ...], reason: str) -> None:
    error = rejected(at(*when))
    assert error.field == "occurred_at" and reason in error.reason


def test_occurred_at_is_required() -> None:
    assert rejected(event(occurred_at=None)).field == "occurred_at"


def test_a_timestamp_out_of_any_calendar_is_refused_not_crashing() -> None:
    built = event()
    built.occurred_at.seconds = 2**62
    assert rejected(built).field == "occurred_at"
    built.occurred_at.seconds, built.occurred_at.nanos = 1_714_555_200, -1
    assert rejected(built).field == "occurred_at"


def test_the_clock_defaults_to_now() -> None:
    built = event()
    built.occurred_at.GetCurrentTime()
    validate_event(built)


# --- channel and subchannel -----------------------------------------------------------------


@pytest.mark.parametrize(("entity", "trigger"), [("Object", "OnNew"), ("User", "OnUpdate")])
@pytest.mark.parametrize("channel", sorted(catalogue.CHANNELS))
def test_every_catalogue_channel_is_accepted_where_channels_exist(
    entity: str, trigger: str, channel: int
) -> None:
    validate_event(event(entity, trigger, channel=channel), now=NOW)


@pytest.mark.parametrize("channel", [-1, 18, 999])
def test_unknown_channels_are_refused(channel: int) -> None:
    error = rejected(event(channel=channel))
    assert error.field == "channel" and "0 Commbox" in error.reason


def test_channel_is_optional() -> None:
    validate_event(event(channel=None, subchannel=None), now=NOW)


@pytest.mark.parametrize(
    ("entity", "trigger"),
    [
        ("User", "OnUpdateTag"),
        ("Tag", "OnAdd"),
        ("Chat", "OnUserExit"),
        ("WhatsApp", "OnMessageStatus"),
    ],
)
def test_channel_and_subchannel_are_refused_where_the_trigger_has_no_channels(
    entity: str, trigger: str
) -> None:
    assert rejected(event(entity, trigger, channel=0)).field == "channel"
    assert rejected(event(entity, trigger, subchannel="1205")).field == "subchannel"


def test_subchannel_is_a_bounded_string() -> None:
    validate_event(event(subchannel="s" * 256), now=NOW)
    validate_event(event(subchannel="Support: ישראל"), now=NOW)
    assert rejected(event(subchannel="s" * 257)).field == "subchannel"
    assert rejected(event(subchannel="a\nb")).field == "subchannel"


# --- activity type and status change --------------------------------------------------------


@pytest.mark.parametrize("activity_type", sorted(set(catalogue.ACTIVITY_TYPES) - {2}))
def test_every_activity_type_is_accepted_on_new_activity(activity_type: int) -> None:
    built = event("Object", "OnNewActivity", activity_type=activity_type, status_change=None)
    validate_event(built, now=NOW)


@pytest.mark.parametrize(
    ("activity_type", "field"),
    [(None, "activity_type"), (0, "activity_type"), (24, "activity_type")],
)
def test_on_new_activity_requires_a_known_activity_type(
    activity_type: int | None, field: str
) -> None:
    assert rejected(event("Object", "OnNewActivity", activity_type=activity_type)).field == field


@pytest.mark.parametrize(
    ("entity", "trigger"), [("Object", "OnNew"), ("User", "OnNew"), ("Form", "OnSubmit")]
)
def test_activity_type_and_status_change_are_refused_elsewhere(entity: str, trigger: str) -> None:
    assert rejected(event(entity, trigger, activity_type=1)).field == "activity_type"
    change = common_pb2.StatusChange(to_status=2)
    assert rejected(event(entity, trigger, status_change=change)).field == "status_change"


@pytest.mark.parametrize("change", [(0, 2), (1, 2), (15, 1), (13, 14), (2, 2)])
def test_status_changes_of_known_statuses_are_accepted(change: tuple[int, int]) -> None:
    status = common_pb2.StatusChange(from_status=change[0], to_status=change[1])
    validate_event(event("Object", "OnNewActivity", status_change=status), now=NOW)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ((1, 0), "status_change.to_status"),
        ((1, 12), "status_change.to_status"),
        ((1, 16), "status_change.to_status"),
        ((12, 2), "status_change.from_status"),
        ((-1, 2), "status_change.from_status"),
    ],
)
def test_status_changes_of_unknown_statuses_are_refused(
    change: tuple[int, int], field: str
) -> None:
    status = common_pb2.StatusChange(from_status=change[0], to_status=change[1])
    assert rejected(event("Object", "OnNewActivity", status_change=status)).field == field


def test_status_change_is_required_for_activity_type_status_change_only() -> None:
    error = rejected(event("Object", "OnNewActivity", status_change=None))
    assert error.field == "status_change" and "required" in error.reason
    error = rejected(event("Object", "OnNewActivity", activity_type=1))
    assert error.field == "status_change" and "only allowed" in error.reason


# --- WhatsApp -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", catalogue.WHATSAPP_STATUSES)
def test_every_whatsapp_status_is_accepted(status: str) -> None:
    validate_event(event("WhatsApp", "OnMessageStatus", whatsapp_status=status), now=NOW)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"whatsapp_channel": None}, "whatsapp_channel"),
        ({"whatsapp_channel": "wa channel"}, "whatsapp_channel"),
        ({"whatsapp_channel": "w" * 129}, "whatsapp_channel"),
        ({"whatsapp_status": None}, "whatsapp_status"),
        ({"whatsapp_status": "Delivered"}, "whatsapp_status"),
        ({"whatsapp_status": "seen"}, "whatsapp_status"),
    ],
)
def test_whatsapp_needs_a_channel_and_a_known_status(fields: dict[str, Any], field: str) -> None:
    assert rejected(event("WhatsApp", "OnMessageStatus", **fields)).field == field


@pytest.mark.parametrize("field", ["whatsapp_channel", "whatsapp_status"])
def test_whatsapp_fields_are_refused_for_other_entities(field: str) -> None:
    assert rejected(event("Object", "OnNew", **{field: "sent"})).field == field


# --- data -----------------------------------------------------------------------------------


def data_event(raw: bytes) -> messages_pb2.PlatformEvent:
    return event("Tag", "OnAdd", data_json=raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        '{"name": "Zoë 金 🎉", "x": "<a>&amp;</a>"}'.encode(),
        b'{"emoji": "\\ud83c\\udf89"}',
        b'  {"a": [1, 2.5, null, true]}\n',
    ],
)
def test_json_objects_are_accepted_and_returned_parsed(raw: bytes) -> None:
    assert validate_event(data_event(raw), now=NOW) == json.loads(raw)


def test_data_up_to_the_limit_is_accepted() -> None:
    prefix, suffix = b'{"pad":"', b'"}'
    raw = prefix + b"x" * (MAX_DATA_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(raw) == MAX_DATA_BYTES
    validate_event(data_event(raw), now=NOW)
    error = rejected(data_event(raw[:-2] + b'x"}'))
    assert error.field == "data_json" and "at most 262144" in error.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "is required"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"{'a': 1}", "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
        (b'{"a": 1} {"b": 2}', "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": -Infinity}', "not valid JSON"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "not valid UTF-8"),
        (b'\xef\xbb\xbf{"a": 1}', "not valid JSON"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"a": "\\uDC00x"}', "surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        # Deep enough to break the SOAP envelope builder (~500), far from the stack's end.
        (b'{"a":' + b"[" * 700 + b"]" * 700 + b"}", "nested too deeply"),
        (b'{"a":' + b"[" * EVENT_DATA_DEPTH + b"]" * EVENT_DATA_DEPTH + b"}", "at most 64 levels"),
        # Beyond a float: Python reads inf, and receivers would get "Infinity".
        (b'{"a": 1e400}', "too large for a float"),
        (b'{"a": -' + b"9" * 400 + b".5}", "too large for a float"),
    ],
)
def test_bad_data_is_refused(raw: bytes, reason: str) -> None:
    error = rejected(data_event(raw))
    assert error.field == "data_json" and reason in error.reason, error.reason


def test_data_up_to_the_depth_bound_and_large_finite_numbers_are_accepted() -> None:
    deepest = b'{"a":' + b"[" * (EVENT_DATA_DEPTH - 1) + b"]" * (EVENT_DATA_DEPTH - 1) + b"}"
    wide = b'{"a": [' + b",".join([b"[1]"] * 1000) + b"]}"  # many brackets, shallow
    numbers = b'{"a": 1e308, "b": -1.5e-320, "c": ' + b"9" * 400 + b"}"  # big int: exact
    for raw in (deepest, wide, numbers):
        validate_event(data_event(raw), now=NOW)
