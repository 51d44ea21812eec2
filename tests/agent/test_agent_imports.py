"""The agent's imports, read statically from the source (ast): every import at module level and inside functions.

- no import of the host, torch or pymoo anywhere in the agent (type-only imports included);
- imports inside functions only for the heavy or optional runtime packages that must stay lazy;
- one exception: torch inside the functions of the ExecuTorch runtime, whose package links against torch anyway
  and which only the measurement worker (or its probe child) ever runs.

The agent's import cycles are checked with the rest of fleetnas in tests/test_import_graph.py.
"""
from __future__ import annotations

from import_scan import ROOT, all_modules, import_graph, imports, module_table

FORBIDDEN = ("fleetnas.host", "torch", "pymoo")
# Imported where used: optional extras or ~30 MB libraries the server process must never map.
LAZY_ALLOWED = ("onnxruntime", "ai_edge_litert", "tflite_runtime", "flatbuffers", "pynvml", "executorch")
TORCH_ALLOWED_IN = "agent/runtimes/executorch.py"   # inside functions only, run in the worker process


def agent_imports():
    """(file:line, imported module, inside a function) for every import in the agent."""
    for module, path in module_table("agent").items():
        for target, line, inside in imports(module, path, type_checking=True):
            yield f"{path.relative_to(ROOT)}:{line}", target, inside


def test_the_scan_sees_the_agent():
    modules = module_table("agent")
    assert len(modules) > 40 and "fleetnas.agent.measure.worker" in import_graph(all_modules())[
        "fleetnas.agent.measure.hygiene"]
    # the lazy runtimes are found inside functions: the allowlist below is not vacuous
    assert any(inside and target.split(".")[0] == "onnxruntime" for _, target, inside in agent_imports())


def test_the_agent_never_imports_the_host_torch_or_pymoo():
    bad = [f"{where}: {target}" for where, target, inside in agent_imports()
           if any(target == f or target.startswith(f + ".") for f in FORBIDDEN)
           and not _torch_in_the_executorch_worker(where, target, inside)]
    assert not bad, "\n".join(bad)


def _torch_in_the_executorch_worker(where: str, target: str, inside: bool) -> bool:
    return inside and target == "torch" and where.startswith(TORCH_ALLOWED_IN + ":")


def test_torch_appears_only_inside_the_executorch_runtime_functions():
    torch_uses = [(where, inside) for where, target, inside in agent_imports() if target.split(".")[0] == "torch"]
    assert all(inside and where.startswith(TORCH_ALLOWED_IN + ":") for where, inside in torch_uses), torch_uses


def test_imports_inside_functions_are_only_the_lazy_runtimes():
    bad = [f"{where}: {target}" for where, target, inside in agent_imports()
           if inside and target.split(".")[0] not in LAZY_ALLOWED
           and not _torch_in_the_executorch_worker(where, target, inside)]
    assert not bad, "move these imports to the module top (or say why they must stay lazy):\n" + "\n".join(bad)
