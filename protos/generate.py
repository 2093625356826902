"""Regenerate the Python code of the contracts: ``python protos/generate.py [--out DIR]``.

Every ``protos/webhooks/v1/*.proto`` is compiled with the pinned grpcio-tools into
``<out>/webhooks/v1/`` (messages, type stubs and gRPC stubs); ``<out>`` defaults to ``libs/``,
where the ``webhooks.v1`` package lives. ``tests/unit/test_generated_code.py`` fails when
running this would change the checked-in code.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

PROTOS = Path(__file__).resolve().parent
ROOT = PROTOS.parent
PACKAGE = Path("webhooks") / "v1"
DEFAULT_OUT = ROOT / "libs"


def proto_files() -> list[Path]:
    """The contracts, relative to ``protos/`` (as protoc names them in the generated code)."""
    return sorted(path.relative_to(PROTOS) for path in (PROTOS / PACKAGE).glob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Compiles every contract into ``out``; returns the files written, relative to ``out``."""
    files = proto_files()
    if not files:
        raise RuntimeError(f"no .proto files in {PROTOS / PACKAGE}")
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    # google/protobuf/*.proto come with grpcio-tools.
    bundled = resources.files("grpc_tools") / "_proto"
    arguments = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{bundled}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        # Absolute paths under -I protos/: protoc names them webhooks/v1/<name>.proto.
        *(str(PROTOS / path) for path in files),
    ]
    status = protoc.main(arguments)
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}")
    written = []
    for path in files:
        stem = path.with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            written.append(stem.with_name(stem.name + suffix))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory that receives webhooks/v1/ (default: libs/)",
    )
    args = parser.parse_args(argv)
    try:
        written = generate(args.out.resolve())
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"generated {len(written)} files in {args.out / PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
