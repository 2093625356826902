"""CLI start-up (issue 16): how long ``webhooks`` takes before it does anything.

Times ``python -c pass`` (the interpreter's own start), ``python -m webhooks_cli --help``,
the ``--help`` of every command and action, and ``subscriptions list`` against a closed
port (a real command up to its first connection attempt, which fails at once), each as a
whole process, N runs each, alternated (one run of every command per round, so drift on a
shared machine hits them alike). Prints each median, its difference from ``python -c
pass``, and met/missed against the goal (0.3 s for the whole command).

    .venv/bin/python bench/cli_startup.py                 # this checkout, 20 rounds
    .venv/bin/python bench/cli_startup.py --runs 10 --baseline /tmp/b-cli/libs

``--baseline DIR`` times the same commands a second time with ``PYTHONPATH=DIR`` (another
checkout's ``libs``, e.g. ``git worktree add --detach /tmp/b-cli <rev>``), alternated with
this one, and prints both.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

GOAL_SECONDS = 0.3
ROOT = Path(__file__).resolve().parent.parent
HELPS = (
    (),
    *[(c,) for c in ("up", "serve", "health", "status", "catalogue", "replay", "deadletters")],
    *[(c,) for c in ("demo", "secret-key", "nats-auth")],
    ("subscriptions",),
    *[("subscriptions", a) for a in ("create", "list", "get", "update", "activate", "enable")],
    *[("subscriptions", a) for a in ("deactivate", "delete", "history", "test", "rotate-secret")],
    *[("certificates",), ("certificates", "upload"), ("certificates", "list")],
    ("certificates", "delete"),
    *[("events",), ("events", "publish")],
    *[("failures",), *[("failures", a) for a in ("list", "show", "retry", "rebuild")]],
    *[("tokens",), *[("tokens", a) for a in ("add", "list", "convert")]],
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def commands() -> dict[str, list[str]]:
    python = [sys.executable]
    found = {"python -c pass": [*python, "-c", "pass"]}
    for words in HELPS:
        found[" ".join(("webhooks", *words, "--help"))] = [
            *python,
            *("-m", "webhooks_cli", *words, "--help"),
        ]
    address = f"127.0.0.1:{closed_port()}"
    found["webhooks subscriptions list (closed port)"] = [
        *python,
        *("-m", "webhooks_cli", "subscriptions", "list", "--token", "t", "--address", address),
    ]
    return found


def run_once(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the kernel's accounting of the child)."""
    started = time.perf_counter()
    quiet = subprocess.DEVNULL
    child = subprocess.Popen(argv, env=env, stdin=quiet, stdout=quiet, stderr=quiet)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):  # 1: the closed port, as expected
        raise SystemExit(f"{' '.join(argv)}: exit {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime


Times = dict[tuple[str, str], list[tuple[float, float]]]


def measure(todo: dict[str, list[str]], envs: dict[str, dict[str, str]], runs: int) -> Times:
    """Every (checkout, command) ``runs`` times, one of each per round."""
    times: Times = {(e, c): [] for e in envs for c in todo}
    for _ in range(runs):
        for name, argv in todo.items():
            for label, env in envs.items():
                times[(label, name)].append(run_once(argv, env))
    return times


def report(times: Times, labels: list[str], names: list[str]) -> None:
    wall = {key: statistics.median(w for w, _ in values) for key, values in times.items()}
    cpu = {key: statistics.median(c for _, c in values) for key, values in times.items()}
    width = max(len(n) for n in names)
    print(f"{'':<{width}}" + "".join(f"  {label[:34]:>34}" for label in labels))
    print(f"{'median seconds':<{width}}" + "  wall  -pass   cpu  -pass   goal" * len(labels))
    for name in names:
        cells = []
        for label in labels:
            key, bare = (label, name), (label, "python -c pass")
            over = wall[key] >= GOAL_SECONDS
            verdict = "" if name == "python -c pass" else "MISSED" if over else "met"
            cells.append(
                f"  {wall[key]:.3f} {wall[key] - wall[bare]:+.3f} {cpu[key]:.3f} "
                f"{cpu[key] - cpu[bare]:+.3f} {verdict:>6}"
            )
        print(f"{name:<{width}}{''.join(cells)}")
    for label in labels:
        own = [n for n in names if n != "python -c pass"]
        missed = sum(1 for n in own if wall[(label, n)] >= GOAL_SECONDS)
        slowest = max(own, key=lambda n: wall[(label, n)])
        print(
            f"{label}: {missed} of {len(own)} medians over {GOAL_SECONDS} s; slowest "
            f"{wall[(label, slowest)]:.3f} s ({slowest})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("--baseline", metavar="DIR", help="another checkout's libs to compare")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    base["WEBHOOKS_DATA_DIR"] = str(ROOT / ".webhooks-bench-cli")  # no dev token read
    envs = {"this checkout": dict(base)}
    if args.baseline:
        envs[f"baseline {args.baseline}"] = {**base, "PYTHONPATH": args.baseline}
    todo = commands()
    print(f"{len(todo)} commands x {args.runs} rounds x {len(envs)} checkouts", flush=True)
    times = measure(todo, envs, args.runs)
    report(times, list(envs), list(todo))


if __name__ == "__main__":
    main()
