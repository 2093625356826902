"""Issue 17's goals judged on one ``bench/e2e.py`` report, and the report printed.

Every goal is a ratio to a ceiling measured in the same run, a latency at a load derived
from the capacity measured in the same run, or a count: so it holds on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.e2e_probe import PLATFORM_ROLES

RAW_RATIO_MIN = 0.6  # fan-out 1 deliveries/s over the raw loop's requests/s
CPU_RATIO_MAX = 2.5  # platform CPU per delivery over the raw loop's CPU per request
HALF_P50_MS = 10.0
HALF_P99_MS = 25.0
SINGLE_P99_MS = 25.0
RSS_GROWTH_MAX_PCT = 10.0  # exclusive

ROLES = (*PLATFORM_ROLES, "nginx", "bench", "irq", "others")


@dataclass(frozen=True)
class Goal:
    key: str
    label: str
    bound: str
    figure: float | None  # None: not measured in this run
    met: bool | None

    def row(self) -> dict[str, Any]:
        status = "not run" if self.met is None else "met" if self.met else "missed"
        return {
            "goal": self.key,
            "label": self.label,
            "figure": self.figure,
            "bound": self.bound,
            "status": status,
        }


def _at_most(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal of issue 17 with its figure, its bound and met / missed ("not run": the
    soak without ``--soak``)."""
    fan1 = report["throughput"][0]
    half, single = report["half_load"], report["single_event"]
    ratio, cpu = fan1.get("ratio_to_raw"), fan1.get("cpu_to_raw")
    found = [
        Goal("throughput_to_raw", "fan-out 1 deliveries/s / raw loop req/s",
             f">= {RAW_RATIO_MIN}", ratio, None if ratio is None else ratio >= RAW_RATIO_MIN),
        Goal("cpu_to_raw", "CPU per delivery (platform) / raw loop CPU per request",
             f"<= {CPU_RATIO_MAX}", cpu, _at_most(cpu, CPU_RATIO_MAX)),
        Goal("half_load_p99_ms", "half load: p99 publish -> receipt, ms",
             f"<= {HALF_P99_MS:g}", half["p99_ms"], _at_most(half["p99_ms"], HALF_P99_MS)),
        Goal("half_load_p50_ms", "half load: p50 publish -> receipt, ms",
             f"<= {HALF_P50_MS:g}", half["p50_ms"], _at_most(half["p50_ms"], HALF_P50_MS)),
        Goal("single_event_p99_ms", "single-event calls, quarter load: p99, ms",
             f"<= {SINGLE_P99_MS:g}", single["p99_ms"],
             _at_most(single["p99_ms"], SINGLE_P99_MS)),
    ]  # fmt: skip
    return [goal.row() for goal in [*found, *soak_goals(report.get("soak"))]]


SOAK_LABELS = {
    "soak_lost": "soak: deliveries lost",
    "soak_duplicates": "soak: duplicates at the receiver",
    "soak_rss_growth_pct": "soak: largest service RSS growth after 1st sample, %",
    "soak_pending_growth": "soak: consumers' unfinished msgs, end - 1st sample",
}


def soak_goals(soak: dict[str, Any] | None) -> list[Goal]:
    tolerance = "1 s of load" if soak is None else f"{soak['pending']['tolerance']:,} (1 s of load)"
    bounds = {
        "soak_lost": "== 0",
        "soak_duplicates": "== 0",
        "soak_rss_growth_pct": f"< {RSS_GROWTH_MAX_PCT:g}",
        "soak_pending_growth": f"<= {tolerance}",
    }
    if soak is None:
        return [Goal(key, label, bounds[key], None, None) for key, label in SOAK_LABELS.items()]
    rss = soak["rss_growth_pct_max"]
    figures = {
        "soak_lost": (soak["lost"], soak["lost"] == 0),
        "soak_duplicates": (soak["duplicates"], soak["duplicates"] == 0),
        "soak_rss_growth_pct": (rss, None if rss is None else rss < RSS_GROWTH_MAX_PCT),
        "soak_pending_growth": (soak["pending"]["growth"], not soak["pending"]["grew"]),
    }
    return [Goal(key, label, bounds[key], *figures[key]) for key, label in SOAK_LABELS.items()]


# ---- printing


def _cells(values: dict[str, float], roles: tuple[str, ...], spec: str) -> str:
    return " ".join(format(values.get(r, 0), spec).rjust(8) for r in roles)


def show(report: dict[str, Any]) -> None:
    meta = report["meta"]
    raw = report["raw_loop"]
    print(
        f"\n== end to end: {meta['routers']} router(s), {meta['senders']} sender(s), "
        f"sampler {meta['traces_sampler']}; load average {meta['load_before'][0]:.2f} "
        f"before, {meta['load_after'][0]:.2f} after =="
    )
    print(
        f"{'case':<34} {'events/s':>9} {'dlv/s':>7} {'/raw':>5}  "
        + " ".join(f"{r[:8]:>8}" for r in ROLES)
        + "   (cores)"
    )
    print(
        f"{'receiver: nginx, wrk -c64 (C)':<34} {'':>9} {report['receiver_wrk_requests_per_s']:>7,}"
    )
    print(
        f"{'raw aiohttp loop, 1 process':<34} {'':>9} {raw['requests_per_s']:>7,} {1.0:>5.2f}  "
        f"(c={raw['concurrency']}; before {raw['before']['requests_per_s']:,}, after "
        f"{raw['after']['requests_per_s']:,}; CPU {raw['cpu_us_per_request']} us per request)"
    )
    for row in report["throughput"]:
        show_throughput(row)
    for key in ("latency", "half_load", "single_event"):
        show_latency(report[key])
    if report.get("soak") is not None:
        show_soak(report["soak"])
    show_goals(report["goals"])
    print(f"duplicates at the receiver (whole run): {report['duplicates_at_receiver']}")


def show_throughput(row: dict[str, Any]) -> None:
    label = f"{row['case']} ({row['events']:,} events)"
    print(
        f"{label:<34} {row['events_per_s']:>9,} {row['deliveries_per_s']:>7,} "
        f"{row['ratio_to_raw']:>5.2f}  " + _cells(row["cpu_cores"], ROLES, ".2f")
    )
    per = row["cpu_us_per_delivery"]
    print(f"{'  CPU us per delivery':<34} {'':>23}  " + _cells(per, ROLES[:-2], ".0f"))
    print(
        f"{'  / raw loop CPU per request':<34} {'':>23}  "
        + _cells(row.get("cpu_to_raw_by_role", {}), ROLES[:-2], ".2f")
        + f"   platform {per.get('platform', 0):,.0f} us = {row.get('cpu_to_raw')} x raw"
    )


def show_latency(lat: dict[str, Any]) -> None:
    label = f"{lat['label']} {lat['offered_events_per_s']:,.0f}/s, {lat['events_per_call']}/call"
    failed = f"; failed calls {lat['failed_calls']}" if lat["failed_calls"] else ""
    print(
        f"{label:<34} p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  p99 {lat['p99_ms']} ms  "
        f"max {lat['max_ms']} ms  ({lat['received']:,}/{lat['sent']:,} received; PublishEvents "
        f"p50 {lat['publish_call_p50_ms']} p99 {lat['publish_call_p99_ms']} ms{failed})"
    )
    print(f"{'':<34} {'':>23}  " + _cells(lat["cpu_cores"], ROLES, ".2f"))
    stages = "; ".join(
        f"{name} p50 {v['p50']} p99 {v['p99']} ms" for name, v in lat["stages_ms"].items()
    )
    print(f"{'  stages':<34} {stages}")


def show_soak(soak: dict[str, Any]) -> None:
    print(
        f"soak {soak['minutes']} min at {soak['offered_events_per_s']:,.0f}/s "
        f"({soak['events_per_call']}/call): {soak['received']:,}/{soak['sent']:,} received, "
        f"lost {soak['lost']}, duplicates {soak['duplicates']}, failed calls "
        f"{soak['failed_calls'] or 0}; p50 {soak.get('p50_ms')} p99 {soak.get('p99_ms')} ms"
    )
    rss = ", ".join(
        f"{name} {row['first']:.0f}->{row['end']:.0f} MB ({row['growth_pct']:+.1f} %)"
        for name, row in soak["rss_mb"].items()
    )
    print(f"  RSS, sample at {soak['sample_seconds']:g} s -> end: {rss}")
    pending = soak["pending"]
    print(
        f"  unfinished messages on the consumers, every {soak['sample_seconds']:g} s: "
        f"{pending['totals']} (end: {pending['by_consumer_end']})"
    )


def show_goals(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'goal (issue 17)':<56} {'figure':>10}  {'bound':<24} status")
    for row in rows:
        figure = "-" if row["figure"] is None else f"{row['figure']:,}"
        print(f"{row['label']:<56} {figure:>10}  {row['bound']:<24} {row['status']}")
