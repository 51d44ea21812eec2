"""The host/agent seam: only fleetnas.host.fleet.contract and .client import the agent's package or grpc, and, for
dial-in devices, .hub (the server agents dial into) and .tunnel (the grpc.Channel the client uses over their stream).

Every other host module speaks the contract's records (TimingConfig, RuntimeConfig, DeviceInfo, MeasureResult) and
catches the typed errors of fleetnas.host.errors, so the agent can reorganise its modules and the wire can change
without touching the search, the commands or the reports. Read statically (ast), function-level and type-only imports
included.
"""
from __future__ import annotations

from typing import List

from import_scan import ROOT, imports, module_table

SEAM = {"fleetnas.host.fleet.contract", "fleetnas.host.fleet.client", "fleetnas.host.fleet.hub",
        "fleetnas.host.fleet.tunnel"}
FORBIDDEN = ("fleetnas.agent", "grpc", "grpc_health")


def crosses_seam(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_only_the_seam_imports_the_agent_or_grpc():
    found: List[str] = []
    modules = module_table("host")
    assert len(modules) > 40 and "fleetnas.host.fleet.dispatcher" in modules
    for module, path in modules.items():
        if module in SEAM:
            continue
        found += [f"{path.relative_to(ROOT)}:{line}: {name}"
                  for name, line, _ in imports(module, path, type_checking=True) if crosses_seam(name)]
    assert not found, "host modules reaching past the seam (use fleetnas.host.fleet.contract):\n" + "\n".join(found)


def test_the_check_sees_function_level_relative_and_type_only_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import grpc\n    from fleetnas.agent.v1 import agent_pb2\n"
                      "from ..agent import records\nfrom fleetnas import agent\n"
                      "if TYPE_CHECKING:\n    import grpc_health\n")
    found = {(line, n) for n, line, _ in imports("fleetnas.host.sample", sample, type_checking=True)
             if crosses_seam(n)}
    assert found == {(2, "grpc"), (3, "fleetnas.agent.v1"), (3, "fleetnas.agent.v1.agent_pb2"), (4, "fleetnas.agent"),
                     (4, "fleetnas.agent.records"), (5, "fleetnas.agent"), (7, "grpc_health")}
