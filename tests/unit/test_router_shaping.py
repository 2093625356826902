"""Payload shaping: the envelope, the summary of every entity, the complete data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import webhooks_catalogue as catalogue
from webhooks_catalogue.samples import sample_data
from webhooks_catalogue.shaping import EventShaper, envelope, event_body, shape_payload, summary

ALL_TRIGGERS = [(e.name, t.name) for e in catalogue.ENTITIES for t in e.triggers]
WHEN = datetime(2024, 5, 1, 9, 35, 40, 123456, tzinfo=UTC)


def shaped(
    entity: str = "Tag",
    trigger: str = "OnAdd",
    data: dict[str, Any] | None = None,
    *,
    complete: bool = False,
    **fields: Any,
) -> bytes:
    arguments: dict[str, Any] = {
        "tenant": "acme",
        "event_id": "evt-1",
        "delivery_id": "dlv-1",
        "subscription_name": "CRM sync",
        "occurred_at": WHEN,
        **fields,
    }
    return shape_payload(
        entity=entity,
        trigger=trigger,
        data=sample_data(entity, trigger) if data is None else data,
        include_complete_data=complete,
        **arguments,
    )


def parsed(payload: bytes) -> dict[str, Any]:
    event = json.loads(payload.decode("utf-8"))["Event"]
    assert isinstance(event, dict)
    return event


# --- envelope -------------------------------------------------------------------------------


def test_the_envelope_names_everything_in_a_stable_order() -> None:
    event = parsed(shaped())
    assert list(event) == [
        "Subscription", "Name", "Brand", "EventId", "DeliveryId", "SubscriptionName",
        "OccurredAt", "Tag",
    ]  # fmt: skip
    assert event == {
        "Subscription": "Tag",
        "Name": "OnAdd",
        "Brand": "acme",
        "EventId": "evt-1",
        "DeliveryId": "dlv-1",
        "SubscriptionName": "CRM sync",
        "OccurredAt": "2024-05-01T09:35:40.123Z",
        "Tag": {"tagId": "41", "groupId": "0", "name": "Gold", "type": "1"},
    }


def test_the_payload_is_compact_json() -> None:
    payload = shaped()
    assert payload.startswith(b'{"Event":{"Subscription":"Tag","Name":"OnAdd","Brand":"acme",')
    assert b": " not in payload and b", " not in payload and b"\n" not in payload


@pytest.mark.parametrize(
    ("occurred_at", "text"),
    [
        (
            datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=3))),
            "2024-05-01T09:00:00.999Z",
        ),
        (datetime(2024, 5, 1, 9, 0), "2024-05-01T09:00:00.000Z"),  # naive: protobuf's UTC
        (datetime(2000, 1, 1, tzinfo=UTC), "2000-01-01T00:00:00.000Z"),
    ],
)
def test_occurred_at_is_rfc3339_utc_with_z(occurred_at: datetime, text: str) -> None:
    assert parsed(shaped(occurred_at=occurred_at))["OccurredAt"] == text


def test_envelope_strings_are_escaped() -> None:
    name = 'He said "hi"\\ <b>&</b>\n\t\u2028'
    assert parsed(shaped(subscription_name=name))["SubscriptionName"] == name


# --- summary vs complete data ---------------------------------------------------------------


@pytest.mark.parametrize(("entity", "trigger"), ALL_TRIGGERS)
def test_the_summary_keeps_exactly_the_summary_fields(entity: str, trigger: str) -> None:
    spec = catalogue.entity(entity)
    trigger_spec = catalogue.trigger(entity, trigger)
    assert spec is not None and trigger_spec is not None
    data = sample_data(entity, trigger)
    body = parsed(shaped(entity, trigger, data))[entity]
    expected = set(spec.summary_fields) & set(data)
    if trigger_spec.summary_adds:
        expected.add(trigger_spec.summary_adds)
    assert set(body) == expected
    for name in spec.summary_fields:
        if name in data:
            assert body[name] == data[name]


@pytest.mark.parametrize(("entity", "trigger"), ALL_TRIGGERS)
def test_complete_data_keeps_everything(entity: str, trigger: str) -> None:
    data = sample_data(entity, trigger)
    assert parsed(shaped(entity, trigger, data, complete=True))[entity] == data


def test_samples_hold_every_summary_field_so_the_tests_above_mean_something() -> None:
    for entity, trigger in ALL_TRIGGERS:
        spec = catalogue.entity(entity)
        assert spec is not None
        missing = set(spec.summary_fields) - set(sample_data(entity, trigger))
        # "error" is only there for failed WhatsApp messages; the sample was delivered.
        assert missing <= {"error"}, (entity, trigger, missing)


def test_the_object_summary() -> None:
    body = parsed(shaped("Object", "OnNew"))["Object"]
    assert list(body) == ["Id", "StreamId", "SubStreamId", "Type", "StatusID", "CreateDate"]


@pytest.mark.parametrize(
    ("trigger", "field"), [("OnNewChild", "Children"), ("OnNewActivity", "Activities")]
)
def test_children_and_activities_are_narrowed_to_the_triggering_last_one(
    trigger: str, field: str
) -> None:
    data = sample_data("Object", trigger)
    assert len(data[field]) > 1
    assert parsed(shaped("Object", trigger, data))["Object"][field] == [data[field][-1]]


def test_tags_keep_every_changed_tag() -> None:
    data = sample_data("Object", "OnUpdateTag")
    assert parsed(shaped("Object", "OnUpdateTag", data))["Object"]["Tags"] == data["Tags"]


@pytest.mark.parametrize("value", [[], {"Id": 1}, "odd"])
def test_odd_shapes_of_added_fields_are_kept_as_they_are(value: Any) -> None:
    assert summary("Object", "OnNewChild", {"Id": 1, "Children": value}) == {
        "Id": 1,
        "Children": value,
    }


def test_missing_fields_are_simply_absent() -> None:
    assert parsed(shaped("Object", "OnNewActivity", {"Id": 7}))["Object"] == {"Id": 7}
    assert parsed(shaped("User", "OnNew", {}))["User"] == {}


def test_an_unknown_trigger_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Object OnSubmit"):
        summary("Object", "OnSubmit", {})


# --- text survives --------------------------------------------------------------------------


@pytest.mark.parametrize("complete", [False, True])
def test_xml_unsafe_and_control_characters_survive(complete: bool) -> None:
    text = "<![CDATA[x]]> & </Event> \"'\x00\x01\x1f\u2028\u2029\\"
    data = {"tagId": "41", "name": text, "unit": text}
    assert parsed(shaped("Tag", "OnAdd", data, complete=complete))["Tag"]["name"] == text


def test_non_ascii_survives_as_utf8() -> None:
    text = "Zoë Ångström — שלום 金 🎉"
    payload = shaped("Tag", "OnAdd", {"name": text}, tenant="acme", subscription_name=text)
    assert text.encode("utf-8") in payload  # sent as UTF-8, not as \\u escapes
    event = parsed(payload)
    assert event["Tag"]["name"] == text and event["SubscriptionName"] == text


def test_a_lone_surrogate_still_gives_valid_json() -> None:
    payload = shaped("Tag", "OnAdd", {"name": "a\ud800b"})
    assert parsed(payload)["Tag"]["name"] == "a\ud800b"
    payload.decode("ascii")


# --- shaping once per event -----------------------------------------------------------------


@pytest.mark.parametrize(("entity", "trigger"), ALL_TRIGGERS)
@pytest.mark.parametrize("complete", [False, True])
def test_every_way_of_shaping_gives_the_same_bytes(
    entity: str, trigger: str, complete: bool
) -> None:
    data = sample_data(entity, trigger)
    expected = shaped(entity, trigger, data, complete=complete)
    body = event_body(entity, trigger, data, complete)
    assert expected == envelope(
        body=body,
        entity=entity,
        trigger=trigger,
        tenant="acme",
        event_id="evt-1",
        delivery_id="dlv-1",
        subscription_name="CRM sync",
        occurred_at=WHEN,
    )
    shaper = EventShaper(
        entity=entity, trigger=trigger, tenant="acme", event_id="evt-1", occurred_at=WHEN, data=data
    )
    for _ in range(2):  # the second call reuses the cached entity part
        payload = shaper.payload(
            delivery_id="dlv-1", subscription_name="CRM sync", include_complete_data=complete
        )
        assert payload == expected


def test_an_event_shaper_keeps_summary_and_complete_data_apart() -> None:
    data = sample_data("Object", "OnNewChild")
    shaper = EventShaper(
        entity="Object",
        trigger="OnNewChild",
        tenant="acme",
        event_id="e",
        occurred_at=WHEN,
        data=data,
    )
    full = shaper.payload(delivery_id="d1", subscription_name="a", include_complete_data=True)
    short = shaper.payload(delivery_id="d2", subscription_name="b", include_complete_data=False)
    assert parsed(full)["Object"] == data
    assert parsed(short)["Object"] == summary("Object", "OnNewChild", data)
    assert parsed(short)["DeliveryId"] == "d2" and parsed(short)["SubscriptionName"] == "b"
