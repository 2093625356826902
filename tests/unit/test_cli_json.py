"""The CLI's --json: 64-bit integers as numbers, bytes as text when UTF-8 (else base64
under ``<field>_base64``), Struct numbers whole where they are, ``health`` and
``secret-key`` answering in JSON, and the listing's failure counts under the table's name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from webhooks.v1.failures_pb2 import (
    FailedEventDetails,
    RedeliverFailedEventsResponse,
    SubscriptionFailureCount,
)
from webhooks.v1.messages_pb2 import AttemptOutcome, AttemptRecord, DeadLetter
from webhooks.v1.router_pb2 import ReplayProgress
from webhooks.v1.subscriptions_pb2 import (
    ListSubscriptionsResponse,
    Subscription,
    SubscriptionHistoryEntry,
)
from webhooks_cli.main import main
from webhooks_cli.output import json_data, print_json
from webhooks_cli.views import subscriptions_data

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def printed(value: object, capsys: pytest.CaptureFixture[str]) -> object:
    print_json(value)  # type: ignore[arg-type]
    return json.loads(capsys.readouterr().out)


# --- numbers ----------------------------------------------------------------------------------


def test_64_bit_integers_are_numbers_not_strings(capsys: pytest.CaptureFixture[str]) -> None:
    response = RedeliverFailedEventsResponse(matched=1, redelivered=0, delivery_ids=["d-1"])
    assert printed(response, capsys) == {"matched": 1, "redelivered": 0, "delivery_ids": ["d-1"]}
    replayed = printed(ReplayProgress(scanned_events=12, matched_events=3), capsys)
    assert isinstance(replayed, dict)
    assert (replayed["scanned_events"], replayed["matched_events"]) == (12, 3)
    big = json_data(DeadLetter(stream_sequence=2**63 + 5, notification_id=-(2**62)))
    assert (big["stream_sequence"], big["notification_id"]) == (2**63 + 5, -(2**62))


def test_numbers_deep_in_messages_and_lists_of_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sub = Subscription(id="s-1", version=7)
    sub.webhook.rate_limit_per_second = 0
    listing = ListSubscriptionsResponse(subscriptions=[sub])
    subscription = json_data(listing)["subscriptions"][0]
    assert subscription["version"] == 7
    assert subscription["webhook"]["rate_limit_per_second"] == 0  # int32 stays a number
    details = FailedEventDetails(trial_history=[AttemptRecord(duration_ms=250, status_code=500)])
    shown = json_data(details)["trial_history"][0]
    assert (shown["duration_ms"], shown["status_code"]) == (250, 500)
    # A dict or list holding messages (events publish, tokens) goes through the same rules.
    assert printed({"results": [RedeliverFailedEventsResponse(matched=2)]}, capsys) == {
        "results": [{"matched": 2, "redelivered": 0, "delivery_ids": []}]
    }


def test_struct_numbers_read_as_the_tables_show_them() -> None:
    entry = SubscriptionHistoryEntry(version=3)
    entry.changes.update({"retries": 2, "interval": 300, "ratio": 0.5, "list": [1, 2.5]})
    changes = json_data(entry)["changes"]
    assert changes == {"retries": 2, "interval": 300, "ratio": 0.5, "list": [1, 2.5]}
    assert isinstance(changes["retries"], int)


def test_timestamps_and_enums_keep_their_proto_json_form() -> None:
    record = AttemptRecord(outcome=AttemptOutcome.ATTEMPT_OUTCOME_SUCCEEDED)
    record.started_at.FromSeconds(1_800_000_000)
    shown = json_data(record)
    assert shown["started_at"] == "2027-01-15T08:00:00Z"
    assert shown["outcome"] == "ATTEMPT_OUTCOME_SUCCEEDED"


# --- bytes ------------------------------------------------------------------------------------


def test_utf8_payloads_are_text_under_their_own_name() -> None:
    details = FailedEventDetails(
        payload='{"Event":{"Name":"Zoë"}}'.encode(),
        trial_history=[
            AttemptRecord(
                request_body=b"<soap:Envelope/>",
                response_snippet=b"database is down",
                payload_json=b"",
            )
        ],
    )
    shown = json_data(details)
    assert shown["payload"] == '{"Event":{"Name":"Zoë"}}'
    attempt = shown["trial_history"][0]
    assert attempt["request_body"] == "<soap:Envelope/>"
    assert attempt["response_snippet"] == "database is down"
    assert attempt["payload_json"] == ""
    assert not any(key.endswith("_base64") for key in (*shown, *attempt))


def test_bytes_that_are_not_utf8_stay_base64_under_a_name_that_says_so() -> None:
    record = AttemptRecord(response_snippet=b"\x89PNG\r\n\x1a\n\xff", request_body=b"{}")
    shown = json_data(record)
    assert "response_snippet" not in shown
    assert shown["response_snippet_base64"] == "iVBORw0KGgr/"
    assert shown["request_body"] == "{}"


def test_maps_keep_their_keys() -> None:
    letter = DeadLetter(data=b"\xc3", headers={"Nats-Msg-Id": "m-1"}, data_size=4096)
    shown = json_data(letter)
    assert shown["headers"] == {"Nats-Msg-Id": "m-1"}
    assert shown["data_base64"] == "ww==" and "data" not in shown  # a cut UTF-8 sequence
    assert shown["data_size"] == 4096


# --- the listing's failure counts -------------------------------------------------------------


def test_the_listing_carries_the_failures_column() -> None:
    listing = ListSubscriptionsResponse(
        subscriptions=[Subscription(id="s-1", name="a"), Subscription(id="s-2", name="b")]
    )
    counts = {
        "s-1": SubscriptionFailureCount(subscription_id="s-1", failed_attempts=3, failed_events=2),
        "s-2": SubscriptionFailureCount(),
    }
    shown = subscriptions_data(listing, counts)["subscriptions"]
    assert shown[0]["failures"] == {"failed_attempts": 3, "failed_events": 2}
    assert shown[1]["failures"] == {"failed_attempts": 0, "failed_events": 0}
    # The failures service could not say: null, as the table's "-".
    unknown = subscriptions_data(listing, None)["subscriptions"]
    assert [s["failures"] for s in unknown] == [None, None]


# --- health and secret-key --------------------------------------------------------------------


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    """A real gRPC server answering the standard health service on loopback."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_health_json_says_service_address_and_status(
    health_server: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    address, servicer = health_server
    servicer.set("", SERVING)
    for argv in (
        ["health", "router", "--address", address, "--json"],
        ["--json", "health", "router", "--address", address],
    ):
        assert main(argv) == 0
        out = capsys.readouterr()
        assert json.loads(out.out) == {"service": "router", "address": address, "status": "SERVING"}
        assert out.err == ""
    assert main(["health", "router", "--address", address]) == 0
    assert capsys.readouterr().out == f"router at {address}: SERVING\n"


def test_health_json_not_serving_is_still_an_answer_and_exit_1(
    health_server: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    address, servicer = health_server
    servicer.set("", NOT_SERVING)
    assert main(["health", "sender", "--address", address, "--json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["status"] == "NOT_SERVING"
    assert out.err == f"error: sender at {address}: NOT_SERVING\n"


def test_health_json_unreachable_is_an_error_line_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["health", "failures", "--address", "127.0.0.1:1", "--json", "--timeout", "2"])
    out = capsys.readouterr()
    assert (code, out.out) == (1, "")
    assert out.err.startswith("error: failures at 127.0.0.1:1: unreachable")


def test_secret_key_json_is_a_fernet_key(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["secret-key", "--json"], ["--json", "secret-key"]):
        assert main(argv) == 0
        shown = json.loads(capsys.readouterr().out)
        assert list(shown) == ["key"]
        Fernet(shown["key"])  # raises unless a valid key
    assert main(["secret-key"]) == 0
    plain = capsys.readouterr().out
    assert plain.count("\n") == 1
    Fernet(plain.strip())
