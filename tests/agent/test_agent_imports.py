"""The agent's import graph, read statically from the source (ast): every import at module level and inside
functions, so a cycle hidden in a function body counts too.

- no import cycle among fleetnas.agent modules (a package's __init__ counts as imported by its modules);
- no import of the host, torch or pymoo anywhere in the agent;
- imports inside functions only for the heavy or optional runtime packages that must stay lazy.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import fleetnas.agent

ROOT = Path(fleetnas.agent.__path__[0])
FORBIDDEN = ("fleetnas.host", "torch", "pymoo")
# Imported where used: optional extras or ~30 MB libraries the server process must never map.
LAZY_ALLOWED = ("onnxruntime", "ai_edge_litert", "tflite_runtime", "flatbuffers", "pynvml")


def agent_modules() -> Dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(["fleetnas.agent", *parts])] = path
    return modules


def imports(path: Path, module: str) -> Iterator[Tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    in_function: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in in_function
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                yield f"{base}.{alias.name}", node.lineno, id(node) in in_function
            yield base, node.lineno, id(node) in in_function


def graph() -> Dict[str, Set[str]]:
    modules = agent_modules()
    edges: Dict[str, Set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, _, _ in imports(path, module):
            if target not in modules:
                continue
            edges[module].add(target)
            parent = target.rpartition(".")[0]  # importing a.b.c runs a.b's __init__ first
            while parent.startswith("fleetnas.agent") and parent != module and not module.startswith(parent + "."):
                edges[module].add(parent)
                parent = parent.rpartition(".")[0]
    return edges


def find_cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def test_the_graph_sees_the_agent():
    edges = graph()
    assert len(edges) > 40 and "fleetnas.agent.measure.worker" in edges["fleetnas.agent.measure.hygiene"]


def test_no_import_cycle_among_agent_modules():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_one():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_agent_never_imports_the_host_torch_or_pymoo():
    bad = [f"{path.relative_to(ROOT.parent)}:{line}: {target}"
           for module, path in agent_modules().items() for target, line, _ in imports(path, module)
           if any(target == f or target.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, "\n".join(bad)


def test_imports_inside_functions_are_only_the_lazy_runtimes():
    bad = [f"{path.relative_to(ROOT.parent)}:{line}: {target}"
           for module, path in agent_modules().items() for target, line, inside in imports(path, module)
           if inside and target.split(".")[0] not in LAZY_ALLOWED]
    assert not bad, "move these imports to the module top (or say why they must stay lazy):\n" + "\n".join(bad)
