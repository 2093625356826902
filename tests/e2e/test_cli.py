"""The CLI round trip on a running ``webhooks up``: create, list, update, activate and
deactivate, delete, history with secrets masked, one-line errors, and data that survives
a restart. Nothing is delivered here, so the URLs are https://example.com/..."""

from __future__ import annotations

import base64
import datetime
import re
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import Platform

PASSWORD = "basic-pw-" + uuid.uuid4().hex
CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex
ACTIVITY_TRIGGER = (
    "OnNewActivity:activity_types=StatusChange,Remark;channels=WhatsApp,4;"
    "status_changes=Open>Resolved,>Archive"
)


def unique(name: str) -> str:
    # Names stay taken after a delete, and the module shares one platform.
    return f"{name} {uuid.uuid4().hex[:8]}"


def create_rest_basic(platform: Platform, name: str, *extra: str) -> dict[str, Any]:
    created: dict[str, Any] = platform.run_json(
        "subscriptions",
        "create",
        *("--name", name, "--entity", "Object"),
        *("--trigger", ACTIVITY_TRIGGER, "--trigger", "OnNew:channels=Mail"),
        *("--type", "rest", "--url", "https://example.com/hooks/crm"),
        *("--auth", "basic", "--username", "crm", "--password", PASSWORD),
        *("--retries", "2", "--interval", "120"),
        *extra,
    )
    return created


def error_line(result: Any) -> str:
    """The single stderr line of a failed command."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    line: str = lines[0]
    return line


def test_create_rest_basic_and_soap_oauth_then_list(platform: Platform) -> None:
    rest_name, soap_name = unique("CRM sync"), unique("User directory")
    rest = create_rest_basic(platform, rest_name)
    assert rest["signing_secret"]
    sub = rest["subscription"]
    assert (sub["name"], sub["entity"], sub["active"]) == (rest_name, "Object", True)
    assert [t["trigger"] for t in sub["triggers"]] == ["OnNewActivity", "OnNew"]
    assert sorted(sub["triggers"][0]["activity_types"]) == [1, 2]
    assert sub["webhook"]["url"] == "https://example.com/hooks/crm"
    assert sub["authentication"]["basic"]["username"] == "crm"
    assert sub["authentication"]["basic"]["password"] == ""  # write-only
    assert sub["authentication"]["basic"]["password_set"] is True
    assert (sub["retry_policy"]["retries"], sub["retry_policy"]["interval_seconds"]) == (2, 120)

    result = platform.run_cli(
        *("subscriptions", "create", "--name", soap_name, "--entity", "User"),
        *("--trigger", "OnNew", "--url", "https://example.com/soap/users", "--type", "soap"),
        *("--soap-operation", "NotifyUser", "--soap-namespace", "https://example.com/ns"),
        *("--auth", "oauth2-client-credentials", "--token-url", "https://example.com/token"),
        *("--client-id", "svc", "--client-secret", "-", "--json"),
        input=CLIENT_SECRET + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert CLIENT_SECRET not in result.stdout
    assert "shown only this once" in result.stderr

    listed = platform.run_json("subscriptions", "list", "--name-contains", rest_name[-8:])
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]]
    row = listed["subscriptions"][0]
    for key in ("name", "entity", "triggers", "webhook", "created_at", "updated_at", "active"):
        assert key in row, key
    assert row["webhook"]["url"] == "https://example.com/hooks/crm"

    table = platform.run_cli("subscriptions", "list", "--order", "name")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        *("NAME", "ENTITY", "TRIGGERS", "URL", "CREATED", "MODIFIED", "ACTIVE"),
        *("HEALTH", "FAILURES", "ID"),
    ]
    rest_row = next(r for r in rows if rest_name in r)
    assert "Object" in rest_row and "https://example.com/hooks/crm" in rest_row
    # Triggers in display names (--json keeps the ids, above).
    assert "On New Activity (channels: Mail, WhatsApp; activity types: Remark," in rest_row
    assert "On New (channels: Mail)" in rest_row
    assert "yes" in rest_row and sub["id"] in rest_row
    assert any(soap_name in r and "User" in r for r in rows)


def test_soap_with_oauth_client_credentials_is_stored(platform: Platform) -> None:
    name = unique("SOAP users")
    created = platform.run_cli(
        *("subscriptions", "create", "--name", name, "--entity", "User", "--trigger", "OnNew"),
        *("--url", "https://example.com/soap", "--soap-operation", "NotifyUser"),
        *("--soap-namespace", "https://example.com/ns", "--soap-version", "1.2"),
        *("--soap-param", "Source=webhooks", "--auth", "oauth2-client-credentials"),
        *("--token-url", "https://example.com/token", "--scope", "hooks"),
        *("--client-id", "svc", "--client-secret", CLIENT_SECRET, "--json"),
    )
    assert created.returncode == 0, created.stderr
    got = platform.run_json("subscriptions", "get", name_to_id(platform, name))
    assert got["webhook"]["type"] == "WEBHOOK_TYPE_SOAP"
    assert got["webhook"]["soap"]["operation"] == "NotifyUser"
    assert got["webhook"]["soap"]["parameters"] == [{"name": "Source", "value": "webhooks"}]
    credentials = got["authentication"]["oauth2_client_credentials"]
    assert (credentials["client_id"], credentials["scope"]) == ("svc", "hooks")
    assert credentials["client_secret"] == "" and credentials["client_secret_set"] is True
    shown = platform.run_cli("subscriptions", "get", got["id"])
    assert shown.returncode == 0 and CLIENT_SECRET not in shown.stdout
    assert "oauth2-client-credentials" in shown.stdout


def name_to_id(platform: Platform, name: str) -> str:
    listed = platform.run_json("subscriptions", "list", "--name-contains", name, "--all")
    matches = [s["id"] for s in listed["subscriptions"] if s["name"] == name]
    assert len(matches) == 1, listed
    return str(matches[0])


def test_update_rename_and_url_show_in_get_and_list(platform: Platform) -> None:
    old, new = unique("Before"), unique("After")
    sub = create_rest_basic(platform, old)["subscription"]
    updated = platform.run_json(
        "subscriptions", "update", sub["id"], "--name", new, "--url", "https://example.com/v2"
    )
    assert (updated["name"], updated["webhook"]["url"]) == (new, "https://example.com/v2")
    assert updated["version"] > sub["version"]
    # what was not given is kept
    assert updated["authentication"]["basic"]["username"] == "crm"
    assert updated["retry_policy"]["retries"] == 2
    got = platform.run_json("subscriptions", "get", sub["id"])
    assert (got["name"], got["webhook"]["url"]) == (new, "https://example.com/v2")
    listed = platform.run_json("subscriptions", "list", "--name-contains", new)
    assert [(s["id"], s["webhook"]["url"]) for s in listed["subscriptions"]] == [
        (sub["id"], "https://example.com/v2")
    ]
    assert platform.run_json("subscriptions", "list", "--name-contains", old)["subscriptions"] == []


def test_deactivate_then_activate(platform: Platform) -> None:
    sub = create_rest_basic(platform, unique("Toggle"))["subscription"]
    assert platform.run_json("subscriptions", "deactivate", sub["id"])["active"] is False
    assert platform.run_json("subscriptions", "get", sub["id"])["active"] is False
    inactive = platform.run_json("subscriptions", "list", "--inactive", "--all")
    assert sub["id"] in [s["id"] for s in inactive["subscriptions"]]
    assert platform.run_json("subscriptions", "activate", sub["id"])["active"] is True
    active = platform.run_json("subscriptions", "list", "--active", "--all")
    assert sub["id"] in [s["id"] for s in active["subscriptions"]]


def test_rate_limit_health_and_enable(platform: Platform) -> None:
    """--rate-limit on create and update, the health a new webhook shows (list, get,
    --json), and enable as activate."""
    sub = create_rest_basic(platform, unique("Limited"), "--rate-limit", "25")["subscription"]
    assert sub["webhook"]["rate_limit_per_second"] == 25
    shown = platform.run_cli("subscriptions", "get", sub["id"])
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^rate limit +25 per second$", shown.stdout, re.MULTILINE), shown.stdout
    assert re.search(r"^health +healthy$", shown.stdout, re.MULTILINE), shown.stdout
    got = platform.run_json("subscriptions", "get", sub["id"])
    assert got["health"]["state"] == "HEALTH_STATE_HEALTHY", got.get("health")
    updated = platform.run_json("subscriptions", "update", sub["id"], "--rate-limit", "0")
    assert updated["webhook"]["rate_limit_per_second"] == 0
    assert updated["webhook"]["url"] == "https://example.com/hooks/crm", "the rest kept"
    refused = platform.run_cli("subscriptions", "update", sub["id"], "--rate-limit", "10001")
    assert refused.returncode == 1 and "webhook.rate_limit_per_second" in error_line(refused)
    table = platform.run_cli("subscriptions", "list", "--name-contains", sub["name"])
    header, row = table.stdout.splitlines()
    assert row[header.index("HEALTH") :].startswith("healthy"), table.stdout
    listed = platform.run_json("subscriptions", "list", "--name-contains", sub["name"])
    assert listed["subscriptions"][0]["health"]["state"] == "HEALTH_STATE_HEALTHY"
    assert platform.run_json("subscriptions", "deactivate", sub["id"])["active"] is False
    assert platform.run_json("subscriptions", "enable", sub["id"])["active"] is True


def test_delete_then_get_is_not_found(platform: Platform) -> None:
    sub = create_rest_basic(platform, unique("Doomed"))["subscription"]
    refused = platform.run_cli("subscriptions", "delete", sub["id"])  # no TTY, no --yes
    assert refused.returncode == 2 and "--yes" in error_line(refused)
    deleted = platform.run_cli("subscriptions", "delete", sub["id"], "--yes")
    assert deleted.returncode == 0, deleted.stderr
    gone = platform.run_cli("subscriptions", "get", sub["id"])
    assert gone.returncode == 1
    assert error_line(gone).startswith("error: NOT_FOUND: ")
    assert gone.stdout == ""


def test_history_is_past_tense_in_order_with_secrets_masked(platform: Platform) -> None:
    sub = create_rest_basic(platform, unique("Audited"))["subscription"]
    new_password = "second-" + PASSWORD
    steps = [
        ("update", sub["id"], "--name", unique("Audited renamed")),
        ("update", sub["id"], "--password", new_password),
        ("deactivate", sub["id"]),
        ("activate", sub["id"]),
    ]
    for step in steps:
        result = platform.run_cli("subscriptions", *step)
        assert result.returncode == 0, result.stderr
    history = platform.run_json("subscriptions", "history", sub["id"])
    entries = history["entries"]
    assert [e["event_type"] for e in entries] == [
        *("Created", "Renamed", "AuthChanged", "Deactivated", "Activated")
    ]
    versions = [int(e["version"]) for e in entries]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert all(e["actor"] == "dev" for e in entries)
    table = platform.run_cli("subscriptions", "history", sub["id"])
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["VERSION", "TIME", "EVENT", "ACTOR", "CHANGES"]
    for output in (platform.run_cli("subscriptions", "history", sub["id"], "--json"), table):
        everything = output.stdout + output.stderr
        assert PASSWORD not in everything and new_password not in everything
    assert "Renamed" in table.stdout and "AuthChanged" in table.stdout


def test_rotate_secret_prints_a_new_secret_once(platform: Platform) -> None:
    created = create_rest_basic(platform, unique("Rotated"))
    rotated = platform.run_json("subscriptions", "rotate-secret", created["subscription"]["id"])
    assert rotated["signing_secret"] and rotated["signing_secret"] != created["signing_secret"]
    got = platform.run_cli("subscriptions", "get", created["subscription"]["id"])
    assert rotated["signing_secret"] not in got.stdout


def test_bad_input_is_one_line_naming_the_field(platform: Platform) -> None:
    retries = platform.run_cli(
        *("subscriptions", "create", "--name", unique("Bad"), "--entity", "Object"),
        *("--trigger", "OnNew", "--url", "https://example.com/x", "--retries", "7"),
    )
    assert retries.returncode == 1
    line = error_line(retries)
    assert line.startswith("error: INVALID_ARGUMENT: ") and "retry_policy.retries" in line
    http = platform.run_cli(
        *("subscriptions", "create", "--name", unique("Bad"), "--entity", "Object"),
        *("--trigger", "OnNew", "--url", "http://example.com/x"),
    )
    assert http.returncode == 1 and "webhook.url" in error_line(http)
    trigger = platform.run_cli(
        *("subscriptions", "create", "--name", unique("Bad"), "--entity", "Object"),
        *("--trigger", "OnNew:channels=Pigeon", "--url", "https://example.com/x"),
    )
    assert trigger.returncode == 2 and "OnNew:channels=Pigeon" in error_line(trigger)
    unknown = platform.run_cli("subscriptions", "get", str(uuid.uuid4()))
    assert unknown.returncode == 1 and "NOT_FOUND" in error_line(unknown)


def test_test_resolves_a_name_and_says_so_when_there_is_none(platform: Platform) -> None:
    missing = unique("No such webhook")
    unknown = platform.run_cli("subscriptions", "test", missing)
    assert unknown.returncode == 1
    assert error_line(unknown) == f"error: no subscription named {missing!r}"


def test_name_contains_keeps_the_text_as_typed(platform: Platform) -> None:
    tag = uuid.uuid4().hex[:8]
    spaced = create_rest_basic(platform, f"{tag} R side")["subscription"]
    create_rest_basic(platform, f"{tag} Rx")
    found = platform.run_json("subscriptions", "list", "--name-contains", f"{tag} R ")
    assert [s["id"] for s in found["subscriptions"]] == [spaced["id"]]
    both = platform.run_json("subscriptions", "list", "--name-contains", f"{tag} R")
    assert len(both["subscriptions"]) == 2
    # Only an all-blank text is no filter at all.
    everything = platform.run_json("subscriptions", "list", "--name-contains", "  ")
    assert len(everything["subscriptions"]) >= 2


def test_every_refused_field_is_a_line_of_its_own(platform: Platform) -> None:
    refused = platform.run_cli(
        *("subscriptions", "create", "--name", " ", "--entity", "Objekt"),
        *("--trigger", "OnNew", "--url", "http://example.com/x", "--retries", "7"),
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    first, *fields = refused.stderr.splitlines()
    assert first == f"error: INVALID_ARGUMENT: {len(fields)} fields to correct:"
    named = [line.strip().split(":")[0] for line in fields]
    expected = ("name", "entity", "webhook.url", "retry_policy.retries")
    assert {f"subscription.{name}" for name in expected} <= set(named), fields


def test_a_wrong_token_or_address_is_one_clear_line(platform: Platform) -> None:
    wrong = platform.run_cli("--token", "not-a-token", "subscriptions", "list")
    assert wrong.returncode == 1 and "UNAUTHENTICATED" in error_line(wrong)
    away = platform.run_cli("--address", "127.0.0.1:1", "subscriptions", "list")
    assert away.returncode == 1
    assert "not reachable at 127.0.0.1:1" in error_line(away) and "webhooks up" in away.stderr


def test_catalogue_and_certificates_list(platform: Platform) -> None:
    catalogue = platform.run_json("catalogue")
    assert "Object" in [e["name"] for e in catalogue["entities"]]
    table = platform.run_cli("catalogue", "--values")
    assert table.returncode == 0 and "OnNewActivity" in table.stdout and "WhatsApp" in table.stdout
    assert "certificates" in platform.run_json("certificates", "list")


def test_a_second_up_on_the_same_data_dir_keeps_subscriptions(platform: Platform) -> None:
    sub = create_rest_basic(platform, unique("Durable"))["subscription"]
    token = platform.token
    assert platform.stop() == 0, platform.log()
    platform.start()
    assert platform.token == token
    got = platform.run_json("subscriptions", "get", sub["id"])
    assert (got["name"], got["version"]) == (sub["name"], sub["version"])
    listed = platform.run_json("subscriptions", "list", "--name-contains", sub["name"])
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]]


def test_certificates_upload_use_and_delete(platform: Platform, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    name = unique("mtls")
    uploaded = platform.run_json(
        *("certificates", "upload", "--name", name),
        *("--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem")),
    )
    assert uploaded["subject"] == "CN=client.example.com"
    table = platform.run_cli("certificates", "list")
    assert table.stdout.splitlines()[0].split() == ["ID", "NAME", "SUBJECT", "EXPIRES"]
    assert any(uploaded["id"] in row and name in row for row in table.stdout.splitlines())
    sub = create_rest_basic(platform, unique("With mTLS"), "--certificate", uploaded["id"])
    assert sub["subscription"]["webhook"]["client_certificate_id"] == uploaded["id"]
    in_use = platform.run_cli("certificates", "delete", uploaded["id"])
    assert in_use.returncode == 1 and "FAILED_PRECONDITION" in error_line(in_use)
    detached = platform.run_cli(
        "subscriptions", "update", sub["subscription"]["id"], "--certificate", ""
    )
    assert detached.returncode == 0, detached.stderr
    deleted = platform.run_cli("certificates", "delete", uploaded["id"])
    assert deleted.returncode == 0, deleted.stderr
    remaining = platform.run_json("certificates", "list")["certificates"]
    assert uploaded["id"] not in [c["id"] for c in remaining]


def test_json_numbers_failure_counts_health_and_secret_key(platform: Platform) -> None:
    """--json everywhere: 64-bit integers as numbers, the listing's FAILURES column, and
    health and secret-key answering in JSON."""
    sub = create_rest_basic(platform, unique("Scripted"))["subscription"]
    assert isinstance(sub["version"], int) and sub["version"] >= 1
    got = platform.run_json("subscriptions", "get", sub["id"])
    assert got["version"] == sub["version"]
    (listed,) = platform.run_json("subscriptions", "list", "--name-contains", sub["name"])[
        "subscriptions"
    ]
    assert listed["failures"] == {"failed_attempts": 0, "failed_events": 0}
    entries = platform.run_json("subscriptions", "history", sub["id"])["entries"]
    assert all(isinstance(e["version"], int) for e in entries), entries
    assert not whole_floats([e["changes"] for e in entries]), entries  # 2, not 2.0

    for service in ("subscriptions", "console"):
        health = platform.run_json("health", service)
        address = platform.addresses[service]
        assert health == {"service": service, "address": address, "status": "SERVING"}
    key = platform.run_json("secret-key")["key"]
    assert len(base64.urlsafe_b64decode(key)) == 32  # a Fernet key


def whole_floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value] if value.is_integer() else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [found for item in items for found in whole_floats(item)]
