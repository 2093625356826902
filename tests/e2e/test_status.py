"""The backlog an SRE watches and ``webhooks status``, against the platform as real
processes (every service and the console, each with its Prometheus endpoint on a free
port):

- a backlog built on purpose (the sender stopped while events are published) shows as
  the sender durable's pending jobs and a growing oldest age, in the failures service's
  scrape and in ``webhooks status --json``, which names the stopped sender and exits 1;
- a record set aside (a poison attempt record) shows as a dead letter in both;
- with the sender back, the backlog drains and ``webhooks status`` names every service
  SERVING and exits 0; ``--watch`` redraws in place and stops on Ctrl-C with exit 0;
- under ``webhooks up``, ``webhooks status`` finds everything from the same settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Platform as UpPlatform
from tests.e2e.conftest import running_up
from tests.support.console_stack import ConsoleProcess, console_process
from tests.support.platform_stack import (
    Platform,
    new_tenant,
    platform_event,
    rest,
    running_platform,
)
from tests.support.ports import free_port
from tests.support.receivers import HttpsReceiver
from tests.support.waiting import eventually, wait_until
from webhooks.v1 import messages_pb2
from webhooks_config import SERVICES
from webhooks_messaging import ATTEMPTS, DEADLETTERS, DELIVERIES, EVENTS, attempts_subject
from webhooks_telemetry import metrics

GRPC_SERVICES = ("subscriptions", "router", "sender", "failures")
BACKLOG = 20  # events published while the sender is stopped: one job each
WAIT = 90.0  # generous: the backlog is refreshed every 5 s, the machine is shared
CLI_TIMEOUT = 60.0
Samples = list[tuple[str, dict[str, str], float]]
Stack = tuple[Platform, ConsoleProcess, dict[str, int]]  # and each metrics port


def metrics_env(ports: dict[str, int]) -> dict[str, str]:
    return {f"WEBHOOKS_{s.upper()}_METRICS_ADDR": f"127.0.0.1:{p}" for s, p in ports.items()}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    ports = {service: free_port() for service in SERVICES}
    per_service = {s: metrics_env({s: ports[s]}) for s in GRPC_SERVICES}
    async with running_platform(tmp_path, service_envs=per_service) as running:
        console = console_process(running, metrics_env({"console": ports["console"]}))
        await console.start()
        try:
            yield running, console, ports
        finally:
            await console.stop()


@pytest.fixture
async def receiver(
    stack: tuple[Platform, ConsoleProcess, dict[str, int]],
) -> AsyncIterator[HttpsReceiver]:
    async with HttpsReceiver(stack[0].pki) as running:
        yield running


async def scrape(port: int) -> Samples:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(samples: Samples, entry: metrics.Instrument, **labels: str) -> float | None:
    for name, found, number in samples:
        if name == entry.prometheus_name and all(found.get(k) == v for k, v in labels.items()):
            return number
    return None


def status_env(p: Platform, console: ConsoleProcess, ports: dict[str, int]) -> dict[str, str]:
    """What an SRE's shell would have: where each service and its metrics endpoint are."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    env["WEBHOOKS_DATA_DIR"] = str(p.tmp / "cli")
    for process in p.processes:
        env[f"WEBHOOKS_{process.service.upper()}_ADDR"] = f"127.0.0.1:{process.port}"
    env["WEBHOOKS_CONSOLE_ADDR"] = f"127.0.0.1:{console.port}"
    return env | metrics_env(ports)


async def status(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "webhooks_cli", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def sender_backlog(report: dict[str, Any]) -> dict[str, Any]:
    consumers = report["consumers"] or []
    return next(
        (c for c in consumers if (c["stream"], c["consumer"]) == (DELIVERIES, "sender")),
        {"pending": 0, "ack_pending": 0, "oldest_age_seconds": 0.0},
    )


async def set_aside_a_poison_record(p: Platform, tenant: str, subscription_id: str) -> None:
    """An attempt record the failures projector refuses (a timestamp of 2^62 s)."""
    poison = messages_pb2.AttemptRecord(
        delivery_id=str(uuid.uuid4()),
        tenant=tenant,
        subscription_id=subscription_id,
        outcome=messages_pb2.ATTEMPT_OUTCOME_FAILED,
        attempt=1,
    )
    poison.started_at.seconds = 2**62
    subject = attempts_subject(tenant, subscription_id)
    await p.js.publish(subject, poison.SerializeToString(), stream=ATTEMPTS)


def backlog_of(samples: Samples) -> tuple[float | None, float | None, float | None]:
    """(pending, oldest age) of the sender durable, and the letters on DEADLETTERS."""
    key = {"stream": DELIVERIES, "consumer": "sender"}
    return (
        value(samples, metrics.CONSUMER_PENDING, **key),
        value(samples, metrics.CONSUMER_OLDEST_AGE, **key),
        value(samples, metrics.STREAM_MESSAGES, stream=DEADLETTERS),
    )


async def test_a_stopped_senders_backlog_and_a_dead_letter_show_in_the_scrape_and_in_status(
    stack: Stack, receiver: HttpsReceiver
) -> None:
    p, console, ports = stack
    tenant = new_tenant("status")
    created = await p.create_subscription(tenant, rest("hook", receiver.url("/hook")))
    sender = p.senders[0]
    await sender.stop()
    await p.publish([platform_event(tenant, "Object", "OnNew") for _ in range(BACKLOG)])
    await set_aside_a_poison_record(p, tenant, created.subscription.id)

    age = await backlog_in_the_scrape(ports["failures"])
    await backlog_in_status(status_env(p, console, ports), age)

    # The sender back: every job delivered, the backlog drained, every service SERVING.
    await sender.start()
    await receiver.wait_for(BACKLOG, "/hook", timeout=WAIT)
    env = status_env(p, console, ports)
    await drained_and_serving(env)
    await watch_until_interrupted(env)


async def backlog_in_the_scrape(port: int) -> float:
    """The failures scrape shows the stopped sender's jobs pending, their age growing,
    and the dead letter; the age at the end."""
    first = await eventually(
        lambda: scrape(port),
        lambda s: backlog_of(s)[0] == BACKLOG and (backlog_of(s)[2] or 0) >= 1,
        timeout=WAIT,
        what=f"{BACKLOG} jobs pending for the stopped sender and a dead letter",
    )
    first_age = backlog_of(first)[1]
    assert first_age is not None and first_age > 0
    later = await eventually(
        lambda: scrape(port),
        lambda s: (backlog_of(s)[1] or 0) >= first_age + 2,
        timeout=WAIT,
        what="the oldest age growing",
    )
    pending, age, _ = backlog_of(later)
    assert pending == BACKLOG and age is not None
    return age


async def backlog_in_status(env: dict[str, str], age: float) -> None:
    """``status --json``: the same backlog, the dead letter, the stopped sender named."""
    code, report = await status(env)
    assert code == 1, report
    health = {s["service"]: s["health"] for s in report["services"]}
    assert set(health) == set(SERVICES)
    assert health["sender"] != "SERVING" and "unreachable" in health["sender"]
    assert all(health[s] == "SERVING" for s in SERVICES if s != "sender"), health
    assert report["healthy"] is False
    backlog = sender_backlog(report)
    assert backlog["pending"] == BACKLOG
    assert backlog["oldest_age_seconds"] >= age
    assert report["dead_letters"] >= 1
    assert {s["stream"] for s in report["streams"]} >= {DELIVERIES, DEADLETTERS}
    _, again = await status(env)
    assert sender_backlog(again)["oldest_age_seconds"] > backlog["oldest_age_seconds"]


async def drained_and_serving(env: dict[str, str]) -> None:
    """``status`` exits 0 naming every service SERVING, with its version; no backlog."""

    async def asked() -> tuple[int, dict[str, Any]]:
        return await status(env)

    def done(answer: tuple[int, dict[str, Any]]) -> bool:
        backlog = sender_backlog(answer[1])
        return answer[0] == 0 and backlog["pending"] == 0 and backlog["oldest_age_seconds"] == 0

    _, report = await eventually(asked, done, timeout=WAIT, what="drained and serving")
    assert [s["service"] for s in report["services"]] == list(SERVICES)
    assert all(s["health"] == "SERVING" for s in report["services"])
    assert all(s["version"] != "unknown" for s in report["services"]), report["services"]
    assert report["relay_lag"] == 0
    text = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "webhooks_cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert text.returncode == 0, text.stderr
    assert "DELIVERIES/sender" in text.stdout and "every service is SERVING" in text.stdout


async def watch_until_interrupted(env: dict[str, str]) -> None:
    """``status --watch``: two redraws in place (cursor home), then Ctrl-C: exit 0."""
    process = subprocess.Popen(  # noqa: ASYNC220 - read below in a thread
        [sys.executable, "-m", "webhooks_cli", "status", "--watch", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + CLI_TIMEOUT
    try:
        while seen.count(b"\x1b[H") < 2:
            assert time.monotonic() < deadline, f"no second redraw: {seen[-500:]!r}"
            seen += await asyncio.to_thread(os.read, process.stdout.fileno(), 65536)
        process.send_signal(signal.SIGINT)
        _, errors = await asyncio.to_thread(process.communicate, timeout=CLI_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert b"Traceback" not in errors
    assert b"SERVICE" in seen and b"every service is SERVING" in seen


DURABLES = {
    (EVENTS, "router"),
    (EVENTS, "router-bulk"),
    (DELIVERIES, "sender"),
    (DELIVERIES, "sender-bulk"),
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpPlatform]:
    """``webhooks up`` with its metrics endpoints on: status reads them."""
    yield from running_up(tmp_path_factory, metrics=True)


def test_status_under_webhooks_up_names_every_service_and_exits_0(platform: UpPlatform) -> None:
    def asked() -> subprocess.CompletedProcess[str]:
        return platform.run_cli("status", "--json")

    def complete(done: subprocess.CompletedProcess[str]) -> bool:
        # The failures service may start before the sender: its durables come with the
        # next backlog snapshot (every 5 s).
        report = json.loads(done.stdout)
        found = {(c["stream"], c["consumer"]) for c in report["consumers"] or []}
        return done.returncode == 0 and report["unavailable"] == {} and found >= DURABLES

    what = "every service SERVING, nothing unavailable, the four durables"
    report = json.loads(wait_until(asked, complete, what, WAIT).stdout)
    assert [s["service"] for s in report["services"]] == list(SERVICES)
    assert {s["health"] for s in report["services"]} == {"SERVING"}
