"""``webhooks up`` supervises its children (webhooks_cli.supervision, docs/operations.md
"Supervision"): each of router, sender, subscriptions, failures and the embedded NATS,
killed with SIGKILL while events are published and delivered to an HTTPS receiver, is
started again within seconds, ``up`` keeps running, and every accepted event arrives (at
least once: duplicates are reported, not failed). A child that cannot start again (its
port taken by another program) crash-loops, and ``up`` stops with the reason.

The publisher is a real one: it sends batches through PublishEvents with the development
token and sends again what was not ACCEPTED (UNAVAILABLE while the router or NATS is
down). Events and jobs a killed process had taken come back after their consumer's
ack_wait (webhooks_messaging.heartbeats.ACK_WAIT_SECONDS)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.e2e.conftest import Platform
from tests.support.platform_stack import ACCEPTED, platform_event
from tests.support.receivers import ReceiverThread
from tests.support.waiting import wait_until
from webhooks.v1 import messages_pb2, router_pb2, router_pb2_grpc
from webhooks_cli.health import is_ready
from webhooks_cli.up import accepts_connections

DEADLINE = 120.0  # seconds for any condition: the machine is shared and busy
BATCH = 10  # events per PublishEvents call
# DUPLICATE: stored by an earlier call whose answer was lost (a router killed mid-call).
STORED = (ACCEPTED, router_pb2.PUBLISH_STATUS_DUPLICATE)
KILLED_IN_TURN = ("router", "sender", "subscriptions", "failures", "nats")


def started(root: Path, **env: str) -> Platform:
    platform = Platform.create(root)
    platform.env.update(env)
    platform.start()
    return platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    platform = started(
        tmp_path, WEBHOOKS_SENDER_TIMEOUT_MS="2000", WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS="1"
    )
    try:
        yield platform
    finally:
        platform.stop()


def children(platform: Platform) -> dict[str, int]:
    """The pids of ``up``'s child processes by name (a service, or "nats")."""
    assert platform.process is not None
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent != platform.process.pid or stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        words = [a.decode() for a in argv if a]
        if not words:
            continue  # exited, not yet reaped
        name = words[-1] if "serve" in words else "nats" if "nats-server" in words[0] else ""
        if name:
            found[name] = int(entry.name)
    return found


def nats_port(platform: Platform) -> int:
    line = next(line for line in platform.log().splitlines() if "nats://" in line)
    return int(line.rsplit(":", 1)[1])


def is_back(platform: Platform, name: str) -> bool:
    if name == "nats":
        return accepts_connections(nats_port(platform))
    return is_ready(name, platform.addresses[name])


class Publisher(threading.Thread):
    """Publishes Tag OnAdd events in batches until stopped, sending again whatever was not
    stored; ``accepted`` holds the ids of the events the platform took."""

    def __init__(self, platform: Platform, tenant: str) -> None:
        super().__init__(daemon=True)
        self.address = platform.addresses["router"]
        self.metadata = (
            ("authorization", f"Bearer {platform.token}"),
            ("x-webhooks-tenant", tenant),
        )
        self.tenant = tenant
        self.accepted: set[str] = set()
        self.refusals = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            while not self.halt.is_set():
                pending = [platform_event(self.tenant, "Tag", "OnAdd") for _ in range(BATCH)]
                while pending and not self.halt.is_set():
                    pending = self.send(stub, pending)
                    if pending:
                        self.refusals += 1
                        self.halt.wait(0.5)
                self.halt.wait(0.2)

    def send(
        self, stub: router_pb2_grpc.RouterServiceStub, events: list[messages_pb2.PlatformEvent]
    ) -> list[messages_pb2.PlatformEvent]:
        """The events of ``events`` not stored."""
        try:
            response = stub.PublishEvents(
                router_pb2.PublishEventsRequest(events=events), metadata=self.metadata, timeout=10
            )
        except grpc.RpcError:
            return events
        left = []
        for event, result in zip(events, response.results, strict=True):
            if result.status in STORED:
                self.accepted.add(event.event_id)
            else:
                left.append(event)
        return left


def delivered_ids(thread: ReceiverThread, path: str) -> Counter[str]:
    return Counter(json.loads(r.body)["Event"]["EventId"] for r in list(thread.receiver.at(path)))


def subscribe(platform: Platform, thread: ReceiverThread, path: str) -> None:
    """A subscription of Tag OnAdd to the receiver, once the router routes by it (a probe
    event sent again until one arrives: the router learns of it from its stream)."""
    platform.run_json(
        "subscriptions",
        "create",
        *("--name", f"supervised {uuid.uuid4().hex[:8]}", "--entity", "Tag"),
        *("--trigger", "OnAdd", "--type", "rest", "--url", thread.receiver.url(path)),
        *("--retries", "3", "--interval", "1"),
    )

    def probe() -> int:
        platform.run_cli("events", "publish", "--entity", "Tag", "--trigger", "OnAdd", "--sample")
        time.sleep(1.0)  # between probes, not a wait for a condition
        return len(thread.receiver.at(path))

    wait_until(probe, lambda n: n > 0, "the subscription routed", DEADLINE)


def test_each_killed_child_is_back_and_nothing_is_lost(platform: Platform) -> None:
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    with ReceiverThread(platform.pki) as thread:
        subscribe(platform, thread, path)
        publisher = Publisher(platform, "default")
        publisher.start()
        try:
            for name in KILLED_IN_TURN:
                kill_and_see_it_back(platform, thread, path, name)
        finally:
            publisher.halt.set()
            publisher.join(30)
        accepted = publisher.accepted
        wait_until(
            lambda: accepted - set(delivered_ids(thread, path)),
            lambda missing: not missing,
            "every accepted event delivered",
            DEADLINE,
        )
        counts = delivered_ids(thread, path)
    duplicates = sum(n - 1 for event, n in counts.items() if event in accepted)
    print(
        f"{len(accepted)} events accepted, all delivered; {duplicates} duplicate deliveries; "
        f"{publisher.refusals} batches sent again"
    )
    assert platform.process is not None and platform.process.poll() is None, platform.log()
    for name in KILLED_IN_TURN:
        assert f"webhooks up: {name} exited on SIGKILL; restarting it in" in platform.log()


def kill_and_see_it_back(platform: Platform, thread: ReceiverThread, path: str, name: str) -> None:
    """SIGKILL ``name`` while events flow; it is started again and deliveries go on."""
    before = len(thread.receiver.at(path))
    wait_until(lambda: len(thread.receiver.at(path)), lambda n: n > before, "deliveries", DEADLINE)
    pid = children(platform)[name]
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: children(platform).get(name),
        lambda new: new not in (None, pid),
        f"{name} restarted",
        DEADLINE,
    )
    wait_until(lambda: is_back(platform, name), bool, f"{name} serving again", DEADLINE)
    after = len(thread.receiver.at(path))
    wait_until(
        lambda: len(thread.receiver.at(path)),
        lambda n: n > after,
        f"deliveries after {name}",
        DEADLINE,
    )
    assert platform.process is not None and platform.process.poll() is None, platform.log()


def test_a_child_that_cannot_start_again_crash_loops_and_up_stops(tmp_path: Path) -> None:
    platform = started(tmp_path)
    try:
        others = {name: pid for name, pid in children(platform).items() if name != "router"}
        port = int(platform.addresses["router"].rsplit(":", 1)[1])
        with socket.socket() as squatter:  # another program takes the router's port
            take_port_of_killed(platform, squatter, port)
            assert platform.process is not None
            code = platform.process.wait(timeout=DEADLINE)
        log = platform.log()
        assert code != 0, log
        assert "webhooks up: router crash-loops: it exited 5 times within 60 s" in log, log
        assert "stopping everything" in log
        assert not [name for name, pid in others.items() if alive(pid)], log
    finally:
        if platform.process is not None and platform.process.poll() is not None:
            platform.process = None
        platform.stop()


def take_port_of_killed(platform: Platform, squatter: socket.socket, port: int) -> None:
    """Kill the router and bind its port before ``up`` starts it again (if the restart wins
    the race, kill it again)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        pid = children(platform).get("router")
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        try:
            squatter.bind(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
            continue
        squatter.listen()
        return
    raise AssertionError(f"could not take port {port}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
