"""The checked-in generated code is exactly what ``protos/generate.py`` makes of the contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "protos" / "generate.py"
CHECKED_IN = ROOT / "libs" / "webhooks" / "v1"
# Written by hand, not by protoc.
HAND_WRITTEN = {"__init__.py"}
REGENERATE = "make protos  (or: .venv/bin/python protos/generate.py)"


def _files(directory: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name not in HAND_WRITTEN and not path.name.endswith(".pyc")
    }


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"protos/generate.py failed:\n{result.stdout}{result.stderr}"
    fresh = _files(tmp_path / "webhooks" / "v1")
    assert fresh, "protos/generate.py generated nothing"
    current = _files(CHECKED_IN)

    missing = sorted(set(fresh) - set(current))
    extra = sorted(set(current) - set(fresh))
    changed = sorted(name for name in set(fresh) & set(current) if fresh[name] != current[name])
    problems = [
        *(f"missing from libs/webhooks/v1: {name}" for name in missing),
        *(f"not generated from any .proto (stale?): libs/webhooks/v1/{name}" for name in extra),
        *(f"differs from its .proto: libs/webhooks/v1/{name}" for name in changed),
    ]
    assert not problems, (
        "the generated code is out of date with protos/; run `"
        + REGENERATE
        + "` and commit the result:\n  "
        + "\n  ".join(problems)
    )
