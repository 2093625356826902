"""The NATS permission table (webhooks_messaging.permissions) and what is made of it: the
nkeys and the nats-server configuration (webhooks_messaging.auth), and how a service is
told its credential (webhooks_messaging.connection). What each user may do against a
running server is tested in tests/e2e/test_nats_auth.py; here, the table's own rules."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.nats_server import nats_server_binary
from webhooks_config import ConfigError, load_settings
from webhooks_messaging import auth as nats_auth
from webhooks_messaging import deadletters
from webhooks_messaging.connection import credential_options, tls_context
from webhooks_messaging.permissions import (
    ADMIN_USER,
    HEALTH_BUCKETS,
    PUBLISHER_USER,
    ROUTER_BULK_DURABLE,
    ROUTER_DURABLE,
    SENDER_BULK_DURABLE,
    SENDER_DURABLE,
    SERVICE_USERS,
    USERS,
    WEBHOOK_EVENT_SUBJECTS,
    inbox_prefix,
    permission_table,
    user_of_connection,
)
from webhooks_router.consumer import BULK_DURABLE as ROUTER_BULK_CONSUMER
from webhooks_router.consumer import DURABLE as ROUTER_CONSUMER
from webhooks_sender.consumer import BULK_DURABLE as SENDER_BULK_CONSUMER
from webhooks_sender.consumer import DURABLE as SENDER_CONSUMER

TABLE = permission_table()


def publishers_of(subject: str) -> set[str]:
    return {user for user, p in TABLE.items() if subject in p.publish}


def test_the_publisher_writes_events_and_reads_its_acknowledgements_only() -> None:
    publisher = TABLE[PUBLISHER_USER]
    assert publisher.publish == ("events.>",)
    assert publisher.subscribe == ("_INBOX.>",)
    # Not the platform's own events about webhooks (issue 15, loop rule 4).
    assert publisher.publish_deny == (WEBHOOK_EVENT_SUBJECTS,) == ("events.*.Webhook.>",)


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` one or more at the end."""
    want, got = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(got) > index
        if index >= len(got) or token not in ("*", got[index]):
            return False
    return len(want) == len(got)


def may_publish(user: str, subject: str) -> bool:
    allowed = TABLE[user]
    return any(matches(p, subject) for p in allowed.publish) and not any(
        matches(p, subject) for p in allowed.publish_deny
    )


# What nats-py's KV calls send (nats/js/kv.py, manager.py, client.py) for the bucket WEBHOOK_HEALTH.
KV_CALLS = [
    "$JS.API.STREAM.INFO.KV_WEBHOOK_HEALTH",  # js.key_value, kv.status
    "$JS.API.STREAM.CREATE.KV_WEBHOOK_HEALTH",  # js.create_key_value
    "$JS.API.STREAM.UPDATE.KV_WEBHOOK_HEALTH",
    "$KV.WEBHOOK_HEALTH.acme.3f6c2b1e",  # put, update(last=), create, delete, purge
    "$JS.API.DIRECT.GET.KV_WEBHOOK_HEALTH.$KV.WEBHOOK_HEALTH.acme.3f6c2b1e",  # get (direct)
    "$JS.API.DIRECT.GET.KV_WEBHOOK_HEALTH",  # get of a revision (direct)
    "$JS.API.STREAM.MSG.GET.KV_WEBHOOK_HEALTH",  # get without direct gets
    "$JS.API.CONSUMER.CREATE.KV_WEBHOOK_HEALTH",  # watch: an ordered push consumer
    "$JS.API.CONSUMER.CREATE.KV_WEBHOOK_HEALTH.OC1.$KV.WEBHOOK_HEALTH.>",
    "$JS.API.CONSUMER.INFO.KV_WEBHOOK_HEALTH.OC1",  # the watch's initial count
    "$JS.API.CONSUMER.DELETE.KV_WEBHOOK_HEALTH.OC1",
    "$JS.FC.KV_WEBHOOK_HEALTH.x.y",  # flow control of the watch
]


@pytest.mark.parametrize("bucket", HEALTH_BUCKETS)
def test_sender_and_subscriptions_use_the_health_buckets_and_raise_webhook_events(
    bucket: str,
) -> None:
    calls = [call.replace("WEBHOOK_HEALTH", bucket) for call in KV_CALLS]
    for user in ("sender", "subscriptions"):
        for subject in [*calls, "events.acme.Webhook.OnDisabled"]:
            assert may_publish(user, subject), (user, subject)
        assert not may_publish(user, f"$JS.API.STREAM.DELETE.KV_{bucket}")
        assert not may_publish(user, f"$JS.API.STREAM.PURGE.KV_{bucket}")
    for user in ("router", "failures", PUBLISHER_USER):
        for subject in [*calls, "events.acme.Webhook.OnDisabled"]:
            if user == "router" and subject.startswith("events."):
                continue  # the router stores every event PublishEvents admits (refusing these)
            assert not may_publish(user, subject), (user, subject)
    assert may_publish(PUBLISHER_USER, "events.acme.Object.OnNew")


def test_the_health_buckets_are_named_as_webhooks_health_names_them() -> None:
    health = pytest.importorskip("webhooks_health")
    assert (health.HEALTH_BUCKET, health.NOTICES_BUCKET, health.RATE_BUCKET) == HEALTH_BUCKETS


def test_the_rendered_configuration_denies_the_publisher_webhook_events(tmp_path: Path) -> None:
    text = nats_auth.prepare(tmp_path / "auth").server_config.read_text()
    assert text.count('deny: ["events.*.Webhook.>"]') == 1


def test_each_stream_is_written_by_its_writers_only() -> None:
    assert publishers_of("subscriptions.>") == {"subscriptions"}
    assert publishers_of("events.>") == {"router", PUBLISHER_USER}
    assert publishers_of("deliveries.jobs.>") == {"router", "sender", "failures"}
    assert publishers_of("deliveries.retry.>") == {"sender"}
    assert publishers_of("attempts.>") == {"sender", "failures"}
    assert TABLE[ADMIN_USER].publish == (">",) and TABLE[ADMIN_USER].subscribe == (">",)


def test_no_service_may_delete_purge_or_use_wildcards_beyond_its_own() -> None:
    for user in SERVICE_USERS:
        allowed = TABLE[user]
        for subject in allowed.publish:
            assert subject not in (">", "$JS.API.>", "$JS.>"), (user, subject)
            assert ".STREAM.DELETE." not in subject and ".STREAM.PURGE." not in subject
            assert ".MSG.DELETE." not in subject, (user, subject)
        # Replies only on its own inbox: no service reads another's (nor the publisher's).
        assert allowed.subscribe == (f"{inbox_prefix(user)}.>",), user


def test_the_durable_consumers_are_named_as_the_services_name_them() -> None:
    assert ROUTER_DURABLE == ROUTER_CONSUMER
    assert SENDER_DURABLE == SENDER_CONSUMER
    assert ROUTER_BULK_DURABLE == ROUTER_BULK_CONSUMER
    assert SENDER_BULK_DURABLE == SENDER_BULK_CONSUMER


def test_connections_belong_to_their_service_user() -> None:
    assert user_of_connection("subscriptions-relay") == "subscriptions"
    assert {user_of_connection(u) for u in SERVICE_USERS} == set(SERVICE_USERS)
    assert not inbox_prefix("router").startswith("_INBOX."), "outside the publisher's reach"


def test_the_rendered_configuration_is_what_nats_server_accepts(tmp_path: Path) -> None:
    auth = nats_auth.prepare(tmp_path / "auth")
    text = auth.server_config.read_text()
    checked = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(auth.server_config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    for user in USERS:
        seed = auth.seed_file(user).read_bytes()
        assert nats_auth.public_key(seed) in text
        assert seed.strip().decode() not in text, "no seed in the server's configuration"


def test_seeds_are_private_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "auth"
    first = nats_auth.prepare(directory)
    seeds = {user: first.seed_file(user).read_bytes() for user in USERS}
    assert len(set(seeds.values())) == len(USERS)
    for user in USERS:
        assert seeds[user].startswith(b"SU")
        assert stat.S_IMODE(first.seed_file(user).stat().st_mode) == 0o600
        assert stat.S_IMODE(first.seed_file(user).parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.server_config.stat().st_mode) == 0o600
    os.chmod(directory, 0o755)  # widened by someone: tightened again
    again = nats_auth.prepare(directory)
    assert {user: again.seed_file(user).read_bytes() for user in USERS} == seeds
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_credential_settings(tmp_path: Path) -> None:
    seed = tmp_path / "router.nk"
    seed.write_bytes(nats_auth.new_seed())
    assert credential_options(load_settings({})) == {}
    settings = load_settings({"WEBHOOKS_NATS_NKEY_SEED_FILE": str(seed)})
    assert credential_options(settings) == {"nkeys_seed": str(seed)}
    creds = load_settings({"WEBHOOKS_NATS_CREDENTIALS": str(seed)})
    assert credential_options(creds) == {"user_credentials": str(seed)}
    with pytest.raises(ConfigError, match="WEBHOOKS_NATS_NKEY_SEED_FILE: no such file"):
        credential_options(load_settings({"WEBHOOKS_NATS_NKEY_SEED_FILE": str(tmp_path / "x")}))
    both = {"WEBHOOKS_NATS_NKEY_SEED_FILE": str(seed), "WEBHOOKS_NATS_CREDENTIALS": str(seed)}
    with pytest.raises(ConfigError, match="one, not both"):
        credential_options(load_settings(both))
    assert tls_context(load_settings({})) is None
    with pytest.raises(ConfigError, match="both or neither"):
        tls_context(load_settings({"WEBHOOKS_NATS_TLS_CERT": str(seed)}))


def test_each_service_sets_aside_under_its_own_components_only() -> None:
    def components(user: str) -> set[str]:
        return {s.split(".")[1] for s in TABLE[user].publish if s.startswith("deadletters.")}

    assert components("subscriptions") == {deadletters.RELAY}
    assert components("router") == {deadletters.ROUTER, deadletters.ROUTER_TABLE}
    assert components("sender") == {deadletters.SENDER, deadletters.SENDER_DIRECTORY}
    assert components("failures") == {deadletters.FAILURES_PROJECTOR}
    every = set().union(*(components(u) for u in SERVICE_USERS))
    assert every == set(deadletters.COMPONENTS), "every component writes as some service"
    assert components(PUBLISHER_USER) == set()
