"""Delivery on a running ``webhooks up``: an event published with the CLI reaches an HTTPS
receiver through router and sender, and ``webhooks subscriptions test`` reports what the
endpoint answered. The receiver runs in this process, on loopback under a test CA that
the platform trusts (see the ``platform`` fixture)."""

from __future__ import annotations

import json
import uuid

from tests.e2e.conftest import Platform
from tests.support.receivers import ReceiverThread, Reply


def test_a_published_event_is_delivered_and_a_test_event_reports_the_answer(
    platform: Platform,
) -> None:
    name = f"delivery {uuid.uuid4().hex[:8]}"
    with ReceiverThread(platform.pki) as thread:
        receiver = thread.receiver
        path = f"/hooks/{uuid.uuid4().hex[:8]}"
        created = platform.run_json(
            "subscriptions",
            "create",
            *("--name", name, "--entity", "Tag", "--trigger", "OnAdd"),
            *("--type", "rest", "--url", receiver.url(path), "--retries", "0"),
        )
        published = platform.run_json(
            "events", "publish", "--entity", "Tag", "--trigger", "OnAdd", "--sample"
        )
        event_id = published["results"][0]["event_id"]
        thread.wait_for(1, path, timeout=30)
        got = receiver.at(path)[0]
        body = json.loads(got.body)
        assert body["Event"]["EventId"] == event_id
        assert body["Event"]["SubscriptionName"] == name
        assert got.headers["webhook-id"] == body["Event"]["DeliveryId"]

        ok = platform.run_cli("subscriptions", "test", name)
        assert ok.returncode == 0, ok.stderr
        assert "delivered" in ok.stdout and "204" in ok.stdout

        receiver.reply(path, Reply(503, b"maintenance"))
        failed = platform.run_cli("subscriptions", "test", created["subscription"]["id"])
        assert failed.returncode == 1
        assert "failed (HTTP error status)" in failed.stdout and "maintenance" in failed.stdout
