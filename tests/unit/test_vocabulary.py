"""The one vocabulary: every catalogue id has a display name, and every lookup takes either."""

from __future__ import annotations

import pytest

import webhooks_catalogue as catalogue
from webhooks.v1 import messages_pb2
from webhooks_catalogue import vocabulary
from webhooks_catalogue.failure_classes import failure_name


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("OnMessageStatus", "On Message Status"),
        ("OnNewActivity", "On New Activity"),
        ("GoogleMyBusiness", "Google My Business"),
        ("WhatsAppCloud", "WhatsApp Cloud"),
        ("YouTube", "YouTube"),
        ("Microsoft365", "Microsoft 365"),
        ("AppleAppStore", "Apple App Store"),
        ("InProcess", "In Process"),
        ("SLA", "SLA"),
    ],
)
def test_display_names_read_as_words(given: str, shown: str) -> None:
    assert vocabulary.words(given) == shown


def test_every_trigger_is_found_by_its_display_name() -> None:
    for entity in catalogue.ENTITIES:
        assert catalogue.entity(vocabulary.entity_label(entity.name)) is entity
        for trigger in entity.triggers:
            assert entity.trigger(vocabulary.trigger_label(trigger.name)) is trigger
            assert entity.trigger(vocabulary.trigger_label(trigger.name).upper()) is trigger


def test_every_enumeration_value_is_parsed_from_its_display_name() -> None:
    for channel_id in catalogue.CHANNELS:
        assert catalogue.parse_channel(vocabulary.channel_label(channel_id)) == channel_id
    for type_id in catalogue.ACTIVITY_TYPES:
        assert catalogue.parse_activity_type(vocabulary.activity_type_label(type_id)) == type_id
    for status_id in catalogue.OBJECT_STATUSES:
        assert catalogue.parse_object_status(vocabulary.object_status_label(status_id)) == status_id
    for status in catalogue.WHATSAPP_STATUSES:
        assert catalogue.parse_whatsapp_status(vocabulary.whatsapp_status_label(status)) == status


def test_whatsapp_statuses_carry_the_guides_marks() -> None:
    assert vocabulary.whatsapp_status_label("sent") == "Sent ✓"
    assert vocabulary.whatsapp_status_label("delivered") == "Delivered ✓✓"
    assert vocabulary.whatsapp_status_label("read") == "Read ✓✓"
    assert vocabulary.whatsapp_status_label("failed") == "Failed"


def test_every_failure_class_has_a_label_and_is_found_by_it() -> None:
    for value in messages_pb2.FailureClass.values():
        name = failure_name(value)
        if not name:
            continue
        label = vocabulary.failure_class_label(name)
        assert label != name, f"{name} has no display name"
        assert vocabulary.failure_class_of(label) == name
        assert vocabulary.failure_class_of(name) == name
    assert vocabulary.failure_class_of("SOAP-fault") == "soap_fault"
    assert vocabulary.failure_class_of("no such class") is None
    assert vocabulary.failure_class_label("503") == "503"


def test_unknown_ids_say_so_in_words() -> None:
    assert vocabulary.channel_label(99) == "unknown (99)"
