"""``webhooks demo`` as a newcomer runs it: a subprocess on its own data dir and ports.

First with no platform running, so the demo starts its own ``webhooks up`` (loopback
admitted, the demo CA trusted, short retries) and stops it at the end; then against an
``up`` started without the outbound allow-list, where the demo must say in one line how to
restart it instead of waiting for deliveries that never come.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Platform, clean_environment
from tests.support import free_port
from webhooks_cli.up import is_serving
from webhooks_config import SERVICES

DEMO_TIMEOUT_SECONDS = 120.0

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("webhooks_failures.service") is None,
    reason="the demo needs every service",
)


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhooks_cli", "demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
    )


def delivery_lines(output: str, subscription: str) -> list[str]:
    """The first line of every delivery the demo's receiver showed for a subscription."""
    lines = output.splitlines()
    return [line for line in lines if line.startswith("  <- ") and subscription in line]


def test_the_demo_starts_a_platform_and_shows_deliveries_a_failure_and_its_recovery(
    tmp_path: Path,
) -> None:
    addresses = {service: f"127.0.0.1:{free_port()}" for service in SERVICES}
    env = clean_environment()
    env.update({f"WEBHOOKS_{s.upper()}_ADDR": a for s, a in addresses.items()})
    # No metrics endpoints (empty: off): ``up``'s defaults (9451-9455) would collide between
    # stacks running at once.
    env.update({f"WEBHOOKS_{s.upper()}_METRICS_ADDR": "" for s in SERVICES})
    env["WEBHOOKS_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONUNBUFFERED"] = "1"

    result = run_demo(env)
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert "Traceback" not in out + result.stderr, result.stderr
    assert "starting `webhooks up`" in out and "platform up in" in out

    # Every subscription got its deliveries, each with a valid signature.
    run = re.search(r"demo-([0-9a-f]{6}) CRM", out)
    assert run, out
    crm = delivery_lines(out, f"demo-{run[1]} CRM (REST)")
    tickets = delivery_lines(out, f"demo-{run[1]} Tickets (REST)")
    erp = delivery_lines(out, f"demo-{run[1]} ERP audit (SOAP)")
    assert len(crm) == 3, out  # the test event, User OnNew, User OnUpdate
    assert "User OnNew" in crm[1] and "User OnUpdate" in crm[2]
    assert len(tickets) == 4, out  # delivered; failed twice (1 retry); redelivered
    assert [("answered 503" in line) for line in tickets] == [False, True, True, False]
    assert len(erp) == 1 and "Tag OnAdd" in erp[0], out
    shown = crm + tickets + erp
    assert all("signature ok" in line for line in shown), out
    assert "JSON  " in out and "SOAP XML  <NotifyTag" in out

    # The failed event, as `webhooks failures show` shows it, with its trial history.
    failed = out[out.index("lists it as failed") : out.index("Fix the endpoint")]
    assert failed.index("Overview") < failed.index("Payload") < failed.index("Trial History")
    assert "state         failed" in failed
    trials = [line for line in failed.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(trials) == 2, failed  # the first attempt and its one retry
    assert "failed, will retry" in trials[0] and "failed" in trials[1]
    assert all(" 503 " in line and "down for maintenance" in line for line in trials)

    # Redelivered and recovered.
    after = out[out.index("Fix the endpoint") :]
    assert "sent again 1 of 1" in after
    assert "is now recovered" in after
    assert re.search(r"1 \(manual\)\s+succeeded\s+204", after), after
    assert "8 with a valid signature" in out
    assert "deleted the demo's 3 subscriptions" in out

    # The platform it started is stopped again.
    assert "stopping the platform the demo started" in out
    assert not any(is_serving(address) for address in addresses.values())


def test_against_a_platform_that_refuses_loopback_the_demo_says_how_to_restart_it(
    tmp_path: Path,
) -> None:
    platform = Platform.create(tmp_path)
    del platform.env["WEBHOOKS_OUTBOUND_ALLOW"], platform.env["WEBHOOKS_CA_BUNDLE"]
    platform.start()
    try:
        result = run_demo(platform.env)
        assert result.returncode == 1, result.stdout
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        ca_file = platform.data_dir / "demo" / "ca.pem"
        assert "(blocked_destination)" in lines[0]
        assert (
            f"`WEBHOOKS_OUTBOUND_ALLOW=127.0.0.0/8 WEBHOOKS_CA_BUNDLE={ca_file} webhooks up`"
            in lines[0]
        )
        assert ca_file.exists()
        assert "using the platform running at" in result.stdout
        # It created one subscription to probe with, and deleted it again.
        assert "deleted the demo's 1 subscription " in result.stdout
        left = platform.run_json("subscriptions", "list", "--name-contains", "demo-")
        assert left["subscriptions"] == []
    finally:
        assert platform.stop() == 0, platform.log()
