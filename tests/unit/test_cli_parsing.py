"""The CLI without a service: trigger SPECs both ways, building create and update requests
(the update_mask), secrets from files and stdin, token resolution, one-line errors."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from webhooks.v1.common_pb2 import (
    Authentication,
    BasicAuth,
    SoapSettings,
    SoapVersion,
    StatusChange,
    TriggerSpec,
    Webhook,
    WebhookType,
)
from webhooks.v1.subscriptions_pb2 import Subscription
from webhooks_catalogue.proto import catalogue_message
from webhooks_cli.client import resolve_token
from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.main import main, parse_args
from webhooks_cli.output import table
from webhooks_cli.spec import create_spec, update_spec
from webhooks_client.triggers import (
    CatalogueNames,
    TriggerSyntaxError,
    format_trigger,
    parse_trigger,
)
from webhooks_config import load_settings

NAMES = CatalogueNames.from_catalogue(catalogue_message())
CREATE = ["subscriptions", "create", "--name", "n", "--entity", "Object", "--trigger", "OnNew"]


def no_stdin() -> str:
    raise AssertionError("stdin must not be read")


# --- trigger SPEC ---------------------------------------------------------------------------


def test_a_bare_trigger_has_no_components() -> None:
    assert parse_trigger("OnNew") == TriggerSpec(trigger="OnNew")
    assert parse_trigger(" OnNew: ") == TriggerSpec(trigger="OnNew")


def test_components_take_names_or_ids_case_insensitively() -> None:
    spec = "OnNewActivity:activity_types=StatusChange,remark;channels=WhatsApp,7,mail;"
    spec += "status_changes=Open>Resolved,>Archive"
    assert parse_trigger(spec) == TriggerSpec(
        trigger="OnNewActivity",
        activity_types=[2, 1],
        channels=[7, 7, 4],
        status_changes=[
            StatusChange(from_status=1, to_status=2),
            StatusChange(from_status=0, to_status=14),
        ],
    )


def test_status_changes_accept_the_catalogue_arrow_and_any() -> None:
    trigger = parse_trigger("OnNewActivity:status_changes=Open->2,any>Archive,Pending")
    assert [(c.from_status, c.to_status) for c in trigger.status_changes] == [
        (1, 2),
        (0, 14),
        (0, 15),
    ]


def test_whatsapp_components() -> None:
    spec = "OnMessageStatus:whatsapp_channels=ch1,ch2;whatsapp_statuses=Read,failed"
    trigger = parse_trigger(spec)
    assert list(trigger.whatsapp_channels) == ["ch1", "ch2"]
    assert list(trigger.whatsapp_statuses) == ["read", "failed"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "trigger name"),
        (":channels=1", "trigger name"),
        ("OnNew:channels=Pigeon", "Pigeon"),
        ("OnNew:colours=red", "components: channels"),
        ("OnNew:channels", "COMPONENT=VALUES"),
        ("OnNew:channels=", "no values"),
        ("OnNew:channels=1;channels=2", "twice"),
        ("OnNewActivity:activity_types=Sleeping", "Sleeping"),
        ("OnNewActivity:status_changes=Open>", "target status"),
        ("OnNewActivity:status_changes=Nowhere>Open", "Nowhere"),
        ("OnMessageStatus:whatsapp_statuses=lost", "lost"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(TriggerSyntaxError, match=says):
        parse_trigger(spec)


@pytest.mark.parametrize(
    "trigger",
    [
        TriggerSpec(trigger="OnNew"),
        TriggerSpec(trigger="OnNew", channels=[0, 7, 17]),
        TriggerSpec(
            trigger="OnNewActivity",
            channels=[4],
            activity_types=[2, 1],
            status_changes=[StatusChange(from_status=1, to_status=2), StatusChange(to_status=14)],
        ),
        TriggerSpec(
            trigger="OnMessageStatus", whatsapp_channels=["c1"], whatsapp_statuses=["read"]
        ),
    ],
)
def test_format_then_parse_gives_the_same_trigger(trigger: TriggerSpec) -> None:
    assert parse_trigger(format_trigger(trigger, NAMES)) == trigger
    assert parse_trigger(format_trigger(trigger)) == trigger  # ids only


def test_format_uses_catalogue_names() -> None:
    trigger = TriggerSpec(
        trigger="OnNewActivity",
        channels=[7],
        activity_types=[2],
        status_changes=[StatusChange(from_status=1, to_status=2), StatusChange(to_status=14)],
    )
    assert format_trigger(trigger, NAMES) == (
        "OnNewActivity:channels=WhatsApp;activity_types=StatusChange;"
        "status_changes=Open>Resolved,>Archive"
    )


# --- create ---------------------------------------------------------------------------------


def test_create_rest_with_basic_auth() -> None:
    args = parse_args(
        [
            *CREATE,
            "--trigger",
            "OnNewChild:channels=Mail",
            "--url",
            "https://example.com/hook",
            "--auth",
            "basic",
            "--username",
            "u",
            "--password",
            "p",
            "--retries",
            "2",
            "--complete-data",
        ]
    )
    spec = create_spec(args, no_stdin)
    assert spec.name == "n" and spec.entity == "Object"
    assert [t.trigger for t in spec.triggers] == ["OnNew", "OnNewChild"]
    assert spec.include_complete_data is True
    assert spec.webhook == Webhook(
        type=WebhookType.WEBHOOK_TYPE_REST, url="https://example.com/hook"
    )
    assert spec.authentication == Authentication(basic=BasicAuth(username="u", password="p"))
    assert spec.retry_policy.retries == 2
    assert not spec.retry_policy.HasField("interval_seconds")


def test_create_soap_with_client_credentials_secret_from_stdin() -> None:
    args = parse_args(
        [
            *CREATE,
            "--url",
            "https://example.com/soap",
            "--soap-operation",
            "Notify",
            "--soap-namespace",
            "urn:x",
            "--soap-version",
            "1.2",
            "--soap-param",
            "Key=a=b",
            "--auth",
            "oauth2-client-credentials",
            "--token-url",
            "https://example.com/token",
            "--client-id",
            "cid",
            "--client-secret",
            "-",
        ]
    )
    spec = create_spec(args, lambda: "from-stdin\n")
    assert spec.webhook.type == WebhookType.WEBHOOK_TYPE_SOAP  # implied by the SOAP flags
    assert spec.webhook.soap.version == SoapVersion.SOAP_VERSION_1_2
    assert [(p.name, p.value) for p in spec.webhook.soap.parameters] == [("Key", "a=b")]
    credentials = spec.authentication.oauth2_client_credentials
    assert (credentials.client_id, credentials.client_secret) == ("cid", "from-stdin")


def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    args = parse_args(
        [
            *(*CREATE, "--url", "https://e.com", "--auth", "basic", "--username", "u"),
            *("--password-file", str(tmp_path / "pw")),
        ]
    )
    assert create_spec(args, no_stdin).authentication.basic.password == "s3cret"


def test_only_one_secret_can_come_from_stdin() -> None:
    args = parse_args(
        [
            *(*CREATE, "--url", "https://e.com", "--auth", "oauth2-password"),
            *("--password", "-", "--client-secret", "-"),
        ]
    )
    with pytest.raises(UsageError, match="both read stdin"):
        create_spec(args, lambda: "x")


def test_a_flag_of_another_auth_kind_is_a_usage_error() -> None:
    args = parse_args([*CREATE, "--url", "https://e.com", "--auth", "basic", "--client-id", "c"])
    with pytest.raises(UsageError, match="--client-id is not used by --auth basic"):
        create_spec(args, no_stdin)
    args = parse_args([*CREATE, "--url", "https://e.com", "--username", "u"])
    with pytest.raises(UsageError, match="--username needs --auth"):
        create_spec(args, no_stdin)


def test_a_bad_trigger_is_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--token", "t", "--address", "127.0.0.1:1", *CREATE, "--url", "https://e.com"]
    argv += ["--trigger", "OnNew:channels=Pigeon"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: --trigger 'OnNew:channels=Pigeon': ")
    assert "Pigeon" in err


# --- update ---------------------------------------------------------------------------------


def current() -> Subscription:
    return Subscription(
        id="s1",
        name="old",
        entity="Object",
        triggers=[TriggerSpec(trigger="OnNew")],
        webhook=Webhook(
            type=WebhookType.WEBHOOK_TYPE_SOAP,
            url="https://old.example.com",
            soap=SoapSettings(operation="Notify", namespace="urn:x"),
            method="POST",
            format="XML",
            content_type="text/xml",
        ),
        authentication=Authentication(
            basic=BasicAuth(username="u", password="", password_set=True)
        ),
        version=7,
    )


def update_args(*flags: str) -> argparse.Namespace:
    return parse_args(["subscriptions", "update", "s1", *flags])


def test_update_mask_names_the_fields_given() -> None:
    spec, mask = update_spec(current(), update_args("--name", "new", "--url", "https://n.com"))
    assert list(mask.paths) == ["name", "webhook"]
    assert spec.name == "new"
    # --url alone keeps the rest of the webhook, without the output-only fields
    assert spec.webhook == Webhook(
        type=WebhookType.WEBHOOK_TYPE_SOAP,
        url="https://n.com",
        soap=SoapSettings(operation="Notify", namespace="urn:x"),
    )


def test_update_mask_in_canonical_order_for_every_group() -> None:
    flags = ["--retries", "1", "--password", "p", "--no-complete-data", "--trigger", "OnNew"]
    flags += ["--entity", "User", "--type", "rest", "--name", "x"]
    _, mask = update_spec(current(), update_args(*flags))
    assert list(mask.paths) == [
        "name",
        "entity",
        "triggers",
        "include_complete_data",
        "webhook",
        "authentication",
        "retry_policy",
    ]


def test_update_secret_alone_keeps_the_kind_and_other_fields() -> None:
    spec, mask = update_spec(current(), update_args("--password", "new"))
    assert list(mask.paths) == ["authentication"]
    assert spec.authentication == Authentication(basic=BasicAuth(username="u", password="new"))


def test_update_without_a_secret_sends_it_empty_and_unset() -> None:
    spec, _ = update_spec(current(), update_args("--username", "v"))
    # empty + same kind = "keep the stored password"; password_set is output-only
    assert spec.authentication == Authentication(basic=BasicAuth(username="v"))


def test_update_to_rest_drops_the_soap_settings() -> None:
    spec, _ = update_spec(current(), update_args("--type", "rest"))
    assert spec.webhook == Webhook(
        type=WebhookType.WEBHOOK_TYPE_REST, url="https://old.example.com"
    )


def test_update_auth_none_and_retries_keep_the_interval() -> None:
    sub = current()
    sub.retry_policy.retries = 3
    sub.retry_policy.interval_seconds = 60
    spec, mask = update_spec(sub, update_args("--auth", "none", "--retries", "5"))
    assert list(mask.paths) == ["authentication", "retry_policy"]
    assert spec.authentication.WhichOneof("kind") == "none"
    assert (spec.retry_policy.retries, spec.retry_policy.interval_seconds) == (5, 60)


def test_update_with_nothing_to_change_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nothing to update"):
        update_spec(current(), update_args("--expected-version", "3"))


# --- token, options, output -------------------------------------------------------------------


def test_token_resolution_order(tmp_path: Path) -> None:
    settings = replace(load_settings({}), data_dir=tmp_path)
    with pytest.raises(CliError, match="run `webhooks up`") as missing:
        resolve_token(None, settings)
    assert str(tmp_path / "dev-token") in missing.value.message
    settings.dev_token_file.write_text("dev-token-value\n")
    assert resolve_token(None, settings) == "dev-token-value"
    from_env = load_settings({"WEBHOOKS_TOKEN": "env-token", "WEBHOOKS_DATA_DIR": str(tmp_path)})
    assert resolve_token(None, from_env) == "env-token"
    assert resolve_token("flag-token", from_env) == "flag-token"


def test_missing_token_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "subscriptions", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no token" in err


def test_global_options_go_before_or_after_the_command() -> None:
    before = parse_args(["--json", "--tenant", "acme", "subscriptions", "get", "x"])
    after = parse_args(["subscriptions", "get", "x", "--json", "--tenant", "acme"])
    for args in (before, after):
        assert (args.json, args.tenant, args.token, args.id) == (True, "acme", None, "x")


def test_unreachable_service_suggests_webhooks_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--token", "t", "--address", "127.0.0.1:1", "subscriptions", "get", "x"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: the subscriptions service is not reachable at 127.0.0.1:1 "
        "(start the platform with `webhooks up`, or pass --address)\n"
    )


def test_unknown_service_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "teapot"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown service 'teapot'")


def test_table_aligns_columns() -> None:
    assert table(("A", "LONGER"), [("xyz", "1"), ("", "22")]) == "A    LONGER\nxyz  1\n     22"
