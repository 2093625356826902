"""compose.yaml's containers as processes on this machine (the router's and the sender's
replicas each a process of its own): each platform container's own
command (``webhooks <command>``, the image's entry point) with its own environment,
translated only where a name means a container (NATS, PostgreSQL, Jaeger, the image's data
directory and published ports); each waited for with the health check compose would run;
an event sent through all four; then SIGTERM, as ``docker compose stop``, and a clean exit.

Jaeger is not run: its OTLP endpoint becomes a loopback port nobody listens on, so every
span export fails, and the services must log that and carry on.

NATS runs with the configuration the one-shot ``nats-auth`` container writes (its command,
run here first), and each service mounts its own seed from that volume: the mounts become
the matching directories of what it wrote.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml

from tests.support import NatsServer, free_port, waiting
from webhooks_secrets import new_key

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0  # at most start_period + retries x interval of the compose health checks
STOP_SECONDS = 30.0  # compose.yaml's stop_grace_period
WAIT_SECONDS = 60.0
# What the image sets itself (Dockerfile ENV), before compose's environment.
IMAGE_ENVIRONMENT_KEYS = ("WEBHOOKS_DATA_DIR",)


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def image_environment() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.fullmatch(r"ENV (\w+)=(\S+)", line.strip())
        if match and match[1] in IMAGE_ENVIRONMENT_KEYS:
            found[match[1]] = match[2]
    return found


def interpolated(value: str, given: dict[str, str]) -> str:
    """Compose's interpolation: the operator's ``given`` values, else ``:-`` defaults."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match[1], match[2], match[3]
        if name in given:
            return given[name]
        assert kind == ":-", f"${{{name}}} must be given"
        return rest

    return re.sub(r"\$\{([A-Z_]+)(:[-?])([^}]*)\}", one, value)


@dataclass
class Container:
    """One platform container of compose.yaml, run as a process here."""

    name: str
    command: list[str]
    healthcheck: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    terminated: bool = False

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "webhooks_cli", *self.command],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def health(self) -> subprocess.CompletedProcess[str]:
        """compose's health check, as compose runs it in the container."""
        assert self.healthcheck[:2] == ["CMD", "webhooks"], self.healthcheck
        return run_webhooks(self.healthcheck[2:], self.env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self) -> None:
        """SIGTERM, once, as ``docker compose stop`` sends it."""
        if self.process is not None and not self.terminated and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> int | None:
        """SIGTERM and wait: the exit code, or None when it had to be killed."""
        self.terminate()
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            return process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None


def run_webhooks(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``webhooks *args``: the console script is ``python -m webhooks_cli``."""
    return subprocess.run(
        [sys.executable, "-m", "webhooks_cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], what: str) -> Any:
    return waiting.wait_until(probe, done, what, WAIT_SECONDS)


@dataclass
class Stack:
    containers: list[Container]
    cli_env: dict[str, str]  # a person's shell on this machine, with the platform token
    nats_url: str


def volume_mounts(spec: dict[str, Any], volume: str, directory: Path) -> dict[str, Path]:
    """Where each mount of the named ``volume`` puts ``directory`` (the volume's contents
    here): container path -> path on this machine."""
    mounts = {}
    for mount in spec.get("volumes", []):
        if isinstance(mount, str):
            source, target = mount.split(":")[:2]
            mount = {"source": source, "target": target}
        if mount["source"] == volume:
            subpath = mount.get("volume", {}).get("subpath", "")
            mounts[mount["target"]] = directory / subpath if subpath else directory
    return mounts


def in_volume(path: str, mounts: dict[str, Path]) -> str:
    """A container path translated through its mounts."""
    for target, here in mounts.items():
        if path == target:
            return str(here)
        if path.startswith(target + "/"):
            return str(here / path[len(target) + 1 :])
    return path


@pytest.fixture
def nats_auth_dir(tmp_path: Path) -> Path:
    """What the one-shot nats-auth container writes into its volume, by its command."""
    spec = compose()["services"]["nats-auth"]
    directory = tmp_path / "nats-auth-volume"
    mounts = volume_mounts(spec, "nats-auth", directory)
    command = [in_volume(arg, mounts) for arg in spec["command"]]
    base = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    result = run_webhooks(command, base)
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture
def nats_url(tmp_path: Path, nats_auth_dir: Path) -> Iterator[str]:
    """Its own nats-server, with compose's configuration: the compose sender leaves its
    durable consumer on deliveries.jobs.>, which DELIVERIES (a work queue) lets no other
    consumer overlap."""
    spec = compose()["services"]["nats"]
    config = spec["command"][spec["command"].index("--config") + 1]
    mounts = volume_mounts(spec, "nats-auth", nats_auth_dir)
    server = NatsServer(tmp_path / "nats", config_file=Path(in_volume(config, mounts)))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def stack(
    tmp_path: Path,
    nats_url: str,
    nats_auth_dir: Path,
    postgres_url: str,
    postgres_schema: Callable[[str], str],
) -> Iterator[Stack]:
    token = f"platform-{uuid.uuid4().hex}"
    operator = {  # what the operator passes to `docker compose up`
        "WEBHOOKS_SECRET_KEYS": new_key(),
        "WEBHOOKS_TOKENS": json.dumps([{"name": "platform", "token": token, "tenant": "*"}]),
        # Every trace sampled, so that spans are exported (and fail to be: see the test).
        "OTEL_TRACES_SAMPLER_ARG": "1",
    }
    schema = postgres_schema("compose")
    data_dir = tmp_path / "data"
    nowhere = f"http://127.0.0.1:{free_port()}"  # Jaeger's OTLP port: nobody listens
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOKS_", "OTEL_"))} | {
        "PYTHONUNBUFFERED": "1"
    }
    addresses: dict[str, str] = {}
    containers = []
    services = compose()["services"]
    for name, spec in services.items():
        if "build" not in spec or spec.get("restart") == "no":
            continue  # NATS and PostgreSQL are the tests' own; Jaeger is not run; one-shots ran
        env = dict(base) | image_environment()
        mounts = volume_mounts(spec, "nats-auth", nats_auth_dir)
        for key, raw in spec["environment"].items():
            value = interpolated(str(raw), operator)
            if key == "WEBHOOKS_NATS_URL":
                assert value == "nats://nats:4222"
                value = nats_url
            elif key == "WEBHOOKS_POSTGRES_URL":
                assert "@postgres:5432/" in value
                value = postgres_url
            elif key == "WEBHOOKS_POSTGRES_SCHEMA":
                value = schema
            elif key == "WEBHOOKS_NATS_NKEY_SEED_FILE":
                value = in_volume(value, mounts)
                assert Path(value).is_file(), f"{name}: {value} not in its mount"
            elif key == "OTEL_EXPORTER_OTLP_ENDPOINT":
                assert value == "http://jaeger:4317"
                value = nowhere
            elif re.fullmatch(r"WEBHOOKS_[A-Z]+_METRICS_ADDR", key):
                assert value.startswith("0.0.0.0:"), "Prometheus scrapes it in the network"
                value = f"127.0.0.1:{free_port()}"  # each process its own, none of 945x here
            elif re.fullmatch(r"WEBHOOKS_[A-Z]+_ADDR", key) and value.split(":")[0] in services:
                value = addresses[key]  # another container's address (the console's clients)
            elif re.fullmatch(r"WEBHOOKS_[A-Z]+_ADDR", key):
                host, port = value.rsplit(":", 1)
                value = f"{host}:{free_port()}"  # the published port is taken here
                if "ports" in spec:  # a further replica publishes none: reached in compose
                    assert [str(p) for p in spec["ports"]] == [f"{port}:{port}"]
                    addresses[key] = value.replace("0.0.0.0:", "127.0.0.1:")
            env[key] = value
        env["WEBHOOKS_DATA_DIR"] = str(data_dir / name)  # each container its own
        containers.append(
            Container(
                name=name,
                command=spec["command"],
                healthcheck=spec["healthcheck"]["test"],
                env=env,
                log_path=tmp_path / f"{name}.log",
            )
        )
    cli_env = base | addresses | {"WEBHOOKS_TOKEN": token, "WEBHOOKS_DATA_DIR": str(data_dir)}
    try:
        yield Stack(containers, cli_env, nats_url)
    finally:
        for container in containers:
            container.stop()


@pytest.mark.postgres
def test_compose_commands_start_healthy_deliver_and_stop_cleanly(stack: Stack) -> None:
    # compose's NATS admits only the users nats-auth made (the services below get in).
    with pytest.raises(Exception, match=r"(?i)authorization"):
        asyncio.run(nats.connect(stack.nats_url, allow_reconnect=False, connect_timeout=5))
    for container in stack.containers:
        container.start()
    for container in stack.containers:
        deadline = time.monotonic() + START_SECONDS
        while (result := container.health()).returncode != 0:
            assert container.process is not None
            code = container.process.poll()
            assert code is None, f"{container.name} exited ({code}):\n{container.log()}"
            assert time.monotonic() < deadline, f"{container.name} never healthy: {result}"
            time.sleep(0.5)
        assert result.stdout.strip().endswith(": SERVING"), result.stdout
        assert result.stderr == ""

    # One event through all four: a subscription (subscriptions, on PostgreSQL), an event
    # routed (router), an attempt the outbound guard refuses (sender: no connection is
    # made), and the failure in the failed-events view (failures, on PostgreSQL).
    def cli(*args: str) -> Any:
        result = run_webhooks([*args, "--json"], stack.cli_env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    name = f"compose {uuid.uuid4().hex[:8]}"
    created = cli(
        "subscriptions",
        "create",
        *("--name", name, "--entity", "Tag", "--trigger", "OnAdd", "--type", "rest"),
        *("--url", "https://192.0.2.10/hooks", "--retries", "0"),
    )
    sub_id = created["subscription"]["id"]
    published = cli("events", "publish", "--entity", "Tag", "--trigger", "OnAdd", "--sample")
    event_id = published["results"][0]["event_id"]
    (failed,) = wait_until(
        lambda: cli("failures", "list", "--subscription", sub_id)["failed_events"],
        lambda events: len(events) == 1,
        "the failed delivery in the failures view",
    )
    assert failed["event_id"] == event_id
    assert failed["error_code"] == "blocked_destination"
    # Each container serves its metrics where compose's Prometheus scrapes it.
    for container in stack.containers:
        (address,) = [v for k, v in container.env.items() if k.endswith("_METRICS_ADDR")]
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            assert b"webhooks_service_info{" in response.read(), container.name

    for container in stack.containers:
        container.terminate()
    logs = {}
    for container in stack.containers:
        code = container.stop()
        logs[container.name] = log = container.log()
        assert code == 0, f"{container.name} did not stop cleanly ({code}):\n{log}"
        assert "Traceback" not in log, log
    # Spans were made and could not be exported: said in the log, nothing else happened.
    exporter_lines = [
        line
        for text in logs.values()
        for line in text.splitlines()
        if "logger=opentelemetry.exporter" in line
    ]
    assert exporter_lines, "no span export was attempted"
    assert all("level=ERROR" in line or "level=WARNING" in line for line in exporter_lines)
