#!/usr/bin/env python3
"""Regenerate the committed gRPC stubs from proto/ (needs grpcio-tools: pip install -e '.[dev]').

    python scripts/gen_stubs.py          # rewrite proto/fleetnas/agent/v1/*_pb2*.py
    python scripts/gen_stubs.py --check  # exit 1 if the committed stubs differ from a fresh generation

The stubs import each other as fleetnas.agent.v1.*, which setup.py maps to proto/fleetnas/agent/v1.
"""
from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PROTOS = ["fleetnas/agent/v1/agent.proto", "fleetnas/agent/v1/hub.proto"]
GENERATED = ["agent_pb2.py", "agent_pb2.pyi", "agent_pb2_grpc.py", "hub_pb2.py", "hub_pb2.pyi", "hub_pb2_grpc.py"]
OUT_DIR = PROTO_ROOT / "fleetnas" / "agent" / "v1"


def generate(out_root: Path) -> None:
    from grpc_tools import protoc  # dev-only dependency

    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out_root}", f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}", *PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the message above")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    opts = parser.parse_args()
    if not opts.check:
        generate(PROTO_ROOT)
        init = OUT_DIR / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated gRPC stubs of the fleetnas.agent.v1 contract (scripts/gen_stubs.py)."""\n')
        print(f"wrote {', '.join(GENERATED)} in {OUT_DIR.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "fleetnas" / "agent" / "v1"
        stale = [name for name in GENERATED
                 if not (OUT_DIR / name).exists() or not filecmp.cmp(fresh / name, OUT_DIR / name, shallow=False)]
    if stale:
        print(f"stale stubs: {', '.join(stale)}; run: python scripts/gen_stubs.py", file=sys.stderr)
        return 1
    print("stubs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
