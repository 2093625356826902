"""compose.yaml runs what `webhooks up` runs. No container engine runs here, so the file is
checked as it stands: against the Compose specification's JSON schema (vendored in
tests/fixtures/compose-spec), and for its references: services, volumes, the Dockerfile,
commands and health checks (real ``webhooks`` commands), environment (variables the
services read) and ports (the addresses the services listen on).
tests/e2e/test_compose_commands.py runs those very commands as processes."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import opentelemetry.environment_variables
import opentelemetry.sdk.environment_variables
import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider

from webhooks_cli.errors import UsageError
from webhooks_cli.health import DEFAULT_TIMEOUT_SECONDS, probe_target
from webhooks_cli.main import build_parser
from webhooks_cli.services import available_services
from webhooks_config import DEFAULT_ADDRESSES, load_settings
from webhooks_messaging import auth as nats_auth
from webhooks_messaging.permissions import SERVICE_USERS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
# The services that keep a store of their own (WEBHOOKS_STORE): they need PostgreSQL.
STORE_SERVICES = {"subscriptions", "failures"}
# Clients of the services' gRPC APIs only (no NATS, no store): they wait for those services.
CLIENT_SERVICES = {"console": {"subscriptions", "sender", "failures"}}
# One-shot containers of the image, run to completion before what needs them.
ONE_SHOT = {"nats-auth"}
# The services compose runs more than once: `<service>`, `<service>-2` …
REPLICATED = ("router", "sender")
OTEL_VARIABLES = {
    value
    for module in (opentelemetry.environment_variables, opentelemetry.sdk.environment_variables)
    for name, value in vars(module).items()
    if name.startswith("OTEL_") and isinstance(value, str)
}


class RecordingEnvironment(dict[str, str]):
    """An environment that remembers every variable the configuration asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def platform_services() -> dict[str, dict[str, Any]]:
    """The service containers built from this repository (the others are images or
    one-shot)."""
    return {
        name: spec
        for name, spec in compose()["services"].items()
        if "build" in spec and name not in ONE_SHOT
    }


def replica_names(service: str) -> set[str]:
    """The container names a replica of ``service`` may have."""
    return {service} | {
        name for name in compose()["services"] if re.fullmatch(rf"{service}-[2-9]", name)
    }


def interpolated(value: str) -> str:
    """Compose's interpolation: ``${NAME:?message}`` is the operator's to give (any value
    stands in for it here), ``${NAME:-default}`` is its default unless set."""
    value = re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "given-by-operator", value)
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    # A brace left over means an expression compose reads differently (a "}" in a message).
    assert "{" not in value and "}" not in value, f"not interpolated as meant: {value}"
    return value


def environment(spec: dict[str, Any]) -> dict[str, str]:
    return {key: interpolated(str(value)) for key, value in spec["environment"].items()}


def served(spec: dict[str, Any]) -> str:
    """The service a container runs, parsed as the ``webhooks`` entry point parses it."""
    args = build_parser().parse_args(spec["command"])
    assert args.command == "serve", spec["command"]
    service: str = args.service
    return service


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


# -- the Compose specification ---------------------------------------------------------


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_check_catches_mistakes() -> None:
    """The schema really is in force: typical slips fail it."""
    document = compose()
    mistakes: list[Callable[[dict[str, Any]], object]] = [
        lambda d: d["services"]["router"]["depends_on"]["nats"].update(condition="healthy"),
        lambda d: d["services"]["router"]["healthcheck"].update(tset=["CMD", "true"]),
        lambda d: d["services"]["nats"].update(volume=["nats-data:/data"]),
        lambda d: d["services"]["sender"].update(restart=["always"]),
    ]
    for mistake in mistakes:
        broken = copy.deepcopy(document)
        mistake(broken)
        assert schema_errors(broken), "the schema accepted a broken file"


# -- references ------------------------------------------------------------------------


def test_every_platform_container_runs_an_existing_service() -> None:
    containers = platform_services()
    services = [served(spec) for spec in containers.values()]
    assert set(services) == set(available_services()), "each service at least once"
    for name, spec in containers.items():
        service = served(spec)
        if service in REPLICATED:
            assert name in replica_names(service), f"{name}: not {service} or {service}-<n>"
        else:
            assert name == service, "the container is named after its service"


def test_the_router_and_the_sender_run_as_replicas_differing_in_instance_only() -> None:
    """docs/scaling.md: the replicas share the durable consumers; each its own
    WEBHOOKS_INSTANCE (its traces' service.instance.id); the first publishes the port."""
    containers = platform_services()
    for service in REPLICATED:
        replicas = {n: s for n, s in containers.items() if n in replica_names(service)}
        assert len(replicas) >= 2, f"{service}: one replica"
        instances = {environment(s).get("WEBHOOKS_INSTANCE") for s in replicas.values()}
        assert instances == {f"{service}-{i}" for i in range(1, len(replicas) + 1)}, instances
        first = containers[service]
        for name, spec in replicas.items():
            assert not spec.get("ports") or name == service, f"{name}: publishes a port"
            differs = {k for k in first.keys() | spec.keys() if first.get(k) != spec.get(k)}
            assert differs <= {"environment", "ports"}, f"{name}: {differs}"
            alike = environment(first) | {"WEBHOOKS_INSTANCE": ""}
            assert environment(spec) | {"WEBHOOKS_INSTANCE": ""} == alike, name


def test_the_image_runs_the_webhooks_command() -> None:
    entrypoints = [rest for keyword, rest in dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert [json.loads(entry) for entry in entrypoints] == [["webhooks"]]


def test_health_checks_ask_the_service_itself() -> None:
    for name, spec in platform_services().items():
        check = spec["healthcheck"]
        assert check["test"][:2] == ["CMD", "webhooks"], f"{name}: {check['test']}"
        args = build_parser().parse_args(check["test"][2:])
        assert args.command == "health" and args.service == served(spec), check["test"]
        # The probe gives up before compose does, so its own line is what compose records.
        timeout = args.timeout if "--timeout" in check["test"] else DEFAULT_TIMEOUT_SECONDS
        assert timeout < seconds(check["timeout"]), name


def test_health_probe_asks_a_wildcard_address_on_loopback() -> None:
    assert probe_target("0.0.0.0:50051") == "127.0.0.1:50051"
    assert probe_target("[::]:50052") == "[::1]:50052"
    assert probe_target(":50053") == "127.0.0.1:50053"
    assert probe_target("10.1.2.3:50054") == "10.1.2.3:50054"
    with pytest.raises(UsageError):
        probe_target("router")


def test_dependencies_are_defined_and_waited_for() -> None:
    services = compose()["services"]
    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on undefined {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency}: no health check"
    for name, spec in platform_services().items():
        needs = spec["depends_on"]
        if name in CLIENT_SERVICES:
            assert set(needs) == CLIENT_SERVICES[name], name
            assert all(n["condition"] == "service_healthy" for n in needs.values()), name
            assert spec["restart"] == "unless-stopped", name
            continue
        assert needs["nats"]["condition"] == "service_healthy", name
        if name in STORE_SERVICES:
            assert needs["postgres"]["condition"] == "service_healthy", name
        assert spec["restart"] == "unless-stopped", name
    for name, spec in services.items():
        if name in ONE_SHOT:
            assert spec["restart"] == "no", f"{name}: runs once"
            continue
        assert "healthcheck" in spec, f"{name}: no health check"
        assert spec.get("restart") == "unless-stopped", name


def test_named_volumes_are_declared_and_used() -> None:
    document = compose()
    declared = set(document.get("volumes") or {})
    used = set()
    for name, spec in document["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/", "~")):  # a named volume, not a bind mount
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, "a declared volume nobody mounts"


def test_every_build_is_the_one_dockerfile() -> None:
    builds = {n: s for n, s in compose()["services"].items() if "build" in s}
    for name, spec in builds.items():
        build = spec["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context / dockerfile).resolve() == ROOT / "Dockerfile", name


def test_the_dockerfile_installs_the_project_from_what_it_copies() -> None:
    instructions = dockerfile_instructions()
    base = next(rest for keyword, rest in instructions if keyword == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base
    copied = []
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.append(source.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for package in packages:
        assert any(package == c or package.startswith(c + "/") for c in copied), package
    assert "pyproject.toml" in copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not set(copied) & set(ignored), "the build context must keep what is copied"
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install" in runs and "[dev]" not in runs, "runtime dependencies only"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "runs as a non-root user"


# -- environment and ports -------------------------------------------------------------


def test_service_environment_is_configuration_the_services_read() -> None:
    for name, spec in platform_services().items():
        env = environment(spec)
        recorder = RecordingEnvironment(env)
        settings = load_settings(recorder)
        unknown = {k for k in env if k.startswith("WEBHOOKS_") and k not in recorder.asked}
        assert not unknown, f"{name}: variables no service reads: {sorted(unknown)}"
        foreign = {k for k in env if not k.startswith("WEBHOOKS_") and k not in OTEL_VARIABLES}
        assert not foreign, f"{name}: neither configuration nor OpenTelemetry: {foreign}"
        service = served(spec)
        if name in CLIENT_SERVICES:
            for needed in CLIENT_SERVICES[name]:
                port = DEFAULT_ADDRESSES[needed].rsplit(":", 1)[1]
                assert settings.address(needed) == f"{needed}:{port}", f"{name} -> {needed}"
        else:
            assert settings.store == "postgres"
            assert settings.nats_url == "nats://nats:4222"
        address = settings.address(service)
        assert address.startswith("0.0.0.0:"), "must listen beyond the container's loopback"
        port = address.rsplit(":", 1)[1]
        assert port == DEFAULT_ADDRESSES[service].rsplit(":", 1)[1], "the documented port"
        if name != service:  # a further replica: reached inside the network only
            assert "ports" not in spec, name
            continue
        assert [str(mapping) for mapping in spec["ports"]] == [f"{port}:{port}"], name


def test_trace_sampling_is_a_ratio_decided_where_a_trace_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, spec in platform_services().items():
        if name in CLIENT_SERVICES:
            continue  # no spans of its own: the services trace the calls it makes
        env = environment(spec)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        for key in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
            monkeypatch.setenv(key, env[key])
        description = TracerProvider().sampler.get_description()
        ratio = float(env["OTEL_TRACES_SAMPLER_ARG"])
        assert 0 < ratio <= 1
        assert description.startswith(f"ParentBased{{root:TraceIdRatioBased{{{ratio}}}")


def test_infrastructure_is_what_the_architecture_names() -> None:
    services = compose()["services"]
    nats = services["nats"]
    major, minor = (int(part) for part in re.findall(r":(\d+)\.(\d+)", nats["image"])[0])
    assert (major, minor) >= (2, 12), "message schedules need NATS 2.12 or newer"
    command = nats["command"]
    assert "--jetstream" in command
    store = command[command.index("--store_dir") + 1]
    assert any(v.endswith(f":{store}") for v in nats["volumes"]), "JetStream keeps its store"
    http_port = command[command.index("--http_port") + 1]
    probe = nats["healthcheck"]["test"]
    assert f"http://127.0.0.1:{http_port}/healthz?js-enabled-only=true" in probe

    postgres = services["postgres"]
    env = {k: interpolated(str(v)) for k, v in postgres["environment"].items()}
    url = environment(services["subscriptions"])["WEBHOOKS_POSTGRES_URL"]
    user, db, password = env["POSTGRES_USER"], env["POSTGRES_DB"], env["POSTGRES_PASSWORD"]
    assert url == f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert postgres["healthcheck"]["test"] == ["CMD", "pg_isready", "-U", user, "-d", db]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])

    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")
    assert "16686:16686" in jaeger["ports"], "the Jaeger UI"


# -- NATS authentication ---------------------------------------------------------------


def mount_of(spec: dict[str, Any], volume: str) -> dict[str, Any] | None:
    """The container's mount of the named ``volume`` (long or short syntax)."""
    for mount in spec.get("volumes", []):
        if isinstance(mount, str):
            source, target = mount.split(":")[:2]
            mount = {"source": source, "target": target}
        if mount["source"] == volume:
            return dict(mount)
    return None


def test_nats_auth_writes_the_users_once_before_nats_starts() -> None:
    services = compose()["services"]
    init = services["nats-auth"]
    args = build_parser().parse_args(init["command"])
    assert args.command == "nats-auth"
    written = mount_of(init, "nats-auth")
    assert written is not None and args.out == written["target"]
    assert not written.get("read_only")
    # The image makes that directory its user's: a new volume takes its owner and mode.
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    assert f"-o webhooks -g webhooks {args.out}" in runs

    nats = services["nats"]
    assert nats["depends_on"]["nats-auth"] == {"condition": "service_completed_successfully"}
    config = nats["command"][nats["command"].index("--config") + 1]
    server = mount_of(nats, "nats-auth")
    assert server is not None and server["read_only"] is True
    assert server["volume"]["subpath"] == nats_auth.SERVER_DIR, "the configuration only"
    assert config == f"{server['target']}/{nats_auth.SERVER_CONFIG}"


def test_each_service_connects_to_nats_as_its_own_user() -> None:
    for name, spec in platform_services().items():
        env = environment(spec)
        mount = mount_of(spec, "nats-auth")
        if name in CLIENT_SERVICES:
            assert mount is None and "WEBHOOKS_NATS_NKEY_SEED_FILE" not in env, name
            continue
        service = served(spec)  # a replica connects as its service's user
        assert service in SERVICE_USERS
        assert mount is not None and mount["read_only"] is True, name
        assert mount["volume"]["subpath"] == service, f"{name}: mounts only its own seed"
        seed = load_settings(env).nats_nkey_seed_file
        auth = nats_auth.NatsAuth(Path("/volume"))
        relative = auth.seed_file(service).relative_to(auth.directory / service)
        assert seed == Path(mount["target"]) / relative, name
