"""Failed events on a running ``webhooks up``, through the CLI as a person uses it: an
event published with the CLI fails at an HTTPS receiver (500), ``webhooks failures
list/show`` show it, ``subscriptions list`` counts it, ``failures retry`` sends it again
once the receiver is fixed, and ``failures rebuild`` gives the same view back. The receiver
runs in this process, on loopback under a test CA that the platform trusts."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Platform
from tests.support import free_port, waiting
from tests.support.receivers import ReceiverThread, Reply

WAIT_SECONDS = 60.0  # a loaded machine runs every service of `up` at once


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], what: str) -> Any:
    return waiting.wait_until(probe, done, what, WAIT_SECONDS)


def failed_events(platform: Platform, *flags: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = platform.run_json("failures", "list", *flags)["failed_events"]
    return events


def error_line(result: Any) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return str(lines[0])


def test_a_failed_delivery_is_listed_shown_counted_retried_and_rebuilt(
    platform: Platform,
) -> None:
    name = f"failing {uuid.uuid4().hex[:8]}"
    with ReceiverThread(platform.pki) as thread:
        receiver = thread.receiver
        path = f"/hooks/{uuid.uuid4().hex[:8]}"
        receiver.reply(path, Reply(500, b"database is down"))
        created = platform.run_json(
            "subscriptions",
            "create",
            *("--name", name, "--entity", "Tag", "--trigger", "OnAdd"),
            *("--type", "rest", "--url", receiver.url(path), "--retries", "0"),
        )
        sub_id = created["subscription"]["id"]
        published = platform.run_json(
            "events", "publish", "--entity", "Tag", "--trigger", "OnAdd", "--sample"
        )
        event_id = published["results"][0]["event_id"]
        thread.wait_for(1, path, timeout=30)

        (event,) = wait_until(
            lambda: failed_events(platform, "--subscription", sub_id),
            lambda events: len(events) == 1 and events[0]["state"] == "FAILED_EVENT_STATE_FAILED",
            "one FAILED event",
        )
        delivery_id = event["delivery_id"]
        assert event["event_id"] == event_id
        assert (event["subscription_name"], event["entity"], event["trigger"]) == (
            name,
            "Tag",
            "OnAdd",
        )
        assert (event["error_code"], event["retry_attempts"]) == ("500", 0)
        assert receiver.at(path)[0].headers["webhook-id"] == delivery_id
        by_code = failed_events(platform, "--error-code", "500", "--state", "failed")
        assert delivery_id in [e["delivery_id"] for e in by_code]
        assert failed_events(platform, "--subscription", sub_id, "--error-code", "timeout") == []

        table = platform.run_cli("failures", "list", "--subscription", sub_id)
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()
        assert header.startswith("WEBHOOK") and "ERROR" in header and "STATE" in header
        assert name in row and "500" in row and "failed" in row and delivery_id in row

        shown = platform.run_cli("failures", "show", delivery_id)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert text.index("Overview") < text.index("Payload") < text.index("Trial History")
        assert f'"EventId": "{event_id}"' in text  # the payload, pretty-printed
        history = text[text.index("Trial History") :]
        assert "failed" in history and "500" in history and "database is down" in history

        # --json: the payload and the endpoint's answer as text, numbers as numbers.
        as_json = platform.run_json("failures", "show", delivery_id)
        assert json.loads(as_json["payload"])["Event"]["EventId"] == event_id
        (tried,) = as_json["trial_history"]
        assert tried["response_snippet"] == "database is down"
        assert json.loads(tried["request_body"])["Event"]["EventId"] == event_id
        assert tried["status_code"] == 500 and isinstance(tried["duration_ms"], int)
        assert as_json["overview"]["retry_attempts"] == 0

        listing = platform.run_cli("subscriptions", "list", "--name-contains", name)
        assert listing.returncode == 0, listing.stderr
        header, row = listing.stdout.splitlines()
        assert "FAILURES" in header.split()
        assert "! 1 (1 event)" in row
        (listed,) = platform.run_json("subscriptions", "list", "--name-contains", name)[
            "subscriptions"
        ]
        assert listed["failures"] == {"failed_attempts": 1, "failed_events": 1}
        assert isinstance(listed["version"], int)
        # Without the failures service the listing still works, the counts say "-".
        dead = {**platform.env, "WEBHOOKS_FAILURES_ADDR": f"127.0.0.1:{free_port()}"}
        blind = subprocess.run(
            [
                sys.executable,
                "-m",
                "webhooks_cli",
                "subscriptions",
                "list",
                "--name-contains",
                name,
            ],
            env=dead,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert blind.returncode == 0, blind.stderr
        row = blind.stdout.splitlines()[1]
        assert name in row and " - " in row and "!" not in row
        assert "failure counts not shown" in blind.stderr and "Traceback" not in blind.stderr
        listing_json = ("subscriptions", "list", "--json", "--name-contains", name)
        blind_json = subprocess.run(
            [sys.executable, "-m", "webhooks_cli", *listing_json],
            env=dead,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert blind_json.returncode == 0, blind_json.stderr
        assert json.loads(blind_json.stdout)["subscriptions"][0]["failures"] is None

        # A filtered retry asks first; without a terminal it wants --yes.
        refused = platform.run_cli("failures", "retry", "--subscription", sub_id)
        assert refused.returncode == 2 and "--yes" in error_line(refused)
        dry = platform.run_cli("failures", "retry", "--subscription", sub_id, "--dry-run")
        assert dry.returncode == 0 and "1 failed events would be sent again" in dry.stdout
        time.sleep(1)
        assert len(receiver.at(path)) == 1

        receiver.reply(path, Reply(204))
        retried = platform.run_cli("failures", "retry", delivery_id)
        assert retried.returncode == 0, retried.stderr
        assert delivery_id in retried.stdout
        thread.wait_for(2, path, timeout=30)
        assert receiver.at(path)[1].headers["webhook-id"] == delivery_id
        details = wait_until(
            lambda: platform.run_json("failures", "show", delivery_id),
            lambda d: d["overview"]["state"] == "FAILED_EVENT_STATE_RECOVERED",
            "the event RECOVERED",
        )
        outcomes = [(r["series"], r["attempt"], r["outcome"]) for r in details["trial_history"]]
        assert outcomes == [
            (0, 1, "ATTEMPT_OUTCOME_FAILED"),
            (1, 0, "ATTEMPT_OUTCOME_REDELIVERY_REQUESTED"),
            (1, 1, "ATTEMPT_OUTCOME_SUCCEEDED"),
        ]
        shown = platform.run_cli("failures", "show", delivery_id)
        assert "redelivery requested by dev" in shown.stdout and "(manual)" in shown.stdout
        recovered = failed_events(platform, "--state", "recovered", "--subscription", sub_id)
        assert [e["delivery_id"] for e in recovered] == [delivery_id]

        before = failed_events(platform, "--all")
        rebuilt = platform.run_cli("failures", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "rebuilt the failures view" in rebuilt.stdout
        assert failed_events(platform, "--all") == before

        bad = platform.run_cli("failures", "list", "--state", "lost")
        assert bad.returncode == 2 and "--state" in error_line(bad)
        unknown = platform.run_cli("failures", "show", str(uuid.uuid4()))
        assert unknown.returncode == 1
        assert error_line(unknown).startswith("error: NOT_FOUND: ")
        parsed = json.loads(
            platform.run_cli("failures", "retry", delivery_id, "--dry-run", "--json").stdout
        )
        assert parsed["matched"] == 1  # a number, though int64 is a string in proto JSON

        # Sending a recovered delivery again delivers it twice: it asks on a terminal,
        # refuses without one, and --force sends it.
        again = platform.run_cli("failures", "retry", delivery_id)
        line = error_line(again)
        assert again.returncode == 2 and f"already recovered (delivered): {delivery_id}" in line
        assert "--force" in line
        declined = run_on_a_terminal(platform, ["failures", "retry", delivery_id], "n\n")
        assert declined.returncode == 1, declined.stderr
        assert "already recovered" in declined.stdout and "Send again anyway?" in declined.stdout
        assert "nothing was sent" in declined.stderr
        assert len(receiver.at(path)) == 2
        forced = platform.run_cli("failures", "retry", delivery_id, "--force")
        assert forced.returncode == 0, forced.stderr
        thread.wait_for(3, path, timeout=30)
        assert receiver.at(path)[2].headers["webhook-id"] == delivery_id


def run_on_a_terminal(
    platform: Platform, args: list[str], answer: str
) -> subprocess.CompletedProcess[str]:
    """``webhooks *args`` with a terminal (a pty) as stdin, ``answer`` typed into it."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode())
        return subprocess.run(
            [sys.executable, "-m", "webhooks_cli", *args],
            env=platform.env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(leader)
        os.close(follower)
