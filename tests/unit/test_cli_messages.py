"""What the CLI says when a command cannot go on (issue 16): a usage error in two lines,
every field a service refused on a line each, an event too large named before anything is
sent; and its tables in display names ("On Message Status", "SOAP fault")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from webhooks.v1 import subscriptions_pb2_grpc
from webhooks.v1.common_pb2 import StatusChange, TriggerSpec
from webhooks.v1.failures_pb2 import FailedEvent
from webhooks.v1.messages_pb2 import AttemptRecord, FailureClass
from webhooks_catalogue.limits import EVENT_DATA_BYTES
from webhooks_cli.failures import attempt_row, error_text, failed_event_row
from webhooks_cli.main import main
from webhooks_cli.views import trigger_text

CREATE = ["subscriptions", "create", "--token", "t", "--name", "n", "--entity", "Object"]
VIOLATIONS = [
    ("name", "is required"),
    ("entity", "unknown entity 'Objekt'"),
    ("triggers[0].trigger", "is required"),
    ("webhook.url", "must be https://"),
]


# --- usage errors ---------------------------------------------------------------------------


def test_a_missing_option_is_two_lines_naming_it_and_the_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*CREATE, "--url", "https://example.com/h"])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "webhooks subscriptions create: error: the following arguments are required: --trigger",
        "See 'webhooks subscriptions create --help'.",
    ]


def test_an_unknown_command_is_two_lines_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["subscriptions", "creat"])
    assert exited.value.code == 2
    first, second = capsys.readouterr().err.splitlines()
    assert "invalid choice: 'creat'" in first and second == "See 'webhooks subscriptions --help'."


# --- every field violation ------------------------------------------------------------------


class Refusing(subscriptions_pb2_grpc.SubscriptionServiceServicer):
    """A subscriptions service that refuses every create with the violations given."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations

    def CreateSubscription(self, request: Any, context: grpc.ServicerContext) -> Any:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in self.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        first = f"{self.violations[0][0]}: {self.violations[0][1]}"
        status = status_pb2.Status(
            code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=first, details=[detail]
        )
        context.abort_with_status(rpc_status.to_status(status))


@pytest.fixture
def refusing() -> Iterator[tuple[str, Refusing]]:
    """A real gRPC server on loopback with the Refusing servicer."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = Refusing(VIOLATIONS)
    subscriptions_pb2_grpc.add_SubscriptionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_every_field_violation_is_a_line_of_its_own(
    refusing: tuple[str, Refusing], capsys: pytest.CaptureFixture[str]
) -> None:
    address, _ = refusing
    argv = [*CREATE, "--trigger", "OnNew", "--url", "https://example.com/h", "--address", address]
    assert main(argv) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: INVALID_ARGUMENT: 4 fields to correct:",
        "  name: is required",
        "  entity: unknown entity 'Objekt'",
        "  triggers[0].trigger: is required",
        "  webhook.url: must be https://",
    ]


def test_one_field_violation_stays_one_line(
    refusing: tuple[str, Refusing], capsys: pytest.CaptureFixture[str]
) -> None:
    address, servicer = refusing
    servicer.violations = [("webhook.url", "must be https://")]
    argv = [*CREATE, "--trigger", "OnNew", "--url", "https://example.com/h", "--address", address]
    assert main(argv) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: INVALID_ARGUMENT: webhook.url: must be https://"
    ]


# --- an event too large ---------------------------------------------------------------------


def big_data() -> dict[str, str]:
    return {"text": "x" * (EVENT_DATA_BYTES + 1)}


def test_a_publish_over_the_data_limit_names_data_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(big_data()))
    # Nothing listens at the address: an attempt to send would fail otherwise.
    flags = ["--token", "t", "--address", "127.0.0.1:1", "--entity", "Object", "--trigger", "OnNew"]
    assert main(["events", "publish", *flags, "--data-file", str(data)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: events publish: data is 262,1")
    assert "at most 262,144 bytes (256 KiB)" in line and "nothing was sent" in line


def test_a_file_names_the_event_over_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    small = {"entity": "Object", "trigger": "OnNew", "data": {}}
    events.write_text("\n".join(json.dumps(e) for e in (small, {**small, "data": big_data()})))
    argv = ["events", "publish", "--token", "t", "--address", "127.0.0.1:1", "--file", str(events)]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"--file {events}: event 2: data is " in line and "262,144 bytes" in line


# --- display names --------------------------------------------------------------------------


def test_tables_show_display_names() -> None:
    event = FailedEvent(
        subscription_name="n",
        entity="WhatsApp",
        trigger="OnMessageStatus",
        channel=19,
        error_code="500",
        failure_class=FailureClass.FAILURE_CLASS_SOAP_FAULT,
        delivery_id="d",
    )
    row = failed_event_row(event)
    assert row[1:3] == ("WhatsApp", "On Message Status")
    assert row[6] == "500 (SOAP fault)"
    timeout = FailedEvent(error_code="timeout", failure_class=FailureClass.FAILURE_CLASS_TIMEOUT)
    assert error_text(timeout) == "timeout (Timed out)"
    http = FailedEvent(error_code="503", failure_class=FailureClass.FAILURE_CLASS_HTTP_STATUS)
    assert error_text(http) == "503"
    record = AttemptRecord(failure_class=FailureClass.FAILURE_CLASS_SOAP_FAULT)
    assert "SOAP fault" in attempt_row(record)


def test_a_trigger_in_a_table_reads_in_display_names() -> None:
    trigger = TriggerSpec(
        trigger="OnNewActivity",
        activity_types=[2, 1],
        status_changes=[StatusChange(from_status=0, to_status=14)],
    )
    assert trigger_text(trigger) == (
        "On New Activity (activity types: Status Change, Remark; status changes: any → Archive)"
    )
    statuses = TriggerSpec(trigger="OnMessageStatus", whatsapp_statuses=["read"])
    assert trigger_text(statuses) == "On Message Status (WhatsApp statuses: Read ✓✓)"
    assert trigger_text(TriggerSpec(trigger="OnNew")) == "On New"
