"""The host/agent seam: only fleetnas.host.fleet.contract and .client import the agent's package or grpc.

Every other host module speaks the contract's records (TimingConfig, RuntimeConfig, DeviceInfo, MeasureResult) and
catches the typed errors of fleetnas.host.errors, so the agent can reorganise its modules and the wire can change
without touching the search, the commands or the reports. Read statically (ast), function-level imports included.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Tuple

import fleetnas.host

HOST_DIR = Path(fleetnas.host.__file__).resolve().parent
SEAM = {"fleetnas.host.fleet.contract", "fleetnas.host.fleet.client"}
FORBIDDEN = ("fleetnas.agent", "grpc", "grpc_health")


def host_modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(HOST_DIR.rglob("*.py")):
        parts = path.relative_to(HOST_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(("fleetnas", "host") + parts), path


def imported_names(module: str, path: Path) -> Iterator[Tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: resolve against the package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:   # `from fleetnas import agent` names the package too
                yield node.lineno, f"{base}.{alias.name}"


def crosses_seam(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_only_the_seam_imports_the_agent_or_grpc():
    found: List[str] = []
    modules = list(host_modules())
    assert len(modules) > 40 and any(m == "fleetnas.host.fleet.dispatcher" for m, _ in modules)
    for module, path in modules:
        if module in SEAM:
            continue
        found += [f"{path.relative_to(HOST_DIR.parent)}:{line}: {name}" for line, name in imported_names(module, path)
                  if crosses_seam(name)]
    assert not found, "host modules reaching past the seam (use fleetnas.host.fleet.contract):\n" + "\n".join(found)


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import grpc\n    from fleetnas.agent.v1 import agent_pb2\n"
                      "from ..agent import records\nfrom fleetnas import agent\n")
    found = {(line, n) for line, n in imported_names("fleetnas.host.sample", sample) if crosses_seam(n)}
    assert found == {(2, "grpc"), (3, "fleetnas.agent.v1"), (3, "fleetnas.agent.v1.agent_pb2"), (4, "fleetnas.agent"),
                     (4, "fleetnas.agent.records"), (5, "fleetnas.agent")}
