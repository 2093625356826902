"""The platform ``webhooks demo`` talks to: the one running, or a ``webhooks up`` of its own.

The sender refuses loopback destinations and trusts only known CAs, so a platform the demo
starts runs with ``WEBHOOKS_OUTBOUND_ALLOW=127.0.0.0/8``, ``WEBHOOKS_CA_BUNDLE=<demo CA>`` and
short retry intervals; one already running is used as it is (the demo probes it first).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from webhooks_cli.client import resolve_token
from webhooks_cli.demo_receiver import DemoPki
from webhooks_cli.errors import CliError
from webhooks_cli.health import is_ready
from webhooks_cli.services import available_services
from webhooks_cli.up import READY_LINE
from webhooks_config import Settings

# A platform the demo starts may retry after 2 s (WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS), so
# the failed event is final quickly; a running one allows its default minimum, 10 s.
STARTED_INTERVAL_SECONDS = 2
DEFAULT_MIN_INTERVAL_SECONDS = 10
UP_START_TIMEOUT_SECONDS = 90.0  # a first `up` creates its stores and streams
UP_STOP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.3
LOOPBACK = "127.0.0.0/8"


@dataclass
class Platform:
    """The platform the demo talks to, and the ``up`` it started (None: it was running)."""

    settings: Settings
    token: str
    min_interval: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None


@contextmanager
def platform_for(
    args: argparse.Namespace, settings: Settings, pki: DemoPki, say: Callable[[str], None]
) -> Iterator[Platform]:
    services = available_services()
    answering = [s for s in services if is_ready(s, settings.address(s))]
    if len(answering) == len(services):
        say(
            f"using the platform running at {settings.address('subscriptions')} "
            f"(data dir {settings.data_dir})"
        )
        token = resolve_token(args.token, settings)
        interval = max(DEFAULT_MIN_INTERVAL_SECONDS, settings.min_retry_interval_seconds)
        yield Platform(settings, token, interval)
        return
    if answering:
        missing = ", ".join(f"{s} ({settings.address(s)})" for s in services if s not in answering)
        raise CliError(
            f"part of a platform answers, but not {missing}: is a `webhooks up` starting or "
            "stopping? Run the demo again once it is up, or stop it"
        )
    platform = start_up(settings, pki, args.token, say)
    try:
        yield platform
    finally:
        assert platform.process is not None
        if args.keep:
            say(
                f"\nThe platform keeps running (pid {platform.process.pid}, log "
                f"{platform.log_path}); stop it with `kill -INT {platform.process.pid}`."
            )
        else:
            stop_up(platform.process, say)


def up_environment(settings: Settings, pki: DemoPki) -> dict[str, str]:
    """The caller's environment plus what the demo needs: loopback admitted, the demo CA
    trusted, short retry intervals allowed."""
    env = dict(os.environ)
    allowed = [n for n in env.get("WEBHOOKS_OUTBOUND_ALLOW", "").split(",") if n.strip()]
    env["WEBHOOKS_OUTBOUND_ALLOW"] = ",".join([*allowed, LOOPBACK])
    env["WEBHOOKS_CA_BUNDLE"] = str(pki.ca_file)
    env["WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS"] = str(STARTED_INTERVAL_SECONDS)
    env["WEBHOOKS_DATA_DIR"] = str(settings.data_dir)
    # The addresses the demo will call (--address included), whatever the environment says.
    env.update({f"WEBHOOKS_{s.upper()}_ADDR": a for s, a in settings.addresses.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_up(
    settings: Settings, pki: DemoPki, token_flag: str | None, say: Callable[[str], None]
) -> Platform:
    log_path = settings.data_dir / "demo" / "up.log"
    say(
        f"no platform answers at {settings.address('subscriptions')}: starting `webhooks up` "
        f"(data dir {settings.data_dir}, log {log_path})"
    )
    say(
        f"  with WEBHOOKS_OUTBOUND_ALLOW={LOOPBACK} WEBHOOKS_CA_BUNDLE={pki.ca_file} "
        f"WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS={STARTED_INTERVAL_SECONDS}"
    )
    began = time.monotonic()
    with log_path.open("wb") as log:
        # Its own process group, as `up` gives its services: Ctrl-C reaches only the demo,
        # which then stops the platform in order (or leaves it running with --keep).
        process = subprocess.Popen(
            [sys.executable, "-m", "webhooks_cli", "up", "--data-dir", str(settings.data_dir)],
            env=up_environment(settings, pki),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        while READY_LINE not in log_path.read_text(errors="replace"):
            code = process.poll()
            if code is not None:
                raise CliError(f"webhooks up exited with code {code}: {last_line(log_path)}")
            if time.monotonic() - began > UP_START_TIMEOUT_SECONDS:
                raise CliError(
                    f"webhooks up not ready after {UP_START_TIMEOUT_SECONDS:.0f} s (log {log_path})"
                )
            time.sleep(POLL_SECONDS)
    except BaseException:
        stop_up(process, say)
        raise
    say(f"platform up in {time.monotonic() - began:.1f} s")
    token = resolve_token(token_flag, settings)  # by default the dev token `up` wrote
    return Platform(settings, token, STARTED_INTERVAL_SECONDS, process, log_path)


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else f"nothing logged (see {path})"


def stop_up(process: subprocess.Popen[bytes], say: Callable[[str], None]) -> None:
    if process.poll() is not None:
        return
    say("stopping the platform the demo started ...")
    process.send_signal(signal.SIGINT)  # as Ctrl-C: `up` stops its services, then NATS
    for _ in range(2):  # a second Ctrl-C does not abandon it half-stopped
        try:
            process.wait(timeout=UP_STOP_TIMEOUT_SECONDS)
            return
        except KeyboardInterrupt:
            say("still stopping the platform (it stops its services first) ...")
        except subprocess.TimeoutExpired:
            break
    process.kill()
    process.wait()
