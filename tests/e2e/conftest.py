"""End-to-end fixtures: the real ``webhooks up`` as a subprocess, and the ``webhooks`` CLI
run as further subprocesses against it, exactly as a person would use them."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port
from tests.support.receivers import TestPki
from webhooks_cli.up import READY_LINE
from webhooks_config import SERVICES

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
CLI_TIMEOUT_SECONDS = 60.0


def clean_environment() -> dict[str, str]:
    """The test runner's environment without WEBHOOKS_* (a developer's WEBHOOKS_TOKEN or
    NATS URL must not leak into the platform under test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}


@dataclass
class Platform:
    """A ``webhooks up`` on its own data directory and ports; ``stop()`` and ``start()``
    restart it on the same ones."""

    data_dir: Path
    log_path: Path
    addresses: dict[str, str]
    env: dict[str, str]
    pki: TestPki
    token: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, root: Path, *, metrics: bool = False) -> Platform:
        addresses = {service: f"127.0.0.1:{free_port()}" for service in SERVICES}
        data_dir = root / "data"
        env = clean_environment()
        env.update({f"WEBHOOKS_{s.upper()}_ADDR": a for s, a in addresses.items()})
        # Metrics endpoints only when asked (else empty: off): ``up``'s defaults (9451-9455)
        # would collide between stacks running at once, and every picked port is one more
        # race with other processes' ephemeral ports.
        env.update(
            {
                f"WEBHOOKS_{s.upper()}_METRICS_ADDR": f"127.0.0.1:{free_port()}" if metrics else ""
                for s in SERVICES
            }
        )
        env["WEBHOOKS_DATA_DIR"] = str(data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        # Receivers of these tests run on loopback under a test CA: admitted and trusted
        # the way an operator would admit an internal receiver.
        pki = TestPki.create(root / "pki")
        env["WEBHOOKS_OUTBOUND_ALLOW"] = "127.0.0.0/8,::1/128"
        env["WEBHOOKS_CA_BUNDLE"] = str(pki.ca_file)
        return cls(
            data_dir=data_dir, log_path=root / "up.log", addresses=addresses, env=env, pki=pki
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        assert self.process is None, "already started"
        offset = len(self.log())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "webhooks_cli", "up", "--data-dir", str(self.data_dir)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while READY_LINE not in self.log()[offset:]:
            code = self.process.poll()
            if code is not None:
                self.process = None
                pytest.fail(f"webhooks up exited with {code}:\n{self.log()[offset:]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"webhooks up not ready in time:\n{self.log()[offset:]}")
            time.sleep(0.2)
        self.token = (self.data_dir / "dev-token").read_text().strip()

    def stop(self) -> int | None:
        """SIGINT, as Ctrl-C; the exit code, or None when it had to be killed."""
        process, self.process = self.process, None
        if process is None:
            return None
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def run_cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """``webhooks *args``; stdin is not a terminal (empty unless ``input`` is given)."""
        return subprocess.run(
            [sys.executable, "-m", "webhooks_cli", *args],
            env=self.env,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
        )

    def run_json(self, *args: str) -> Any:
        """``webhooks *args --json``, which must succeed; its output parsed."""
        result = self.run_cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    yield from running_up(tmp_path_factory, metrics=False)


def running_up(tmp_path_factory: pytest.TempPathFactory, *, metrics: bool) -> Iterator[Platform]:
    """``webhooks up`` for a module's tests, stopped (cleanly) after them."""
    if importlib.util.find_spec("webhooks_subscriptions.service") is None:
        pytest.skip("the subscriptions service is not written yet")
    platform = Platform.create(tmp_path_factory.mktemp("platform"), metrics=metrics)
    platform.start()
    try:
        yield platform
    finally:
        running = platform.process is not None
        code = platform.stop()
        if running:
            assert code == 0, f"webhooks up did not stop cleanly ({code}):\n{platform.log()}"
