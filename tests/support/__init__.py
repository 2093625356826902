"""Helpers shared by the tests: free ports, a real nats-server process, PostgreSQL probing."""

from tests.support.nats_server import NatsServer, nats_server_binary
from tests.support.ports import free_port

__all__ = ["NatsServer", "free_port", "nats_server_binary"]
