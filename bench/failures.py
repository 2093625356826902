"""Benchmark of the failures view: projection throughput and ListFailedEvents latency.

Per store (SQLite file, PostgreSQL schema):

1. ``apply``: generated AttemptRecords (tests/support/failures_history.py: interleaved
   deliveries that fail, retry, recover, are redelivered) decoded and applied in batches of
   the projector's BATCH_SIZE as its worker thread does, into an empty view: attempts/s
   (and per CPU second of the process: the database runs in it).
2. ``end to end``: the same records published to ATTEMPTS on a fresh nats-server first,
   then a Projector started on an empty view; the time until it has caught up with the
   stream: attempts/s through NATS (ordered consumer, batching, decode, apply). Then
   ``rebuild`` (replay into shadow tables and swap) on that view, timed, and the check that
   the rebuilt view equals the live one row for row (dumps of every table compared).
3. ``list``: ``--events`` failed events for one tenant written straight into the view's
   table by one SQL statement (no history: listing does not read it), ANALYZE, then
   ``list_failed`` (first page of 50, newest first, in-process, no gRPC) with one filter
   per case, ``--calls`` calls each after 10 warm-ups: p50 / p99 / rows on the page,
   and the p99 of the calling thread's CPU time (a p99 far above it is waiting for a CPU).

Results are printed as tables and written to bench/results/failures-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support

import nats  # noqa: E402

from tests.support import NatsServer  # noqa: E402
from tests.support.failures_history import Generator  # noqa: E402
from tests.support.postgres import drop_schemas  # noqa: E402
from webhooks.v1 import messages_pb2  # noqa: E402
from webhooks_config import load_settings  # noqa: E402
from webhooks_failures.model import FAILED, REDELIVERED, RETRYING, Filter  # noqa: E402
from webhooks_failures.projector import BATCH_SIZE as PROJECTOR_BATCH_SIZE  # noqa: E402
from webhooks_failures.projector import Projector  # noqa: E402
from webhooks_failures.rebuild import rebuild  # noqa: E402
from webhooks_failures.view import (  # noqa: E402
    FailuresView,
    PostgresFailuresView,
    SQLiteFailuresView,
)
from webhooks_messaging import ATTEMPTS, attempts_subject, declare_streams  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = PROJECTOR_BATCH_SIZE  # as the projector does
PUBLISH_WINDOW = 5000
LIST_TENANT = "bench"
BASE_US = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
STEP_US = 2_000_000  # 2 s between failed events: 1,000,000 span about 23 days
ENTITIES = ("Object", "Contact", "Invoice", "User", "Tag", "Form", "Chat")
TRIGGERS = ("OnNew", "OnUpdate", "OnDelete")
# (error code, status, failure class, message)
CODES = (
    ("500", 500, 1, "HTTP 500 Internal Server Error"),
    ("502", 502, 1, "HTTP 502 Bad Gateway"),
    ("503", 503, 1, "HTTP 503 Service Unavailable"),
    ("504", 504, 1, "HTTP 504 Gateway Timeout"),
    ("429", 429, 1, "HTTP 429 Too Many Requests"),
    ("404", 404, 1, "HTTP 404 Not Found"),
    ("timeout", 0, 2, "no response within 10 s"),
    ("connect", 0, 4, "connection refused"),
    ("tls", 0, 5, "TLS: certificate has expired"),
    ("dns", 0, 3, "DNS: name does not resolve"),
)
RARE_EVERY = 1000  # one message in a thousand contains "zebra"


# ---- stores


class Store:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.schemas: list[str] = []

    def view(self, name: str) -> FailuresView:
        if self.kind == "sqlite":
            return SQLiteFailuresView(self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.db")
        schema = f"bench_failures_{name}_{uuid.uuid4().hex[:8]}"
        self.schemas.append(schema)
        return PostgresFailuresView(POSTGRES_URL, schema)

    def drop(self) -> None:
        drop_schemas(POSTGRES_URL, self.schemas)


# ---- 1. apply


def bench_apply(store: Store, payloads: Sequence[bytes]) -> dict[str, Any]:
    view = store.view("apply")
    try:
        started = time.perf_counter()
        cpu = time.process_time()
        batch_seconds = []
        position = 0
        for start in range(0, len(payloads), BATCH):
            t = time.perf_counter()
            chunk = payloads[start : start + BATCH]
            records = [
                (position + i, messages_pb2.AttemptRecord.FromString(data))
                for i, data in enumerate(chunk, 1)
            ]
            view.apply(position, records)
            position += len(chunk)
            batch_seconds.append(time.perf_counter() - t)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        return {
            "attempts": len(payloads),
            "seconds": round(seconds, 2),
            "attempts_per_s": round(len(payloads) / seconds),
            # CPU of this process (the database is in it): what a core to itself would do.
            "attempts_per_cpu_s": round(len(payloads) / cpu),
            "batch_p50_ms": round(percentile(batch_seconds, 0.5) * 1000, 1),
            "batch_p99_ms": round(percentile(batch_seconds, 0.99) * 1000, 1),
        }
    finally:
        view.close()


# ---- 2. end to end and rebuild


async def bench_end_to_end(store: Store, payloads: Sequence[bytes]) -> dict[str, Any]:
    server = NatsServer(store.workdir / f"nats-{uuid.uuid4().hex[:6]}")
    server.start()
    nc = await nats.connect(server.url)
    view = store.view("e2e")
    try:
        js = nc.jetstream()
        await declare_streams(js, load_settings({"WEBHOOKS_NATS_URL": server.url}))
        t = time.perf_counter()
        for start in range(0, len(payloads), PUBLISH_WINDOW):
            acks = []
            for data in payloads[start : start + PUBLISH_WINDOW]:
                r = messages_pb2.AttemptRecord.FromString(data)
                acks.append(
                    await js.publish_async(
                        attempts_subject(r.tenant, r.subscription_id),
                        data,
                        stream=ATTEMPTS,
                        headers={"Nats-Msg-Id": f"{r.delivery_id}:{r.series}:{r.attempt}"},
                    )
                )
            await asyncio.gather(*acks)
        published = time.perf_counter() - t

        projector = Projector(view)
        stop = asyncio.Event()
        t = time.perf_counter()
        cpu = time.process_time()
        task = asyncio.create_task(projector.run(js, stop))
        if not await projector.caught_up(js, 3600):
            raise RuntimeError("the projector did not catch up")
        projected = time.perf_counter() - t
        cpu = time.process_time() - cpu

        live = await asyncio.to_thread(view.dump)
        t = time.perf_counter()
        applied, failed_events = await rebuild(js, view, projector)
        rebuilt_seconds = time.perf_counter() - t
        rebuilt = await asyncio.to_thread(view.dump)
        stop.set()
        await task
        return {
            "attempts": len(payloads),
            "publish_per_s": round(len(payloads) / published),
            "seconds": round(projected, 2),
            "attempts_per_s": round(len(payloads) / projected),
            # CPU of this process (nats-py, the projector, SQLite; not nats-server's).
            "attempts_per_cpu_s": round(len(payloads) / cpu),
            "batches": projector.batches_applied,
            "rebuild_seconds": round(rebuilt_seconds, 2),
            "rebuild_attempts_per_s": round(applied / rebuilt_seconds),
            "rebuild_failed_events": failed_events,
            "rebuilt_equals_live": rebuilt == live,
        }
    finally:
        view.close()
        await nc.close()
        server.stop()


# ---- 3. list latency


def seed_sql(kind: str, table: str, events: int) -> str:
    """``events`` failed events of LIST_TENANT in one INSERT ... SELECT over a generated
    series; fields spread by multiplicative hashing so they are independent."""
    series = "c"
    if kind == "postgres":
        series = f"(SELECT generate_series(1::bigint, {events}) AS x) AS g"
    prefix = (
        ""
        if kind == "postgres"
        else (
            f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {events}) "
        )
    )

    def h(multiplier: int, n: int) -> str:
        # x * multiplier modulo a prime near 2^32: independent enough across fields.
        return f"(((x * {multiplier}) % 4294967291) % {n})"

    def pick(expr: str, values: Sequence[Any]) -> str:
        whens = " ".join(f"WHEN {i} THEN {sql_literal(v)}" for i, v in enumerate(values))
        return f"CASE {expr} {whens} END"

    code = h(2654435761, 10)
    s = h(40503, 100)
    state = f"CASE WHEN {s} < 10 THEN 1 WHEN {s} < 70 THEN 2 WHEN {s} < 95 THEN 3 ELSE 4 END"
    message = (
        f"{pick(code, [c[3] for c in CODES])} || "
        f"CASE WHEN x % {RARE_EVERY} = {RARE_EVERY // 2} THEN ' (zebra crossing)' ELSE '' END"
    )
    columns = (
        f"'{LIST_TENANT}', 'd' || x, 'e' || x, 'sub-' || {h(97, 50)}, "
        f"'Hook ' || {h(97, 50)}, {pick(h(2246822519, 7), ENTITIES)}, "
        f"{pick(h(3266489917, 3), TRIGGERS)}, "
        f"CASE WHEN {h(668265263, 4)} = 0 THEN NULL ELSE {h(668265263, 4)} END, "
        f"{pick(h(374761393, 3), ['', 'web', 'mobile'])}, "
        f"{BASE_US} + x * {STEP_US} + (x * 7) % 1000000, "
        f"{pick(code, [c[0] for c in CODES])}, {pick(code, [c[1] for c in CODES])}, "
        f"{pick(code, [c[2] for c in CODES])}, {message}, lower({message}), "
        f"1 + x % 4, 1 + x % 4, {state}, 1, 1, 1 + x % 4"
    )
    names = (
        "tenant, delivery_id, event_id, subscription_id, subscription_name, entity, "
        "trigger_name, channel, subchannel, last_attempt_us, error_code, status_code, "
        "failure_class, error_message, message_key, attempts, failed_attempts, state, "
        "max_series, head_series, head_attempt"
    )
    return f"{prefix}INSERT INTO {table} ({names}) SELECT {columns} FROM {series}"


def sql_literal(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def list_cases(events: int) -> dict[str, Callable[[int], Filter]]:
    middle = BASE_US + events // 2 * STEP_US
    day = events * STEP_US // 23  # a day with 1,000,000 events: about 4% of them
    return {
        "no filter": lambda i: Filter(),
        "one subscription (2%)": lambda i: Filter(subscription_ids=(f"sub-{i % 50}",)),
        "three subscriptions": lambda i: Filter(
            subscription_ids=tuple(f"sub-{(i + k) % 50}" for k in range(3))
        ),
        "state failed (60%)": lambda i: Filter(states=(FAILED,)),
        "states retrying+redelivered": lambda i: Filter(states=(RETRYING, REDELIVERED)),
        "error code (10%)": lambda i: Filter(error_codes=(CODES[i % 10][0],)),
        "entity + trigger": lambda i: Filter(entity=ENTITIES[i % 7], trigger=TRIGGERS[i % 3]),
        "channel + subchannel": lambda i: Filter(channel=1 + i % 3, subchannel="web"),
        "time range (~4%)": lambda i: Filter(
            since=at(middle - (i % 10) * day), until=at(middle - (i % 10 - 1) * day)
        ),
        "message, common": lambda i: Filter(message_contains="gateway"),
        "message, rare (0.1%)": lambda i: Filter(message_contains="zebra"),
        "subscription + state + code": lambda i: Filter(
            subscription_ids=(f"sub-{i % 50}",), states=(FAILED,), error_codes=("503",)
        ),
        "all filters, 2 x ~4% range": lambda i: Filter(
            subscription_ids=(f"sub-{i % 50}",),
            entity=ENTITIES[i % 7],
            states=(FAILED, RETRYING),
            since=at(middle - 2 * day),
            until=at(middle),
        ),
    }


def bench_list(store: Store, events: int, calls: int) -> dict[str, Any]:
    view = store.view("list")
    try:
        t = time.perf_counter()
        with view.transaction() as cursor:
            cursor.execute(seed_sql(store.kind, view.tables.events, events))
        view.fill_message_search()  # the seed bypasses the fold, which keeps it
        with view.transaction() as cursor:
            cursor.execute("ANALYZE")
        seeded = time.perf_counter() - t
        results: dict[str, Any] = {"events": events, "seed_seconds": round(seeded, 1)}
        cases = list_cases(events)
        second_page = view.list_failed(LIST_TENANT, Filter(), 50, "").next_page_token
        cases_with_token: dict[str, tuple[Callable[[int], Filter], str]] = {
            name: (make, "") for name, make in cases.items()
        }
        cases_with_token["no filter, page 2"] = (lambda i: Filter(), second_page)
        for name, (make, token) in cases_with_token.items():
            for i in range(10):
                view.list_failed(LIST_TENANT, make(i), 50, token)
            durations = []
            cpu = []
            rows = []
            for i in range(calls):
                f = make(i)
                t = time.perf_counter()
                c = time.thread_time()
                page = view.list_failed(LIST_TENANT, f, 50, token)
                cpu.append(time.thread_time() - c)
                durations.append(time.perf_counter() - t)
                rows.append(len(page.failed_events))
            results[name] = {
                "p50_ms": round(percentile(durations, 0.5) * 1000, 2),
                "p99_ms": round(percentile(durations, 0.99) * 1000, 2),
                # CPU of the calling thread (on SQLite the whole query; on PostgreSQL the
                # client's part): a p99 far above it is time spent waiting for a CPU.
                "cpu_p99_ms": round(percentile(cpu, 0.99) * 1000, 2),
                "mean_ms": round(statistics.fmean(durations) * 1000, 2),
                "rows": min(rows),
            }
        return results
    finally:
        view.close()


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# ---- main


def report(results: dict[str, Any]) -> None:
    print()
    print(f"{'store':<9} {'case':<14} {'attempts':>9} {'attempts/s':>11}  notes")
    for kind, r in results["stores"].items():
        if "apply" in r:
            a = r["apply"]
            print(
                f"{kind:<9} {'apply':<14} {a['attempts']:>9} {a['attempts_per_s']:>11}  "
                f"batch p50 {a['batch_p50_ms']} ms, p99 {a['batch_p99_ms']} ms; "
                f"{a['attempts_per_cpu_s']}/s of CPU"
            )
        if "end_to_end" in r:
            e = r["end_to_end"]
            print(
                f"{kind:<9} {'end to end':<14} {e['attempts']:>9} {e['attempts_per_s']:>11}  "
                f"{e['batches']} batches; published at {e['publish_per_s']}/s; "
                f"{e['attempts_per_cpu_s']}/s of CPU"
            )
            print(
                f"{kind:<9} {'rebuild':<14} {e['attempts']:>9} {e['rebuild_attempts_per_s']:>11}"
                f"  {e['rebuild_seconds']} s, {e['rebuild_failed_events']} failed events, "
                f"equals live: {e['rebuilt_equals_live']}"
            )
    for kind, r in results["stores"].items():
        if "list" not in r:
            continue
        lst = r["list"]
        print()
        print(f"{kind}: list_failed, first page of 50, {lst['events']:,} failed events")
        print(f"  {'filter':<30} {'p50 ms':>8} {'p99 ms':>8} {'CPU p99':>8} {'rows':>5}")
        for name, v in lst.items():
            if isinstance(v, dict):
                print(
                    f"  {name:<30} {v['p50_ms']:>8} {v['p99_ms']:>8} {v['cpu_p99_ms']:>8} "
                    f"{v['rows']:>5}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cases", default="apply,e2e,list", help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="20,000 attempts, 100,000 events")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.quick:
        args.attempts, args.events, args.calls = 20_000, 100_000, 50
    cases = set(args.cases.split(","))
    kinds = ["sqlite", "postgres"] if args.store == "both" else [args.store]

    t = time.perf_counter()
    history = Generator(seed=42, tenants=("acme", "globex", "initech"), subscriptions=20)
    payloads = [r.SerializeToString() for r in history.history(args.attempts, 2000).records]
    print(f"generated {len(payloads)} attempts in {time.perf_counter() - t:.1f} s")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "args": vars(args),
        "stores": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-failures-") as workdir:
        for kind in kinds:
            store = Store(kind, Path(workdir))
            r: dict[str, Any] = {}
            results["stores"][kind] = r
            try:
                if "apply" in cases:
                    r["apply"] = bench_apply(store, payloads)
                    print(kind, "apply", r["apply"])
                if "e2e" in cases:
                    r["end_to_end"] = asyncio.run(bench_end_to_end(store, payloads))
                    print(kind, "end to end", r["end_to_end"])
                if "list" in cases:
                    r["list"] = bench_list(store, args.events, args.calls)
                    print(kind, "list", json.dumps(r["list"]))
            finally:
                store.drop()
    report(results)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"failures-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {path.relative_to(REPO)}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
