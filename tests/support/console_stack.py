"""The console as a real process (``webhooks serve console``) in front of a running
platform (``tests.support.platform_stack``), and the headless Chromium that drives it.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``) under Playwright: a tool's own
browser download does not work here. Without it the browser tests skip with the reason,
unless WEBHOOKS_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.platform_stack import Platform
from tests.support.ports import free_port

CHROMIUM = os.environ.get("WEBHOOKS_TEST_CHROMIUM", "/usr/bin/chromium")
START_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"  # git-ignored: screenshots to look at


def require_browser() -> str:
    """The Chromium binary, or skip (fail under WEBHOOKS_REQUIRE_BROWSER=1)."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    problem = ""
    if not found:
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("WEBHOOKS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (WEBHOOKS_REQUIRE_BROWSER=1): {problem}")
        pytest.skip(problem)
    assert found is not None
    return found


@dataclass
class ConsoleProcess:
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.port = free_port()
        env = {**self.env, "WEBHOOKS_CONSOLE_ADDR": f"127.0.0.1:{self.port}"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [sys.executable, "-m", "webhooks_cli", "serve", "console"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"console exited during start-up:\n{self.log_tail()}")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        pytest.fail(f"console not serving in {START_TIMEOUT} s:\n{self.log_tail()}")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def console_process(platform: Platform, extra: Mapping[str, str] | None = None) -> ConsoleProcess:
    """A console (not started) talking to ``platform``'s services."""
    assert platform.failures_process is not None
    env = {
        **platform.env,
        "WEBHOOKS_DATA_DIR": str(platform.tmp / "data" / "console"),
        "WEBHOOKS_SUBSCRIPTIONS_ADDR": f"127.0.0.1:{platform.subscriptions.port}",
        "WEBHOOKS_SENDER_ADDR": f"127.0.0.1:{platform.senders[0].port}",
        "WEBHOOKS_FAILURES_ADDR": f"127.0.0.1:{platform.failures_process.port}",
        **(extra or {}),
    }
    return ConsoleProcess(env, platform.tmp / "console.log")
