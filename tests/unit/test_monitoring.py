"""docs/monitoring: the Prometheus configuration and alert rules pass promtool (its unit tests
of the alerts included), every metric and label a dashboard query or a rule uses is one the
services export (the catalogue, webhooks_telemetry.metrics), every alert links a runbook
section that exists, and compose.yaml runs Prometheus and Grafana wired to all of it.

promtool is Debian's ``prometheus`` package: without it these tests skip, unless
WEBHOOKS_REQUIRE_PROMTOOL=1 (CI, .ci/run), where they fail."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from webhooks_cli.main import build_parser
from webhooks_config import UP_METRICS_ADDRESSES
from webhooks_telemetry.metrics import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "docs" / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts.test.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "webhooks.json"
PROVISIONING = MONITORING / "grafana" / "provisioning"
OPERATIONS = ROOT / "docs" / "operations.md"

# Series Prometheus makes itself: a target's scrape health, and the alerts' state.
PROMETHEUS_SERIES = {"up": {"job", "instance"}, "ALERTS": {"alertname", "alertstate", "severity"}}
TARGET_LABELS = {"job", "instance"}  # what Prometheus adds to every scraped series
CLAUSES = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


# -- promtool --------------------------------------------------------------------------


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        problem = "no promtool (apt-get install prometheus)"
        if os.environ.get("WEBHOOKS_REQUIRE_PROMTOOL") == "1":
            pytest.fail(f"promtool required (WEBHOOKS_REQUIRE_PROMTOOL=1): {problem}")
        pytest.skip(problem)
    return found


def run_promtool(*args: str) -> None:
    result = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, cwd=MONITORING
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_check() -> None:
    run_promtool("check", "rules", str(RULES))


def test_prometheus_configuration_passes_promtool_check() -> None:
    run_promtool("check", "config", str(PROMETHEUS_CONFIG))


def test_each_alert_fires_when_it_should_and_not_otherwise() -> None:
    run_promtool("test", "rules", str(RULE_TESTS))


# -- the rules -------------------------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recorded() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def test_every_alert_says_how_long_how_bad_what_and_where_to_read() -> None:
    assert alerts()
    for alert in alerts():
        name = alert["alert"]
        assert "for" in alert, f"{name}: no for:"
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["runbook"].startswith("docs/operations.md#"), name


def test_every_alert_is_exercised_by_the_promtool_tests() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    tested = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {alert["alert"] for alert in alerts()} <= tested


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found, fenced = set(), False
    for line in markdown.splitlines():
        fenced ^= line.startswith("```")
        if not fenced and (match := re.match(r"#+\s+(.*)", line)):
            slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
            found.add(slug)
    return found


def test_every_runbook_is_a_section_of_the_operations_guide() -> None:
    sections = anchors(OPERATIONS.read_text())
    for alert in alerts():
        anchor = alert["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in sections, f"{alert['alert']}: docs/operations.md has no #{anchor}"


def test_many_open_circuits_are_alerted_on_from_the_health_gauge() -> None:
    """Endpoint health's gauge, counted once however many subscriptions replicas export it."""
    (alert,) = [a for a in alerts() if a["alert"] == "WebhooksManyCircuitsOpen"]
    assert 'webhooks_subscriptions_health{state="circuit_open"}' in alert["expr"]
    assert alert["expr"].startswith("max(")


# -- metric and label names ------------------------------------------------------------


def exported() -> dict[str, set[str]]:
    """Each series name the services export -> the labels it may carry."""
    names: dict[str, set[str]] = {}
    for entry in CATALOGUE:
        labels = set(entry.prometheus_labels) | TARGET_LABELS
        for series in entry.prometheus_series:
            names[series] = labels | ({"le"} if series.endswith("_bucket") else set())
    return names


def without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    """The series names of a PromQL expression: identifiers that are not functions,
    aggregations, keywords, labels, durations or Grafana variables."""
    expr = without_strings(expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors (and $__rate_interval)
    expr = re.sub(CLAUSES, " ", expr)  # by (...), on (...), ...
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    expr = re.sub(r"\$\w+", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match[0].lower() not in KEYWORDS:
            names.add(match[0])
    return names


def label_names(expr: str) -> set[str]:
    """Labels an expression matches on, groups by or joins on."""
    expr = without_strings(expr)
    labels = set()
    for block in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", block))
    for clause in re.findall(CLAUSES, expr):
        labels |= set(re.findall(r"[A-Za-z_]\w*", clause))
    return labels


def dashboard_targets() -> Iterator[tuple[str, dict[str, Any]]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for panel in panels:
            yield from walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                yield panel["title"], target

    yield from walk(json.loads(DASHBOARD.read_text())["panels"])


def queries() -> list[tuple[str, str, str]]:
    """(where, PromQL, legend) of every dashboard query and every rule."""
    found = [(f"rule {r.get('alert') or r['record']}", r["expr"], "") for r in rules()]
    for title, target in dashboard_targets():
        found.append((f"panel {title!r}", target["expr"], target.get("legendFormat", "")))
    return found


def test_the_name_parser_finds_series_and_only_series() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{outcome=~"x|y"}[$__rate_interval])))'
        " / on () b offset 5m and c > 1e3 unless sum without (lane) (d:e:f)"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d:e:f"}
    assert label_names(expr) == {"le", "outcome", "lane"}


def test_queries_use_only_exported_metrics_and_their_labels() -> None:
    series = exported()
    allowed = {**series, **PROMETHEUS_SERIES, **{name: set() for name in recorded()}}
    checked = set()
    for where, expr, legend in queries():
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - set(allowed)
        assert not unknown, f"{where}: {sorted(unknown)} are not exported (the catalogue)"
        labels = set().union(*(allowed[name] for name in names))
        used = label_names(expr) | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert used <= labels, f"{where}: labels {sorted(used - labels)} are on none of {names}"
        checked |= names
    # What an SRE watches is all there: every exported family in a panel or a rule.
    families = {entry.prometheus_name for entry in CATALOGUE}
    shown = {name.removesuffix("_bucket") for name in checked}
    assert families <= shown | {f"{n}_total" for n in shown}, families - shown


def test_every_dashboard_query_uses_the_provisioned_data_source() -> None:
    document = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = document["datasources"]
    for title, target in dashboard_targets():
        assert target["datasource"] == {"type": "prometheus", "uid": source["uid"]}, title
    ids = [panel["id"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


# -- compose.yaml ----------------------------------------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "compose.yaml").read_text())[
        "services"
    ]
    return services


def bind_mounts(spec: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository path mounted there (``./...`` bind mounts)."""
    mounts = {}
    for mount in spec.get("volumes", []):
        if isinstance(mount, str) and mount.startswith("./"):
            source, target = mount.split(":")[:2]
            mounts[target] = (ROOT / source).resolve()
    return mounts


def mounted_at(mounts: dict[str, Path], path: str) -> Path | None:
    """The repository path a container sees at ``path`` (a file or a directory mount)."""
    for target, source in mounts.items():
        if path == target:
            return source
        if path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target.rstrip("/")) + 1 :]
    return None


def pinned(image: str) -> bool:
    return bool(re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image))


def test_compose_runs_prometheus_with_this_configuration_and_these_rules() -> None:
    prometheus = compose_services()["prometheus"]
    assert pinned(prometheus["image"]) and prometheus["image"].startswith("prom/prometheus:")
    flags = dict(arg.split("=", 1) for arg in prometheus["command"] if "=" in arg)
    mounts = bind_mounts(prometheus)
    config_path = flags["--config.file"]
    assert mounted_at(mounts, config_path) == PROMETHEUS_CONFIG
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for rule_file in config["rule_files"]:  # relative to the configuration's directory
        there = str(PurePosixPath(config_path).parent / rule_file)
        assert mounted_at(mounts, there) == MONITORING / rule_file


def test_prometheus_scrapes_every_platform_container_on_its_metrics_port() -> None:
    expected: dict[str, set[str]] = {}
    for name, spec in compose_services().items():
        if "build" not in spec or spec.get("restart") == "no":
            continue
        service = build_parser().parse_args(spec["command"]).service
        port = UP_METRICS_ADDRESSES[service].rsplit(":", 1)[1]
        variable = f"WEBHOOKS_{service.upper()}_METRICS_ADDR"
        assert spec["environment"].get(variable) == f"0.0.0.0:{port}", f"{name}: {variable}"
        assert f"{port}:{port}" not in [str(p) for p in spec.get("ports", [])], "not published"
        expected.setdefault(service, set()).add(f"{name}:{port}")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped = {
        job["job_name"]: {t for group in job["static_configs"] for t in group["targets"]}
        for job in config["scrape_configs"]
    }
    assert scraped == expected
    (down,) = [alert for alert in alerts() if alert["alert"] == "WebhooksServiceDown"]
    assert f'up{{job=~"{"|".join(expected)}"}}' in down["expr"], "every job is watched"


def test_compose_runs_grafana_provisioned_with_the_dashboard() -> None:
    services = compose_services()
    grafana = services["grafana"]
    assert pinned(grafana["image"]) and grafana["image"].startswith("grafana/grafana:")
    mounts = bind_mounts(grafana)
    assert mounted_at(mounts, "/etc/grafana/provisioning") == PROVISIONING
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "webhooks.yml").read_text())
    (dashboards,) = provider["providers"]
    assert mounted_at(mounts, dashboards["options"]["path"]) == DASHBOARD.parent
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in grafana["depends_on"]
