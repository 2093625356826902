"""The Subscription aggregate's events, and the Subscriptions application in memory (POPO)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks_secrets import SecretBox, is_sealed, new_key
from webhooks_subscriptions.application import Caller, Policy, Subscriptions
from webhooks_subscriptions.domain.errors import InvalidField, NameTaken, NotFound, StaleVersion
from webhooks_subscriptions.domain.subscription import Subscription

TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
ACME = Caller(tenant="acme", actor="acme-admin", trace=TRACE)
GLOBEX = Caller(tenant="globex", actor="globex-admin", trace={})
TRIGGERS = [{"trigger": "OnNew", "channels": [1]}]


def new_subscription(**overrides: Any) -> Subscription:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "name": "Orders",
        "entity": "Object",
        "triggers": [{"trigger": "OnNew", "channels": [1]}],
        "include_complete_data": False,
        "webhook": {"type": "REST", "url": "https://a.example/in"},
        "authentication": {"kind": "none"},
        "retry_policy": {"retries": 3, "interval_seconds": 300},
        "active": True,
        "signing_secret": "sealed:v1:x",
        "actor": "tester",
        "trace": {},
    }
    return Subscription(**(fields | overrides))


def event_names(subscription: Subscription) -> list[str]:
    return [type(event).__name__ for event in subscription.collect_events()]


def test_creation_is_one_created_event() -> None:
    subscription = new_subscription()
    assert event_names(subscription) == ["Created"]
    assert (subscription.version, subscription.active, subscription.deleted) == (1, True, False)


def test_commands_emit_past_tense_events_only_on_change() -> None:
    subscription = new_subscription()
    subscription.collect_events()
    subscription.rename("Orders", "a", {})
    subscription.change_triggers("Object", [{"trigger": "OnNew", "channels": [1]}], "a", {})
    subscription.set_complete_data(False, "a", {})
    subscription.change_endpoint({"type": "REST", "url": "https://a.example/in"}, "a", {})
    subscription.change_authentication({"kind": "none"}, "a", {})
    subscription.change_retry_policy({"retries": 3, "interval_seconds": 300}, "a", {})
    subscription.set_active(True, "a", {})
    assert event_names(subscription) == []
    assert subscription.version == 1

    subscription.rename("Orders v2", "a", {})
    subscription.change_triggers("Object", [{"trigger": "OnNew", "channels": [2]}], "a", {})
    subscription.set_complete_data(True, "a", {})
    subscription.change_endpoint({"type": "REST", "url": "https://b.example/in"}, "a", {})
    subscription.change_authentication({"kind": "basic", "username": "u"}, "a", {})
    subscription.change_retry_policy({"retries": 5, "interval_seconds": 300}, "a", {})
    subscription.set_active(False, "a", {})
    subscription.set_active(False, "a", {})
    subscription.set_active(True, "a", {})
    until = datetime.now(UTC) + timedelta(hours=1)
    subscription.rotate_signing_secret("sealed:v1:y", until, "a", {})
    subscription.delete("a", {})
    subscription.delete("a", {})
    assert event_names(subscription) == [
        "Renamed",
        "TriggersChanged",
        "CompleteDataChanged",
        "EndpointChanged",
        "AuthChanged",
        "RetryPolicyChanged",
        "Deactivated",
        "Activated",
        "SigningSecretRotated",
        "Deleted",
    ]
    assert subscription.version == 11
    assert (subscription.name, subscription.deleted, subscription.active) == (
        "Orders v2",
        True,
        False,
    )
    assert subscription.signing_secret == "sealed:v1:y"
    assert subscription.previous_signing_secret == "sealed:v1:x"
    assert subscription.previous_valid_until == until


def test_events_carry_the_actor_and_trace() -> None:
    subscription = new_subscription()
    subscription.rename("Other", "someone", TRACE)
    created, renamed = subscription.collect_events()
    assert (created.actor, renamed.actor) == ("tester", "someone")  # type: ignore[attr-defined]
    assert renamed.trace == TRACE  # type: ignore[attr-defined]


@pytest.fixture
def app() -> Iterator[Subscriptions]:
    subscriptions = Subscriptions(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        secrets=SecretBox([new_key()]),
        policy=Policy(),
    )
    yield subscriptions
    subscriptions.close()


def spec(name: str = "Orders", **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "entity": "Object",
        "triggers": TRIGGERS,
        "webhook": {"type": "REST", "url": "https://hooks.example.com/in"},
        "authentication": {"kind": "basic", "username": "erp", "password": "pw-unit-1"},
        **overrides,
    }


def test_create_seals_secrets_and_reserves_the_name(app: Subscriptions) -> None:
    subscription, signing_secret = app.create_subscription(ACME, spec())
    assert signing_secret.startswith("whsec_")
    stored = app.get_subscription("acme", str(subscription.id))
    assert stored.name == "Orders"
    assert stored.retry_policy == {"retries": 3, "interval_seconds": 300}
    password = stored.authentication["password"]
    assert is_sealed(password) and app.secrets.open(password) == "pw-unit-1"
    assert app.secrets.open(stored.signing_secret) == signing_secret
    with pytest.raises(NameTaken):
        app.create_subscription(ACME, spec(" ORDERS "))
    app.create_subscription(GLOBEX, spec("orders"))  # another tenant's names are its own
    with pytest.raises(NotFound):
        app.get_subscription("globex", str(subscription.id))


def test_a_rejected_create_saves_nothing(app: Subscriptions) -> None:
    with pytest.raises(InvalidField) as caught:
        app.create_subscription(ACME, spec(retry_policy={"retries": 7}))
    assert caught.value.field == "retry_policy.retries"
    assert app.recorder.max_notification_id() in (None, 0)
    app.create_subscription(ACME, spec())  # the name is still free


def test_update_is_partial_and_keeps_omitted_secrets(app: Subscriptions) -> None:
    subscription, _ = app.create_subscription(ACME, spec())
    ident = str(subscription.id)
    updated = app.update_subscription(
        ACME,
        ident,
        {"authentication": {"kind": "basic", "username": "erp2", "password": ""}, "name": ""},
        ["authentication"],
    )
    assert updated.version == 2
    assert updated.name == "Orders"
    assert updated.authentication["username"] == "erp2"
    assert app.secrets.open(updated.authentication["password"]) == "pw-unit-1"
    with pytest.raises(InvalidField) as caught:
        app.update_subscription(ACME, ident, {}, [])
    assert caught.value.field == "update_mask"
    with pytest.raises(InvalidField) as caught:
        app.update_subscription(
            ACME, ident, {"authentication": {"kind": "oauth2_access_token"}}, ["authentication"]
        )
    assert caught.value.field == "authentication.oauth2_access_token.access_token"
    assert app.get_subscription("acme", ident).version == 2


def test_a_stale_version_is_refused(app: Subscriptions) -> None:
    subscription, _ = app.create_subscription(ACME, spec())
    ident = str(subscription.id)
    with pytest.raises(StaleVersion) as caught:
        app.set_active(ACME, ident, False, 3)
    assert caught.value.field == "expected_version"
    assert app.get_subscription("acme", ident).active
    assert not app.set_active(ACME, ident, False, 1).active


def test_renaming_to_a_taken_or_former_name_is_refused(app: Subscriptions) -> None:
    first, _ = app.create_subscription(ACME, spec("First"))
    second, _ = app.create_subscription(ACME, spec("Second"))
    with pytest.raises(NameTaken):
        app.update_subscription(ACME, str(second.id), {"name": "first"}, ["name"])
    app.update_subscription(ACME, str(first.id), {"name": "First v2"}, ["name"])
    with pytest.raises(NameTaken):
        app.update_subscription(ACME, str(second.id), {"name": "FIRST"}, ["name"])
    assert app.get_subscription("acme", str(second.id)).name == "Second"


def test_history_is_every_event_even_after_deletion(app: Subscriptions) -> None:
    subscription, _ = app.create_subscription(ACME, spec())
    ident = str(subscription.id)
    app.set_active(ACME, ident, False, None)
    app.rotate_signing_secret(ACME, ident, 60)
    app.delete_subscription(ACME, ident, None)
    with pytest.raises(NotFound):
        app.get_subscription("acme", ident)
    history = app.history("acme", ident)
    assert [type(e).__name__ for e in history] == [
        "Created",
        "Deactivated",
        "SigningSecretRotated",
        "Deleted",
    ]
    assert {e.actor for e in history} == {"acme-admin"}
    assert all(e.trace == TRACE for e in history)
    with pytest.raises(NotFound):
        app.history("globex", ident)


def test_a_platform_disable_applies_once_and_activation_clears_it() -> None:
    subscription = new_subscription()
    subscription.collect_events()
    verdict_at = subscription.created_on + timedelta(microseconds=1)
    assert subscription.disable_by_platform("the endpoint answered 410 Gone", verdict_at)
    assert not subscription.active
    assert subscription.disabled_reason == "the endpoint answered 410 Gone"
    # A second replica applying the same verdict: already inactive, nothing happens.
    assert not subscription.disable_by_platform("the endpoint answered 410 Gone", verdict_at)
    (disabled,) = subscription.collect_events()
    assert type(disabled).__name__ == "DisabledByPlatform"
    assert (disabled.actor, disabled.reason) == ("platform", "the endpoint answered 410 Gone")  # type: ignore[attr-defined]

    subscription.set_active(True, "acme-admin", {})
    assert subscription.active and subscription.disabled_reason == ""
    assert event_names(subscription) == ["Activated"]
    # The verdict predates the re-activation: the owner has dealt with it.
    assert subscription.health_reset_at == subscription.modified_on > verdict_at
    assert not subscription.disable_by_platform("the endpoint answered 410 Gone", verdict_at)
    later = subscription.modified_on + timedelta(seconds=1)
    assert subscription.disable_by_platform("every attempt failed for 5 days (12 attempts)", later)
    assert subscription.disabled_reason.startswith("every attempt failed")


def test_an_endpoint_change_outdates_earlier_verdicts() -> None:
    subscription = new_subscription()
    before = subscription.created_on + timedelta(microseconds=1)
    subscription.change_endpoint({"type": "REST", "url": "https://b.example/in"}, "a", {})
    assert subscription.health_reset_at == subscription.modified_on
    assert not subscription.disable_by_platform("the endpoint answered 410 Gone", before)
    assert subscription.active
    # An inactive webhook is not disabled again (its owner deactivated it).
    subscription.set_active(False, "a", {})
    assert not subscription.disable_by_platform("gone", datetime.now(UTC) + timedelta(hours=1))
    assert subscription.disabled_reason == ""


def test_the_application_applies_a_disable_idempotently(app: Subscriptions) -> None:
    subscription, _ = app.create_subscription(ACME, spec())
    ident = str(subscription.id)
    decided = datetime.now(UTC) + timedelta(seconds=1)
    assert app.disable_by_platform("acme", ident, "the endpoint answered 410 Gone", decided)
    assert not app.disable_by_platform("acme", ident, "the endpoint answered 410 Gone", decided)
    assert not app.disable_by_platform("globex", ident, "x", decided)  # another tenant's: absent
    stored = app.get_subscription("acme", ident)
    assert (stored.active, stored.disabled_reason) == (False, "the endpoint answered 410 Gone")
    history = app.history("acme", ident)
    assert [type(e).__name__ for e in history] == ["Created", "DisabledByPlatform"]
    assert app.set_active(ACME, ident, True, None).active
    assert [type(e).__name__ for e in app.history("acme", ident)][-1] == "Activated"
    app.delete_subscription(ACME, ident, None)
    assert not app.disable_by_platform("acme", ident, "x", decided + timedelta(hours=1))


def test_a_rotation_records_its_own_time_not_the_previous_change() -> None:
    subscription = new_subscription()
    until = datetime.now(UTC) + timedelta(hours=1)
    subscription.rotate_signing_secret("sealed:v1:y", until, "a", {})
    first = subscription.collect_events()[-1]
    assert subscription.secret_rotated_at == first.timestamp == subscription.modified_on
    assert subscription.secret_rotated_at != subscription.created_on
    subscription.rotate_signing_secret("sealed:v1:z", until, "a", {})
    second = subscription.collect_events()[-1]
    assert subscription.secret_rotated_at == second.timestamp != first.timestamp


def test_a_stored_rotation_reads_back_with_its_own_time(app: Subscriptions) -> None:
    subscription, _ = app.create_subscription(ACME, spec())
    ident = str(subscription.id)
    app.rotate_signing_secret(ACME, ident, 60)
    rotated = app.history("acme", ident)[-1]
    stored = app.get_subscription("acme", ident)
    assert stored.secret_rotated_at == rotated.timestamp != stored.created_on
