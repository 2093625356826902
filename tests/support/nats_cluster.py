"""A cluster of real nats-server processes with JetStream on loopback ports, whose nodes a
test can kill (SIGKILL) and restart on the same ports and store directories.

Each node has a name, its own store, a client port, a route port (every node routes to
all the others) and a monitoring port whose ``/jsz`` and ``/healthz`` say whether the
JetStream meta group has a leader and whether the node is current. Clients take
``cluster.url``, the comma-separated list of every node (``webhooks_messaging.connect``
and ``nats.connect`` both reconnect to whichever node is up).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.nats_server import end_process, nats_server_binary
from tests.support.ports import free_port


@dataclass
class ClusterNode:
    name: str
    store_dir: Path
    log_file: Path
    client_port: int = field(default_factory=free_port)
    route_port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def route_url(self) -> str:
        return f"nats://127.0.0.1:{self.route_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def monitor(self, path: str, timeout: float = 2.0) -> dict[str, Any]:
        """GET ``path`` on the monitoring port, as JSON (errors' bodies too: /healthz
        answers 503 with a JSON reason while the node is not current)."""
        url = f"http://127.0.0.1:{self.monitor_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            body = err.read()
        answer: dict[str, Any] = json.loads(body)
        return answer


class NatsCluster:
    """``size`` nodes named ``<name>-1`` … ``<name>-<size>`` in cluster ``name``."""

    def __init__(self, root: Path, size: int = 3, name: str = "webhooks") -> None:
        self.root = root
        self.name = name
        self.nodes = [
            ClusterNode(
                name=f"{name}-{n}",
                store_dir=root / f"{name}-{n}" / "store",
                log_file=root / f"{name}-{n}.log",
            )
            for n in range(1, size + 1)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (what WEBHOOKS_NATS_URL takes)."""
        return ",".join(node.url for node in self.nodes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, name_or_index: str | int) -> ClusterNode:
        if isinstance(name_or_index, int):
            return self.nodes[name_or_index]
        for node in self.nodes:
            if node.name == name_or_index:
                return node
        raise KeyError(name_or_index)

    # ---- the whole cluster

    def start(self, timeout: float = 30.0) -> None:
        """Start every node not running, then wait for a JetStream meta leader that every
        running node knows, and for every running node to be current. On failure every
        node is stopped: the caller's cleanup only begins once start() has returned."""
        try:
            for node in self.nodes:
                if not node.running:
                    self._spawn(node)
            for node in self.nodes:
                self._wait_client_port(node, timeout)
            self.wait_ready(timeout)
        except BaseException:
            for node in self.nodes:
                self._end(node, kill=True, timeout=10.0)
            raise

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            self._end(node, kill=False, timeout=timeout)

    # ---- one node

    def kill(self, node: str | int) -> ClusterNode:
        """SIGKILL one node: a crash, nothing flushed."""
        target = self.node(node)
        self._end(target, kill=True, timeout=10.0)
        return target

    def terminate(self, node: str | int, timeout: float = 10.0) -> ClusterNode:
        """SIGTERM one node: the graceful shutdown (leadership handed over)."""
        target = self.node(node)
        self._end(target, kill=False, timeout=timeout)
        return target

    def restart(self, node: str | int, timeout: float = 30.0) -> ClusterNode:
        """Start a stopped or killed node again on its ports and store, and wait until the
        cluster has a meta leader and the node is current again."""
        target = self.node(node)
        if not target.running:
            self._spawn(target)
        self._wait_client_port(target, timeout)
        self.wait_ready(timeout)
        return target

    # ---- readiness

    def meta_leader(self) -> str | None:
        """The meta leader every running node agrees on, or None (no leader, or no
        agreement yet, or no node answers)."""
        leaders = set()
        for node in self.nodes:
            if not node.running:
                continue
            try:
                leaders.add(node.monitor("/jsz").get("meta_cluster", {}).get("leader"))
            except (OSError, ValueError):
                return None
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        return str(leader) if leader else None

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Until the running nodes agree on a meta leader and each says it is healthy
        (``/healthz``: JetStream current); returns the leader's name."""
        deadline = time.monotonic() + timeout
        last = "nothing asked"
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(f"{node.name} exited; see {node.log_file}")
            leader = self.meta_leader()
            if leader is None:
                last = "no agreed meta leader"
            else:
                unhealthy = []
                for node in self.nodes:
                    if node.running:
                        try:
                            health = node.monitor("/healthz")
                        except (OSError, ValueError) as err:
                            health = {"error": str(err)}
                        if health.get("status") != "ok":
                            unhealthy.append(f"{node.name}: {health}")
                if not unhealthy:
                    return leader
                last = "; ".join(unhealthy)
            time.sleep(0.1)
        raise RuntimeError(f"cluster {self.name} not ready in {timeout} s: {last}")

    # ---- processes

    def _spawn(self, node: ClusterNode) -> None:
        node.store_dir.mkdir(parents=True, exist_ok=True)
        routes = ",".join(other.route_url for other in self.nodes if other is not node)
        command = [
            str(nats_server_binary()),
            "-js",
            "-sd",
            str(node.store_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(node.client_port),
            "-m",
            str(node.monitor_port),
            "-n",
            node.name,
            "--cluster_name",
            self.name,
            "--cluster",
            node.route_url,
            "--routes",
            routes,
        ]
        with node.log_file.open("ab") as log:
            node.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _wait_client_port(self, node: ClusterNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited early; see {node.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", node.client_port), timeout=1) as sock:
                    if sock.makefile("rb").readline().startswith(b"INFO "):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{node.name}: client port not open; see {node.log_file}")

    @staticmethod
    def _end(node: ClusterNode, kill: bool, timeout: float) -> None:
        process, node.process = node.process, None
        end_process(process, kill=kill, timeout=timeout)
