"""Matching and the routing table, in memory, over the whole catalogue."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue import ACTIVITY_STATUS_CHANGE, ANY_STATUS, ENTITIES, Component
from webhooks_router.matching import TriggerMatcher, trigger_matches, webhook_event_about
from webhooks_router.routes import RouteEntry, RoutingTable, subscription_matches

CATALOGUE = [(e.name, t.name) for e in ENTITIES for t in e.triggers]
REMARK = 1
OPEN, RESOLVED, DELETED = 1, 2, 5
_ids = itertools.count(1)


def spec(trigger: Mapping[str, Any]) -> common_pb2.TriggerSpec:
    """A TriggerSpec from a canonical trigger dict."""
    return common_pb2.TriggerSpec(
        trigger=trigger["trigger"],
        channels=trigger.get("channels", []),
        activity_types=trigger.get("activity_types", []),
        status_changes=[
            common_pb2.StatusChange(from_status=c["from"], to_status=c["to"])
            for c in trigger.get("status_changes", [])
        ],
        whatsapp_channels=trigger.get("whatsapp_channels", []),
        whatsapp_statuses=trigger.get("whatsapp_statuses", []),
    )


def state(
    entity: str,
    triggers: Sequence[Mapping[str, Any]],
    *,
    tenant: str = "acme",
    subscription_id: str | None = None,
    version: int = 1,
    active: bool = True,
    deleted: bool = False,
) -> messages_pb2.SubscriptionState:
    return messages_pb2.SubscriptionState(
        id=subscription_id or f"sub-{next(_ids)}",
        tenant=tenant,
        name="hook",
        entity=entity,
        triggers=[spec(t) for t in triggers],
        version=version,
        active=active,
        deleted=deleted,
    )


def event(
    entity: str, trigger: str, tenant: str = "acme", **fields: Any
) -> messages_pb2.PlatformEvent:
    status_change = fields.pop("status_change", None)
    message = messages_pb2.PlatformEvent(
        event_id=f"ev-{next(_ids)}", tenant=tenant, entity=entity, trigger=trigger, **fields
    )
    if status_change is not None:
        message.status_change.from_status, message.status_change.to_status = status_change
    return message


def table_of(*states: messages_pb2.SubscriptionState) -> RoutingTable:
    table = RoutingTable()
    for seq, one in enumerate(states, start=1):
        table.apply(one, seq)
    return table


def routed(table: RoutingTable, message: messages_pb2.PlatformEvent) -> list[str]:
    return [entry.subscription_id for entry in table.route(message)]


# ---- every entity and trigger of the catalogue


@pytest.mark.parametrize(("entity", "trigger"), CATALOGUE)
def test_a_catalogue_trigger_without_components_matches_its_events_only(
    entity: str, trigger: str
) -> None:
    subscription = state(entity, [{"trigger": trigger}])
    table = table_of(subscription)
    entry = table.get("acme", subscription.id)
    assert entry is not None

    own = event(entity, trigger)
    assert routed(table, own) == [subscription.id]
    assert trigger_matches({"trigger": trigger}, own)
    assert subscription_matches(entry, own)
    for other_entity, other_trigger in CATALOGUE:
        if (other_entity, other_trigger) == (entity, trigger):
            continue
        other = event(other_entity, other_trigger)
        assert routed(table, other) == [], (other_entity, other_trigger)
        assert not subscription_matches(entry, other), (other_entity, other_trigger)


@pytest.mark.parametrize(("entity", "trigger"), CATALOGUE)
def test_empty_components_mean_all(entity: str, trigger: str) -> None:
    table = table_of(state(entity, [{"trigger": trigger}]))
    variants = [
        event(entity, trigger),
        event(entity, trigger, channel=0),
        event(entity, trigger, channel=17, subchannel="x"),
        event(entity, trigger, activity_type=REMARK),
        event(entity, trigger, activity_type=ACTIVITY_STATUS_CHANGE, status_change=(1, 2)),
        event(entity, trigger, whatsapp_channel="wa-1", whatsapp_status="failed"),
    ]
    for variant in variants:
        assert len(table.route(variant)) == 1, variant


def test_every_component_kind_of_the_catalogue_is_covered_below() -> None:
    used = {c for e in ENTITIES for t in e.triggers for c in t.components}
    assert used == set(Component)
    assert {c.value for c in Component} <= {k for case in COMPONENT_CASES for k in case[1]}


# ---- each component kind, matching and not

# (entity, trigger dict, event fields, expected)
COMPONENT_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # channels
    ("Object", {"trigger": "OnNew", "channels": [1, 2]}, {"channel": 2}, True),
    ("Object", {"trigger": "OnNew", "channels": [1, 2]}, {"channel": 3}, False),
    ("Object", {"trigger": "OnNew", "channels": [0]}, {"channel": 0}, True),  # 0 is Commbox
    ("Object", {"trigger": "OnNew", "channels": [1]}, {}, False),  # no channel on the event
    ("User", {"trigger": "OnUpdate", "channels": [7]}, {"channel": 7}, True),
    ("User", {"trigger": "OnUpdate", "channels": [7]}, {"channel": 16}, False),
    # activity types
    (
        "Object",
        {"trigger": "OnNewActivity", "activity_types": [REMARK]},
        {"activity_type": REMARK},
        True,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "activity_types": [REMARK]},
        {"activity_type": 3},
        False,
    ),
    ("Object", {"trigger": "OnNewActivity", "activity_types": [REMARK]}, {}, False),
    (
        "Object",
        {"trigger": "OnNewActivity", "activity_types": [REMARK], "channels": [4]},
        {"activity_type": REMARK, "channel": 5},
        False,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "activity_types": [REMARK], "channels": [4]},
        {"activity_type": REMARK, "channel": 4},
        True,
    ),
    # status changes: from → to
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": OPEN, "to": RESOLVED}]},
        {"activity_type": ACTIVITY_STATUS_CHANGE, "status_change": (OPEN, RESOLVED)},
        True,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": OPEN, "to": RESOLVED}]},
        {"activity_type": ACTIVITY_STATUS_CHANGE, "status_change": (DELETED, RESOLVED)},
        False,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": OPEN, "to": RESOLVED}]},
        {"activity_type": ACTIVITY_STATUS_CHANGE, "status_change": (OPEN, DELETED)},
        False,
    ),
    # status changes: from 0 is "from any status"
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": ANY_STATUS, "to": RESOLVED}]},
        {"activity_type": ACTIVITY_STATUS_CHANGE, "status_change": (DELETED, RESOLVED)},
        True,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": ANY_STATUS, "to": RESOLVED}]},
        {"activity_type": ACTIVITY_STATUS_CHANGE, "status_change": (RESOLVED, OPEN)},
        False,
    ),
    (
        "Object",
        {
            "trigger": "OnNewActivity",
            "activity_types": [ACTIVITY_STATUS_CHANGE],
            "status_changes": [{"from": OPEN, "to": DELETED}, {"from": 0, "to": RESOLVED}],
        },
        {"activity_type": ACTIVITY_STATUS_CHANGE, "status_change": (OPEN, DELETED)},
        True,
    ),
    # status changes do not filter other activity types
    (
        "Object",
        {
            "trigger": "OnNewActivity",
            "activity_types": [REMARK, ACTIVITY_STATUS_CHANGE],
            "status_changes": [{"from": OPEN, "to": RESOLVED}],
        },
        {"activity_type": REMARK},
        True,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": OPEN, "to": RESOLVED}]},
        {"activity_type": 6},
        True,
    ),
    (
        "Object",
        {"trigger": "OnNewActivity", "status_changes": [{"from": OPEN, "to": RESOLVED}]},
        {},
        True,
    ),
    # WhatsApp channels and statuses
    (
        "WhatsApp",
        {"trigger": "OnMessageStatus", "whatsapp_channels": ["wa-1"]},
        {"whatsapp_channel": "wa-1"},
        True,
    ),
    (
        "WhatsApp",
        {"trigger": "OnMessageStatus", "whatsapp_channels": ["wa-1"]},
        {"whatsapp_channel": "wa-2"},
        False,
    ),
    ("WhatsApp", {"trigger": "OnMessageStatus", "whatsapp_channels": ["wa-1"]}, {}, False),
    (
        "WhatsApp",
        {"trigger": "OnMessageStatus", "whatsapp_statuses": ["read", "failed"]},
        {"whatsapp_status": "failed"},
        True,
    ),
    (
        "WhatsApp",
        {"trigger": "OnMessageStatus", "whatsapp_statuses": ["read", "failed"]},
        {"whatsapp_status": "sent"},
        False,
    ),
    (
        "WhatsApp",
        {
            "trigger": "OnMessageStatus",
            "whatsapp_channels": ["wa-1"],
            "whatsapp_statuses": ["read"],
        },
        {"whatsapp_channel": "wa-1", "whatsapp_status": "delivered"},
        False,
    ),
    (
        "WhatsApp",
        {
            "trigger": "OnMessageStatus",
            "whatsapp_channels": ["wa-1"],
            "whatsapp_statuses": ["read"],
        },
        {"whatsapp_channel": "wa-1", "whatsapp_status": "read"},
        True,
    ),
]


@pytest.mark.parametrize(("entity", "trigger", "fields", "expected"), COMPONENT_CASES)
def test_components(
    entity: str, trigger: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    message = event(entity, trigger["trigger"], **fields)
    assert trigger_matches(trigger, message) is expected
    assert trigger_matches(TriggerMatcher.from_spec(spec(trigger)), message) is expected
    table = table_of(state(entity, [trigger]))
    assert len(table.route(message)) == (1 if expected else 0)


def test_canonical_dicts_and_specs_compile_alike() -> None:
    trigger = {
        "trigger": "OnNewActivity",
        "channels": [1],
        "activity_types": [2],
        "status_changes": [{"from": 0, "to": 2}],
        "whatsapp_channels": [],
        "whatsapp_statuses": [],
    }
    assert TriggerMatcher.from_dict(trigger) == TriggerMatcher.from_spec(spec(trigger))


# ---- the table


def test_several_matching_triggers_route_the_subscription_once() -> None:
    subscription = state(
        "Object",
        [
            {"trigger": "OnNewActivity", "activity_types": [REMARK], "channels": [1]},
            {"trigger": "OnNewActivity", "activity_types": [ACTIVITY_STATUS_CHANGE]},
            {"trigger": "OnNewActivity", "channels": [1, 2]},
            {"trigger": "OnNew"},
        ],
    )
    table = table_of(subscription)
    assert routed(table, event("Object", "OnNewActivity", activity_type=REMARK, channel=1)) == [
        subscription.id
    ]
    assert routed(table, event("Object", "OnNew")) == [subscription.id]
    assert routed(table, event("Object", "OnNewActivity", activity_type=3, channel=9)) == []


def test_every_matching_subscription_is_routed() -> None:
    broad = state("Object", [{"trigger": "OnNew"}])
    narrow = state("Object", [{"trigger": "OnNew", "channels": [4]}])
    other = state("Object", [{"trigger": "OnNew", "channels": [5]}])
    table = table_of(broad, narrow, other)
    assert sorted(routed(table, event("Object", "OnNew", channel=4))) == sorted(
        [broad.id, narrow.id]
    )
    assert len(table) == 3


def test_inactive_and_deleted_subscriptions_get_nothing() -> None:
    trigger = [{"trigger": "OnNew"}]
    inactive = state("User", trigger, active=False)
    table = table_of(inactive)
    assert routed(table, event("User", "OnNew")) == []
    assert table.status("acme", inactive.id) == "inactive"
    assert table.get("acme", inactive.id) is None

    active = state("User", trigger, subscription_id="sub-deactivated")
    table.apply(active, 2)
    assert routed(table, event("User", "OnNew")) == [active.id]
    table.apply(state("User", trigger, subscription_id=active.id, version=2, active=False), 3)
    assert routed(table, event("User", "OnNew")) == []
    assert table.status("acme", active.id) == "inactive"

    table.apply(state("User", trigger, subscription_id=active.id, version=3), 4)
    assert routed(table, event("User", "OnNew")) == [active.id]
    table.apply(
        state("User", trigger, subscription_id=active.id, version=4, active=True, deleted=True), 5
    )
    assert routed(table, event("User", "OnNew")) == []
    assert table.status("acme", active.id) == "deleted"
    assert table.status("acme", "never-seen") == "unknown"
    assert len(table) == 0
    assert table.applied_seq == 5


def test_an_older_state_is_ignored() -> None:
    table = RoutingTable()
    table.apply(state("Tag", [{"trigger": "OnAdd"}], subscription_id="s", version=3), 1)
    table.apply(
        state("Tag", [{"trigger": "OnAdd"}], subscription_id="s", version=2, active=False), 2
    )
    assert routed(table, event("Tag", "OnAdd")) == ["s"]
    assert table.status("acme", "s") == "active"
    entry = table.get("acme", "s")
    assert entry is not None and entry.version == 3
    assert table.applied_seq == 2  # ignored, but read

    table.apply(state("Tag", [{"trigger": "OnUpdate"}], subscription_id="s", version=4), 3)
    assert routed(table, event("Tag", "OnAdd")) == []
    assert routed(table, event("Tag", "OnUpdate")) == ["s"]


def test_a_new_version_replaces_entity_and_triggers() -> None:
    table = table_of(state("Object", [{"trigger": "OnNew"}], subscription_id="s"))
    table.apply(state("User", [{"trigger": "OnUpdate"}], subscription_id="s", version=2), 2)
    assert routed(table, event("Object", "OnNew")) == []
    assert routed(table, event("User", "OnUpdate")) == ["s"]
    assert len(table) == 1


def test_another_tenants_subscription_is_never_routed() -> None:
    acme = state("Form", [{"trigger": "OnSubmit"}], tenant="acme", subscription_id="same-id")
    globex = state("Form", [{"trigger": "OnSubmit"}], tenant="globex", subscription_id="same-id")
    table = table_of(acme, globex)
    assert [e.tenant for e in table.route(event("Form", "OnSubmit", tenant="acme"))] == ["acme"]
    assert [e.tenant for e in table.route(event("Form", "OnSubmit", tenant="globex"))] == ["globex"]
    assert table.route(event("Form", "OnSubmit", tenant="initech")) == []
    entry = table.get("acme", "same-id")
    assert entry is not None
    assert not subscription_matches(entry, event("Form", "OnSubmit", tenant="globex"))


def test_route_entry_carries_what_shaping_needs() -> None:
    subscription = state("Chat", [{"trigger": "OnUserExit"}], version=7)
    subscription.name = "exits"
    subscription.include_complete_data = True
    entry = RouteEntry.from_state(subscription)
    assert (entry.tenant, entry.name, entry.version, entry.entity) == ("acme", "exits", 7, "Chat")
    assert entry.include_complete_data is True
    assert [t.trigger for t in entry.triggers] == ["OnUserExit"]


# ---- loop rule 1: a Webhook event never goes to the webhook it is about


def test_a_webhook_event_skips_the_webhook_it_is_about() -> None:
    about = state("Webhook", [{"trigger": "OnDisabled"}])
    watcher = state("Webhook", [{"trigger": "OnDisabled"}])
    table = table_of(about, watcher)
    message = event("Webhook", "OnDisabled")
    skip = webhook_event_about(message, {"SubscriptionId": about.id, "State": "disabled"})
    assert skip == about.id
    assert [e.subscription_id for e in table.route(message, about=skip)] == [watcher.id]
    # Without the rule both would get it: the skip is what keeps ``about`` out.
    assert sorted(routed(table, message)) == sorted([about.id, watcher.id])


@pytest.mark.parametrize(
    ("entity", "data"),
    [
        ("Object", {"SubscriptionId": "sub-1"}),  # only Webhook events are about a webhook
        ("Webhook", {}),
        ("Webhook", {"SubscriptionId": 7}),
    ],
)
def test_other_events_are_about_no_webhook(entity: str, data: dict[str, Any]) -> None:
    assert webhook_event_about(event(entity, "OnDisabled"), data) == ""
