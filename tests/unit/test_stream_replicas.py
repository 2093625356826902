"""WEBHOOKS_STREAM_REPLICAS: how many copies of each stream a NATS cluster keeps."""

from __future__ import annotations

import pytest

from webhooks_config import ConfigError, load_settings
from webhooks_messaging import STREAMS, stream_configs


def test_one_replica_by_default_on_every_stream() -> None:
    settings = load_settings({})
    assert settings.stream_replicas == 1
    configs = stream_configs(settings)
    assert [c.name for c in configs] == list(STREAMS)
    assert [c.num_replicas for c in configs] == [1] * len(STREAMS)


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_every_stream_has_the_configured_replicas(replicas: int) -> None:
    settings = load_settings({"WEBHOOKS_STREAM_REPLICAS": str(replicas)})
    assert settings.stream_replicas == replicas
    assert {c.name: c.num_replicas for c in stream_configs(settings)} == dict.fromkeys(
        STREAMS, replicas
    )


@pytest.mark.parametrize("raw", ["0", "6", "-1", "three", "2.5"])
def test_a_replica_count_nats_cannot_have_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^WEBHOOKS_STREAM_REPLICAS: "):
        load_settings({"WEBHOOKS_STREAM_REPLICAS": raw})


def test_empty_means_the_default() -> None:
    assert load_settings({"WEBHOOKS_STREAM_REPLICAS": ""}).stream_replicas == 1
