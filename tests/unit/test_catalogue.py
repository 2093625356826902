"""The event catalogue: its data, lookups, trigger validation and exclusivity rules."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import webhooks_catalogue as catalogue
from webhooks_catalogue import CatalogueError, shaping, validate_triggers
from webhooks_catalogue.proto import catalogue_message
from webhooks_catalogue.samples import sample_event
from webhooks_router.validation import validate_event


def rejected(entity: str, triggers: list[dict[str, Any]]) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        validate_triggers(entity, triggers)
    return caught.value


def canonical(trigger: str, **components: list[Any]) -> dict[str, Any]:
    empty: dict[str, Any] = {c.value: [] for c in catalogue.COMPONENTS}
    return {"trigger": trigger, **empty, **components}


# --- data ---------------------------------------------------------------------------------


def test_entities_and_their_triggers_are_the_catalogues() -> None:
    triggers = {e.name: [t.name for t in e.triggers] for e in catalogue.ENTITIES}
    assert triggers == {
        "Object": ["OnNew", "OnNewChild", "OnNewActivity", "OnUpdateTag"],
        "User": ["OnNew", "OnUpdate", "OnUpdateTag"],
        "Satisfaction": ["OnSubmit"],
        "Tag": ["OnAdd", "OnUpdate"],
        "Form": ["OnSubmit"],
        "Chat": ["OnUserExit"],
        "WhatsApp": ["OnMessageStatus"],
        "Webhook": [
            "OnFailing",
            "OnCircuitOpened",
            "OnDisabled",
            "OnRecovered",
            "OnRetriesExhausted",
            "OnCertificateExpiring",
        ],
    }


def test_components_per_trigger() -> None:
    components = {
        (e.name, t.name): list(t.components) for e in catalogue.ENTITIES for t in e.triggers
    }
    assert components[("Object", "OnNewActivity")] == [
        "activity_types",
        "channels",
        "status_changes",
    ]
    assert components[("Object", "OnNew")] == ["channels"]
    assert components[("User", "OnUpdate")] == ["channels"]
    assert components[("User", "OnUpdateTag")] == []
    assert components[("WhatsApp", "OnMessageStatus")] == [
        "whatsapp_channels",
        "whatsapp_statuses",
    ]
    assert components[("Tag", "OnAdd")] == []


def test_enumerations() -> None:
    assert list(catalogue.CHANNELS) == list(range(18))
    assert catalogue.CHANNELS[7] == "WhatsApp"
    assert catalogue.CHANNELS[17] == "Salesforce"
    assert list(catalogue.ACTIVITY_TYPES) == list(range(1, 24))
    assert catalogue.ACTIVITY_TYPES[2] == "StatusChange"
    assert list(catalogue.OBJECT_STATUSES) == [*range(1, 12), 13, 14, 15]
    assert catalogue.TAG_TYPES[103] == "CustomerSatisfactionOpenAnswer"
    assert catalogue.WHATSAPP_STATUSES == ("sent", "delivered", "read", "failed")


def test_summary_fields() -> None:
    object_ = catalogue.entity("Object")
    user = catalogue.entity("User")
    assert object_ is not None and user is not None
    assert object_.summary_fields == (
        "Id",
        "StreamId",
        "SubStreamId",
        "Type",
        "StatusID",
        "CreateDate",
    )
    assert user.summary_fields == ("Id", "UniqueID", "Email", "Phone1", "FirstName", "LastName")
    assert all(e.summary_fields for e in catalogue.ENTITIES)
    activity = catalogue.trigger("Object", "OnNewActivity")
    assert activity is not None and activity.summary_adds == "Activities"


# --- lookups ------------------------------------------------------------------------------


def test_entity_and_trigger_lookups_ignore_case() -> None:
    found = catalogue.entity("whatsapp")
    assert found is not None and found.name == "WhatsApp"
    assert catalogue.entity("Nothing") is None
    on_new = catalogue.trigger("object", "onnewchild")
    assert on_new is not None and on_new.name == "OnNewChild"
    assert catalogue.trigger("Tag", "OnNewChild") is None
    assert catalogue.trigger("Nothing", "OnNew") is None


def test_names_of_ids() -> None:
    assert catalogue.channel_name(16) == "WhatsAppCloud"
    assert catalogue.activity_type_name(23) == "RedactChild"
    assert catalogue.object_status_name(15) == "Pending"
    assert catalogue.tag_type_name(100) == "Intents"
    with pytest.raises(ValueError, match="unknown object status id 12"):
        catalogue.object_status_name(12)


@pytest.mark.parametrize("text", ["WhatsApp", "whatsapp", " WHATSAPP ", "Whats App", "7", 7])
def test_parse_channel_accepts_id_or_name(text: str | int) -> None:
    assert catalogue.parse_channel(text) == 7


@pytest.mark.parametrize("text", ["Google My Business", "google-my-business", "GoogleMyBusiness"])
def test_parse_channel_accepts_the_display_name(text: str) -> None:
    assert catalogue.parse_channel(text) == 13


@pytest.mark.parametrize("text", ["WhatsApp Web", "18", "-1", "", True])
def test_parse_channel_rejects_unknown(text: str | int) -> None:
    with pytest.raises(ValueError, match="unknown channel"):
        catalogue.parse_channel(text)


def test_parse_other_enumerations() -> None:
    assert catalogue.parse_activity_type("statuschange") == 2
    assert catalogue.parse_object_status("Resolved") == 2
    assert catalogue.parse_object_status("15") == 15
    assert catalogue.parse_tag_type("sla") == 102
    assert catalogue.parse_whatsapp_status(" Read ") == "read"
    with pytest.raises(ValueError, match="expected an id or name"):
        catalogue.parse_object_status("12")
    with pytest.raises(ValueError, match="unknown WhatsApp status"):
        catalogue.parse_whatsapp_status("seen")


def test_parse_status_change() -> None:
    assert catalogue.parse_status_change("Open->Resolved") == {"from": 1, "to": 2}
    assert catalogue.parse_status_change("1 -> 2") == {"from": 1, "to": 2}
    assert catalogue.parse_status_change("any->Pending") == {"from": 0, "to": 15}
    assert catalogue.parse_status_change("Resolved") == {"from": 0, "to": 2}
    with pytest.raises(ValueError):
        catalogue.parse_status_change("Open->Nowhere")


# --- validate_triggers: entity and trigger names ------------------------------------------


def test_canonical_entity_and_triggers() -> None:
    entity, triggers = validate_triggers(
        "object",
        [
            {"trigger": "onNew", "channels": [7, 1, 7]},
            {
                "trigger": "OnNewActivity",
                "activity_types": [2, 1, 2],
                "channels": None,
                "status_changes": [{"from": 2, "to": 1}, {"to": 2}, {"from": 2, "to": 1}],
            },
        ],
    )
    assert entity == "Object"
    assert triggers == [
        canonical("OnNew", channels=[1, 7]),
        canonical(
            "OnNewActivity",
            activity_types=[1, 2],
            status_changes=[{"from": 0, "to": 2}, {"from": 2, "to": 1}],
        ),
    ]


@pytest.mark.parametrize("entity", ["", "  ", "Ticket", None])
def test_unknown_entity(entity: Any) -> None:
    assert rejected(entity, [{"trigger": "OnNew"}]).field == "entity"


def test_at_least_one_and_at_most_fifty_triggers() -> None:
    assert rejected("Tag", []).field == "triggers"
    many = [{"trigger": "OnNew", "channels": [i % 18]} for i in range(51)]
    assert rejected("Object", many).field == "triggers"
    fifty = [{"trigger": "OnMessageStatus", "whatsapp_channels": [f"c{i}"]} for i in range(50)]
    assert len(validate_triggers("WhatsApp", fifty)[1]) == 50


def test_trigger_must_belong_to_the_entity() -> None:
    error = rejected("Tag", [{"trigger": "OnAdd"}, {"trigger": "OnSubmit"}])
    assert error.field == "triggers[1].trigger"
    assert "OnAdd, OnUpdate" in error.message
    assert rejected("Tag", [{"channels": [1]}]).field == "triggers[0].trigger"
    assert rejected("Tag", ["OnAdd"]).field == "triggers[0]"  # type: ignore[list-item]


def test_unknown_component_key_is_rejected() -> None:
    error = rejected("Object", [{"trigger": "OnNew", "chanels": [1]}])
    assert error.field == "triggers[0].chanels"


@pytest.mark.parametrize(
    ("entity", "trigger", "component", "value"),
    [
        ("Object", "OnNew", "activity_types", [1]),
        ("Object", "OnNewChild", "whatsapp_statuses", ["read"]),
        ("User", "OnUpdateTag", "channels", [1]),
        ("Tag", "OnAdd", "channels", [1]),
        ("WhatsApp", "OnMessageStatus", "channels", [7]),
        ("Object", "OnNew", "status_changes", [{"to": 2}]),
    ],
)
def test_component_not_allowed_for_trigger(
    entity: str, trigger: str, component: str, value: list[Any]
) -> None:
    error = rejected(entity, [{"trigger": trigger, component: value}])
    assert error.field == f"triggers[0].{component}"


def test_component_must_be_a_list() -> None:
    assert rejected("Object", [{"trigger": "OnNew", "channels": 7}]).field == (
        "triggers[0].channels"
    )


# --- validate_triggers: values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("component", "values", "field"),
    [
        ("channels", [1, 18], "triggers[0].channels[1]"),
        ("channels", [True], "triggers[0].channels[0]"),
        ("channels", ["7"], "triggers[0].channels[0]"),
        ("activity_types", [1, 2, 24], "triggers[0].activity_types[2]"),
        ("activity_types", [0], "triggers[0].activity_types[0]"),
        ("status_changes", [{"from": 1, "to": 2}, {"from": 1}], "triggers[0].status_changes[1].to"),
        ("status_changes", [{"from": 1, "to": 12}], "triggers[0].status_changes[0].to"),
        ("status_changes", [{"from": 12, "to": 1}], "triggers[0].status_changes[0].from"),
        ("status_changes", [{"from": 2, "to": 2}], "triggers[0].status_changes[0].to"),
        ("status_changes", [{"to": 2, "via": 3}], "triggers[0].status_changes[0].via"),
        ("status_changes", [2], "triggers[0].status_changes[0]"),
    ],
)
def test_object_activity_values_must_be_known(
    component: str, values: list[Any], field: str
) -> None:
    assert rejected("Object", [{"trigger": "OnNewActivity", component: values}]).field == field


def test_status_changes_need_activity_type_status_change() -> None:
    changes = [{"from": 1, "to": 2}]
    error = rejected(
        "Object", [{"trigger": "OnNewActivity", "activity_types": [1], "status_changes": changes}]
    )
    assert error.field == "triggers[0].status_changes"
    for types in ([], [2], [1, 2]):
        _, triggers = validate_triggers(
            "Object",
            [{"trigger": "OnNewActivity", "activity_types": types, "status_changes": changes}],
        )
        assert triggers[0]["status_changes"] == changes


def test_whatsapp_values() -> None:
    _, triggers = validate_triggers(
        "WhatsApp",
        [
            {
                "trigger": "OnMessageStatus",
                "whatsapp_channels": ["b-2", "a_1.x:y", "b-2"],
                "whatsapp_statuses": ["Read", "sent", "read"],
            }
        ],
    )
    assert triggers == [
        canonical(
            "OnMessageStatus",
            whatsapp_channels=["a_1.x:y", "b-2"],
            whatsapp_statuses=["read", "sent"],
        )
    ]


@pytest.mark.parametrize(
    ("component", "values", "field"),
    [
        ("whatsapp_channels", ["ok", ""], "triggers[0].whatsapp_channels[1]"),
        ("whatsapp_channels", ["has space"], "triggers[0].whatsapp_channels[0]"),
        ("whatsapp_channels", ["x" * 129], "triggers[0].whatsapp_channels[0]"),
        ("whatsapp_channels", [42], "triggers[0].whatsapp_channels[0]"),
        ("whatsapp_statuses", ["sent", "seen"], "triggers[0].whatsapp_statuses[1]"),
    ],
)
def test_whatsapp_values_rejected(component: str, values: list[Any], field: str) -> None:
    assert rejected("WhatsApp", [{"trigger": "OnMessageStatus", component: values}]).field == field


def test_whatsapp_channel_id_of_128_characters_is_accepted() -> None:
    _, triggers = validate_triggers(
        "WhatsApp", [{"trigger": "OnMessageStatus", "whatsapp_channels": ["x" * 128]}]
    )
    assert triggers[0]["whatsapp_channels"] == ["x" * 128]


# --- exclusivity of repeated triggers -----------------------------------------------------


def test_disjoint_activity_types_are_accepted() -> None:
    _, triggers = validate_triggers(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [1, 3], "channels": [4]},
            {"trigger": "OnNew"},
            {"trigger": "OnNewActivity", "activity_types": [5], "channels": [4]},
        ],
    )
    assert [t["activity_types"] for t in triggers] == [[1, 3], [], [5]]


def test_shared_activity_type_is_rejected_at_the_later_trigger() -> None:
    error = rejected(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [1, 3]},
            {"trigger": "OnNew"},
            {"trigger": "OnNewActivity", "activity_types": [5, 3], "channels": [7]},
        ],
    )
    assert error.field == "triggers[2].activity_types"
    assert "triggers[0]" in error.message and "3 (Forward)" in error.message


@pytest.mark.parametrize(("first", "second"), [([], [4]), ([4], []), ([], [])])
def test_all_activity_types_overlap_any_other(first: list[int], second: list[int]) -> None:
    error = rejected(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": first},
            {"trigger": "OnNewActivity", "activity_types": second},
        ],
    )
    assert error.field == "triggers[1].activity_types"
    assert "triggers[0]" in error.message


def test_status_change_triggers_with_different_status_changes_are_accepted() -> None:
    _, triggers = validate_triggers(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [2], "status_changes": [{"to": 2}]},
            {
                "trigger": "OnNewActivity",
                "activity_types": [2, 1],
                "status_changes": [{"from": 2, "to": 1}],
            },
        ],
    )
    assert [t["status_changes"] for t in triggers] == [
        [{"from": 0, "to": 2}],
        [{"from": 2, "to": 1}],
    ]


def test_all_activity_types_with_status_changes_next_to_status_change_trigger() -> None:
    # Empty activity types is every type; its status changes narrow only StatusChange.
    _, triggers = validate_triggers(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [2], "status_changes": [{"to": 2}]},
            {"trigger": "OnNewActivity", "status_changes": [{"from": 1, "to": 15}]},
        ],
    )
    assert triggers[1]["activity_types"] == []


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ({"from": 1, "to": 2}, {"from": 1, "to": 2}),
        ({"from": 0, "to": 2}, {"from": 1, "to": 2}),
        ({"from": 3, "to": 2}, {"to": 2}),
    ],
)
def test_reused_status_change_is_rejected(earlier: dict[str, int], later: dict[str, int]) -> None:
    error = rejected(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [2], "status_changes": [earlier]},
            {
                "trigger": "OnNewActivity",
                "activity_types": [2],
                "status_changes": [{"from": 5, "to": 1}, later],
            },
        ],
    )
    assert error.field == "triggers[1].status_changes"
    assert "triggers[0]" in error.message and "->Resolved" in error.message


def test_same_target_from_different_sources_is_accepted() -> None:
    _, triggers = validate_triggers(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [2], "status_changes": [change]}
            for change in ({"from": 1, "to": 2}, {"from": 3, "to": 2})
        ],
    )
    assert [t["status_changes"][0]["from"] for t in triggers] == [1, 3]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ({"activity_types": [2]}, {"activity_types": [2], "status_changes": [{"to": 2}]}),
        ({"activity_types": [2], "status_changes": [{"to": 2}]}, {"activity_types": [2]}),
        ({"activity_types": [2], "status_changes": [{"to": 2}]}, {"activity_types": []}),
    ],
)
def test_all_status_changes_overlap_any_other(
    earlier: dict[str, Any], later: dict[str, Any]
) -> None:
    error = rejected(
        "Object",
        [{"trigger": "OnNewActivity", **earlier}, {"trigger": "OnNewActivity", **later}],
    )
    assert error.field == "triggers[1].status_changes"


@pytest.mark.parametrize(
    ("entity", "trigger"),
    [
        ("Object", "OnNew"),
        ("Object", "OnNewChild"),
        ("Object", "OnUpdateTag"),
        ("User", "OnUpdate"),
    ],
)
def test_channel_triggers_need_disjoint_channels(entity: str, trigger: str) -> None:
    _, accepted = validate_triggers(
        entity, [{"trigger": trigger, "channels": [1, 2]}, {"trigger": trigger, "channels": [3]}]
    )
    assert [t["channels"] for t in accepted] == [[1, 2], [3]]
    error = rejected(
        entity, [{"trigger": trigger, "channels": [1, 2]}, {"trigger": trigger, "channels": [2]}]
    )
    assert error.field == "triggers[1].channels"
    assert "channel 2 (Twitter)" in error.message and "triggers[0]" in error.message
    error = rejected(entity, [{"trigger": trigger, "channels": [1]}, {"trigger": trigger}])
    assert error.field == "triggers[1].channels"


def test_whatsapp_triggers_need_disjoint_channels() -> None:
    _, accepted = validate_triggers(
        "WhatsApp",
        [
            {"trigger": "OnMessageStatus", "whatsapp_channels": [c], "whatsapp_statuses": ["read"]}
            for c in ("a", "b")
        ],
    )
    assert [t["whatsapp_channels"] for t in accepted] == [["a"], ["b"]]
    error = rejected(
        "WhatsApp",
        [
            {"trigger": "OnMessageStatus"},
            {"trigger": "OnMessageStatus", "whatsapp_channels": ["b"]},
        ],
    )
    assert error.field == "triggers[1].whatsapp_channels"
    assert "triggers[0]" in error.message


@pytest.mark.parametrize(("entity", "trigger"), [("Tag", "OnAdd"), ("User", "OnUpdateTag")])
def test_trigger_without_components_appears_once(entity: str, trigger: str) -> None:
    error = rejected(entity, [{"trigger": trigger}, {"trigger": trigger.lower()}])
    assert error.field == "triggers[1].trigger"
    assert "triggers[0]" in error.message


def test_different_triggers_never_overlap() -> None:
    _, triggers = validate_triggers("Tag", [{"trigger": "OnAdd"}, {"trigger": "OnUpdate"}])
    assert [t["trigger"] for t in triggers] == ["OnAdd", "OnUpdate"]


# --- the Webhook entity (the platform's operator events) ----------------------------------

WEBHOOK_DATA_KEYS = {
    "SubscriptionId": str,
    "SubscriptionName": str,
    "Entity": str,
    "Url": str,
    "State": str,
    "Reason": str,
    "ConsecutiveFailures": int,
    "FailingSince": str,
    "LastError": str,
    "DeliveryId": str,
    "EventId": str,
    "CertificateId": str,
    "CertificateName": str,
    "CertificateNotAfter": str,
}


def test_webhook_entity_has_the_six_triggers_without_components() -> None:
    webhook = catalogue.entity(catalogue.WEBHOOK_ENTITY)
    assert webhook is not None
    assert webhook.name == "Webhook"
    assert webhook.description.startswith("The organisation's own webhooks")
    names = (
        catalogue.ON_FAILING,
        catalogue.ON_CIRCUIT_OPENED,
        catalogue.ON_DISABLED,
        catalogue.ON_RECOVERED,
        catalogue.ON_RETRIES_EXHAUSTED,
        catalogue.ON_CERTIFICATE_EXPIRING,
    )
    assert tuple(t.name for t in webhook.triggers) == names
    assert all(not t.components and t.fires_when for t in webhook.triggers)
    assert webhook.summary_fields == ("SubscriptionId", "SubscriptionName", "State", "Reason")
    assert webhook.summary_fields[0] == catalogue.WEBHOOK_ABOUT_FIELD


def test_a_subscription_may_listen_to_webhook_events() -> None:
    entity, triggers = validate_triggers("webhook", [{"trigger": "ondisabled"}])
    assert (entity, triggers) == ("Webhook", [canonical("OnDisabled")])
    error = rejected("Webhook", [{"trigger": "OnDisabled", "channels": [1]}])
    assert error.field == "triggers[0].channels"


@pytest.mark.parametrize("trigger", [t.name for t in catalogue.ENTITIES[-1].triggers])
def test_webhook_samples_carry_every_data_key(trigger: str) -> None:
    event = sample_event("Webhook", trigger)
    data = json.loads(event.data_json)
    assert {key: type(value) for key, value in data.items()} == WEBHOOK_DATA_KEYS
    assert data["State"] in ("healthy", "failing", "circuit_open", "throttled", "disabled")
    assert not event.HasField("channel") and not event.subchannel
    summary = shaping.summary("Webhook", trigger, data)
    assert list(summary) == ["SubscriptionId", "SubscriptionName", "State", "Reason"]


def test_every_trigger_has_a_valid_sample() -> None:
    for entity in catalogue.ENTITIES:
        for trigger in entity.triggers:
            event = sample_event(entity.name, trigger.name)
            validate_event(event, now=event.occurred_at.seconds)


@pytest.mark.parametrize("value", [None, 0, 1, 5, 10_000])
def test_rate_limit_per_second_within_bounds(value: int | None) -> None:
    assert catalogue.validate_rate_limit(value) == (value or 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "must be 0 (no limit) to 10000, got -1"),
        (10_001, "must be 0 (no limit) to 10000, got 10001"),
        (2.5, "must be a whole number"),
        ("5", "must be a whole number"),
        (True, "must be a whole number"),
    ],
)
def test_rate_limit_per_second_out_of_bounds(value: object, reason: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        catalogue.validate_rate_limit(value)
    assert caught.value.field == "webhook.rate_limit_per_second"
    assert reason in caught.value.message


# --- proto --------------------------------------------------------------------------------


def test_catalogue_message_carries_the_data() -> None:
    message = catalogue_message()
    assert [e.name for e in message.entities] == [e.name for e in catalogue.ENTITIES]
    activity = message.entities[0].triggers[2]
    assert activity.name == "OnNewActivity"
    assert list(activity.components) == ["activity_types", "channels", "status_changes"]
    assert activity.fires_when == "an activity is logged on a conversation"
    assert [(v.id, v.name) for v in message.channels][7] == (7, "WhatsApp")
    assert 12 not in [v.id for v in message.object_statuses]
    assert len(message.activity_types) == 23
    assert len(message.tag_types) == 9
    assert list(message.whatsapp_statuses) == ["sent", "delivered", "read", "failed"]


def test_package_root_does_not_import_protobuf() -> None:
    code = "import sys, webhooks_catalogue; assert 'google.protobuf' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
