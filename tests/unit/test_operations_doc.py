"""docs/operations.md lists every configuration variable with its real default: a variable
the configuration reads that the guide lacks, one it lists that nothing reads, or a default
written as a value (in backticks) that is not the default, fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from webhooks_config import load_settings

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
NAME = re.compile(r"`((?:WEBHOOKS|OTEL)_[A-Z0-9_]+)`")


class RecordingEnvironment(dict[str, str]):
    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def read_by_configuration() -> set[str]:
    recorder = RecordingEnvironment({})
    load_settings(recorder)
    return recorder.asked


def documented() -> dict[str, str]:
    """Variable -> its default cell, from every table row of the guide."""
    rows: dict[str, str] = {}
    for line in GUIDE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        for name in NAME.findall(cells[0]):
            assert name not in rows, f"{name} is listed twice"
            rows[name] = cells[1]
    return rows


def test_every_variable_the_configuration_reads_is_in_the_guide() -> None:
    missing = read_by_configuration() - set(documented())
    assert not missing, f"docs/operations.md lacks {sorted(missing)}"


def test_the_guide_lists_no_variable_nobody_reads() -> None:
    listed = {name for name in documented() if name.startswith("WEBHOOKS_")}
    stale = listed - read_by_configuration()
    assert not stale, f"docs/operations.md lists variables nothing reads: {sorted(stale)}"


def test_defaults_written_as_values_are_the_defaults() -> None:
    defaults = load_settings({})
    checked = 0
    for name, cell in documented().items():
        literal = re.match(r"`([^`]*)`", cell)
        if not name.startswith("WEBHOOKS_") or literal is None:
            continue  # prose ("none: the system resolver") or the OpenTelemetry SDK's own
        assert load_settings({name: literal[1]}) == defaults, f"{name}: default {cell}"
        checked += 1
    assert checked >= 20


def test_the_scale_out_section_has_its_place() -> None:
    text = GUIDE.read_text()
    assert text.count("<!-- scale-out -->") == 2
    assert "docs/operations.md" in (ROOT / "README.md").read_text()
