"""``webhooks health SERVICE``: is that service SERVING? The container health check.

Asks the standard gRPC health service (``grpc.health.v1.Health/Check``, the server as a
whole), or for the console (HTTP) its ``/healthz`` page, at the service's address:
``WEBHOOKS_<SERVICE>_ADDR``, the same variable the service listens on, or ``--address``.
A wildcard listen address (``0.0.0.0``, ``[::]``) is asked on loopback. Exit 0 and one
line on stdout when SERVING; otherwise exit 1 and one line on stderr (not serving, or
unreachable within ``--timeout``). ``--json`` prints ``service``, ``address`` and ``status``
as a JSON object on stdout for any status the service answered (unreachable stays an
error). Needs no token: health checking is open on every service.
"""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from webhooks_cli.args_platform import HEALTH_TIMEOUT_SECONDS
from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.output import print_json
from webhooks_config import Settings

DEFAULT_TIMEOUT_SECONDS = HEALTH_TIMEOUT_SECONDS  # --timeout's default
WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}


def probe_target(address: str) -> str:
    """Where to connect to reach a server listening on ``address`` from the same host."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise UsageError(f"address {address!r}: expected HOST:PORT")
    return f"{WILDCARD_HOSTS.get(host, host)}:{port}"


HTTP_SERVICES = ("console",)


def http_status(target: str, timeout: float) -> str:
    """SERVING when ``http://target/healthz`` answers 200; else what went wrong."""
    # No proxy from the environment between a probe and its own host.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{target}/healthz", timeout=timeout) as response:
            return "SERVING" if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        raise CliError(f"console at {target}: unreachable ({type(error).__name__})") from None


def is_ready(service: str, address: str, timeout: float = 1.0) -> bool:
    """Whether ``service`` listening on ``address`` answers SERVING (``webhooks up``)."""
    try:
        return probe(service, probe_target(address), timeout) == "SERVING"
    except CliError:
        return False


def probe(service: str, target: str, timeout: float) -> str:
    """The service's status name; CliError when it cannot be reached."""
    if service in HTTP_SERVICES:
        return http_status(target, timeout)
    # A proxy from the environment must not stand between a probe and its own host.
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            name = code.name if code is not None else type(error).__name__
            raise CliError(f"{service} at {target}: unreachable ({name})") from None
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def run_health(args: argparse.Namespace, settings: Settings) -> int:
    service: str = args.service
    target = probe_target(args.address or settings.address(service))
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    status = probe(service, target, args.timeout)
    if args.json:  # an answer, SERVING or not, is the result; unreachable is an error
        print_json({"service": service, "address": target, "status": status})
    if status != "SERVING":
        raise CliError(f"{service} at {target}: {status}")
    if not args.json:
        print(f"{service} at {target}: {status}")
    return 0
