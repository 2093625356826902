"""``webhooks status``: one screen for an SRE — each service's health and version, each
stream's size, each durable consumer's pending count and oldest age, retries scheduled,
relay and projection lag, dead letters.

Every service is asked at once (threads, each bounded by ``--timeout``): its health
(``webhooks health``'s probe: gRPC health checking, the console's ``/healthz``) and its
Prometheus endpoint (``WEBHOOKS_<SERVICE>_METRICS_ADDR``, else the address ``webhooks up``
gives it). The numbers are read from those scrapes (status_report.py); nothing here talks
to NATS or needs a token. What is missing shows as unavailable, with the reason.

Exit code: 0 when every installed service answers SERVING, 1 when any does not (down,
unreachable, NOT_SERVING); missing metrics and a large backlog do not change it (the
alert rules judge those). ``--watch`` redraws every SECONDS until Ctrl-C, then exits 0;
with ``--json`` it prints one JSON document per line instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from webhooks_cli.errors import CliError, UsageError
from webhooks_cli.health import WILDCARD_HOSTS, probe, probe_target
from webhooks_cli.services import available_services
from webhooks_cli.status_report import Probe, build_report, render
from webhooks_config import UP_METRICS_ADDRESSES, Settings
from webhooks_telemetry.metrics import split_address

MAX_SCRAPE_BYTES = 16 * 1024 * 1024
# Cursor home, then each line cleared to its end and the rest of the screen after the
# last: the screen is redrawn in place, without the flicker of clearing it first.
HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"


def metrics_address(settings: Settings, service: str) -> str:
    """The configured metrics address, else the one ``webhooks up`` gives the service."""
    return settings.metrics_addresses.get(service) or UP_METRICS_ADDRESSES.get(service, "")


def health_of(service: str, address: str, timeout: float) -> str:
    try:
        return probe(service, probe_target(address), timeout)
    except CliError as err:
        return err.message.rpartition(": ")[2] or "unreachable"  # "unreachable (...)"


def scrape(address: str, settings: Settings, timeout: float) -> tuple[str | None, str]:
    """The text of ``http://address/metrics``, or None and why not."""
    try:
        host, port = split_address(address, settings.metrics_host)
    except ValueError:
        return None, f"{address!r}: expected HOST:PORT"
    host = WILDCARD_HOSTS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{port}/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.read(MAX_SCRAPE_BYTES).decode("utf-8", "replace"), ""
    except urllib.error.HTTPError as err:
        return None, f"{url}: HTTP {err.code}"
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror  # "Connection refused", not "[Errno 111] ..."
        return None, f"{url}: {reason}"


def ask(service: str, settings: Settings, timeout: float) -> Probe:
    address = settings.address(service)
    where = metrics_address(settings, service)
    health = health_of(service, address, timeout)
    text, problem = scrape(where, settings, timeout) if where else (None, "not configured")
    return Probe(service, address, health, where, text, problem)


def gather(settings: Settings, services: list[str], timeout: float) -> dict[str, Any]:
    """Every service asked at once; the report of what they said."""
    with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
        probes = list(pool.map(lambda s: ask(s, settings, timeout), services))
    return build_report(probes)


def show(report: dict[str, Any], *, as_json: bool, watching: float | None) -> None:
    if as_json:
        indent = None if watching else 2  # watching: one document per line
        print(json.dumps(report, indent=indent, sort_keys=True), flush=True)
        return
    text = render(report)
    if watching is None:
        print(text)
        return
    footer = f"every {watching:g} s, {time.strftime('%H:%M:%S')}; Ctrl-C to stop"
    lines = [*text.split("\n"), "", footer]
    sys.stdout.write(HOME + "".join(line + CLEAR_LINE + "\n" for line in lines) + CLEAR_BELOW)
    sys.stdout.flush()


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    services = available_services()
    if args.watch is None:
        report = gather(settings, services, args.timeout)
        show(report, as_json=args.json, watching=None)
        return 0 if report["healthy"] else 1
    try:
        while True:
            show(gather(settings, services, args.timeout), as_json=args.json, watching=args.watch)
            time.sleep(args.watch)
    except KeyboardInterrupt:
        if not args.json:
            print()
        return 0
