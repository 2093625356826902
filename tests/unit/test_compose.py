"""compose.yaml runs what `webhooks up` runs: check the file itself, since no engine runs here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from webhooks_cli.services import available_services
from webhooks_config import load_settings

ROOT = Path(__file__).resolve().parents[2]


class RecordingEnvironment(dict[str, str]):
    """An environment that remembers every variable the configuration asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def _substituted(value: str) -> str:
    # ${NAME:?message} must be given by the operator; any value stands in for it here.
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "given-by-operator", value)


def test_every_service_container_runs_an_existing_service() -> None:
    services = _compose()["services"]
    served = {
        spec["command"][1]: spec
        for spec in services.values()
        if spec.get("command", [None])[0] == "serve"
    }
    assert "subscriptions" in served
    assert set(served) == set(available_services()), "compose.yaml runs exactly the services"


def test_service_environment_is_configuration_the_services_read() -> None:
    services = _compose()["services"]
    for name, spec in services.items():
        if spec.get("command", [None])[0] != "serve":
            continue
        environment = {key: _substituted(str(value)) for key, value in spec["environment"].items()}
        recorder = RecordingEnvironment(environment)
        settings = load_settings(recorder)
        unknown = {key for key in environment if key not in recorder.asked}
        assert not unknown, f"{name}: variables no service reads: {sorted(unknown)}"
        assert settings.store == "postgres"
        assert settings.nats_url == "nats://nats:4222"
        service = spec["command"][1]
        assert settings.address(service).startswith("0.0.0.0:"), "must listen beyond loopback"
        port = settings.address(service).rsplit(":", 1)[1]
        assert any(str(mapping).endswith(f":{port}") for mapping in spec["ports"])
        assert "nats" in spec["depends_on"]


def test_infrastructure_is_what_the_architecture_names() -> None:
    services = _compose()["services"]
    nats_image = services["nats"]["image"]
    major, minor = (int(part) for part in re.findall(r":(\d+)\.(\d+)", nats_image)[0])
    assert (major, minor) >= (2, 12), "message schedules need NATS 2.12 or newer"
    assert "--jetstream" in services["nats"]["command"]
    assert services["postgres"]["image"].startswith("postgres:")
    otlp = services["subscriptions"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert otlp.startswith("http://jaeger:")
