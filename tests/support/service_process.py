"""A service as a real process (``webhooks serve <service>``), as compose would run it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.ports import free_port

START_TIMEOUT = 30.0


@dataclass
class ServiceProcess:
    """One ``webhooks serve <service>``; ``start()`` again after a kill (on a new port, so
    no client reaches the old process)."""

    service: str
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    channel: grpc.aio.Channel | None = None
    starts: int = 0

    async def start(self) -> None:
        assert not self.alive, "already running"
        await self.close_channel()
        self.port = free_port()
        env = {**self.env, f"WEBHOOKS_{self.service.upper()}_ADDR": f"127.0.0.1:{self.port}"}
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n---- start {self.starts} on port {self.port}\n".encode())
            self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [sys.executable, "-m", "webhooks_cli", "serve", self.service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.alive:
                pytest.fail(f"{self.service} exited during start-up:\n{self.log_tail()}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                if await self.serving(wait=1):
                    return
            await asyncio.sleep(0.05)
        # Not left running: an orphan would outlive the test session (and hold its ports).
        self.kill()
        pytest.fail(f"{self.service} not SERVING in {START_TIMEOUT} s:\n{self.log_tail()}")

    async def serving(self, wait: float = 5) -> bool:
        assert self.channel is not None
        reply = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=wait
        )
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, whatever was in flight is lost."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    async def stop(self, *, require_clean_exit: bool = False) -> None:
        """SIGTERM: the graceful shutdown (killed if it takes more than 20 s)."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.kill()
            if require_clean_exit:
                assert self.process.returncode == 0, f"unclean exit:\n{self.log_tail()}"
        await self.close_channel()

    async def close_channel(self) -> None:
        if self.channel is not None:
            await self.channel.close(grace=None)
            self.channel = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def wait_for_log(self, text: str, within: float) -> None:
        """Until the log of the current start shows ``text``, or ``within`` s passed."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.alive:
            if text in self.log_text().rpartition("---- start ")[2]:
                return
            await asyncio.sleep(0.1)
