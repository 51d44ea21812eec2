"""fleetnas's imports read from the source (ast, nothing imported): the one scanner of the architecture tests.

    modules = module_table("host")              # {"fleetnas.host.search.engine": Path(...host/search/engine.py), ...}
    for target, line, inside_function in imports(name, path): ...
    cycles(import_graph(all_modules()))         # [["a", "b", "a"], ...], one shortest path per cycle

Imports at module level and inside functions count, relative ones resolved against the module's package;
``from pkg import name`` yields both ``pkg`` and ``pkg.name`` (``name`` may be a submodule or an attribute).
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"host": "fleetnas.host", "agent": "fleetnas.agent"}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def module_table(folder: str) -> Dict[str, Path]:
    """Every module of a source folder (``host`` or ``agent``) by its fleetnas name; a package is its __init__.py."""
    out = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGES[folder], *parts])] = path
    return out


def all_modules() -> Dict[str, Path]:
    return {name: path for folder in PACKAGES for name, path in module_table(folder).items()}


def imports(module: str, path: Path, *, type_checking: bool = False) -> Iterator[Tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in the file, in line order.

    Imports under ``if TYPE_CHECKING:`` never run and are left out, unless ``type_checking`` (a type-only import still
    ties the code to what it names, which the seam and forbidden-import checks care about).
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node, inside in sorted(_import_nodes(ast.parse(path.read_text(), str(path)), type_checking),
                               key=lambda found: found[0].lineno):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, inside
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        yield base, node.lineno, inside
        for alias in node.names:
            yield f"{base}.{alias.name}", node.lineno, inside


def _import_nodes(tree: ast.AST, type_checking: bool) -> Iterator[Tuple[ast.stmt, bool]]:
    stack: List[Tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, inside = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, inside
        elif isinstance(node, ast.If) and not type_checking and _is_type_checking(node):
            stack.extend((child, inside) for child in node.orelse)
        else:
            inside_children = inside or isinstance(node, _FUNCTIONS)
            stack.extend((child, inside_children) for child in ast.iter_child_nodes(node))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph(modules: Dict[str, Path]) -> Dict[str, Set[str]]:
    """Module -> the modules of the table that importing it runs.

    An import of ``a.b.c`` runs ``a`` and ``a.b`` first, so those are edges too, except the importer's own packages
    (already initialising when it runs). ``from pkg import attr`` reads ``pkg``: an edge even to an own package.
    """
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        own = _packages_of(name) | {name}
        for target, _, _ in imports(name, path):
            found = _known(target, modules)
            if found is None or found == name or (found == target and found in own):
                continue
            graph[name].add(found)
            graph[name].update(p for p in _packages_of(found) if p in modules and p not in own)
    return graph


def _packages_of(name: str) -> Set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _known(name: str, modules: Dict[str, Path]) -> Optional[str]:
    """The longest prefix of ``name`` that is one of our modules (``a.b.attr`` -> ``a.b``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan), as a path a -> ... -> a."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    components: List[Set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_in(component, graph) for component in components]


def _path_in(component: Set[str], graph: Dict[str, Set[str]]) -> List[str]:
    """A shortest cycle through the component's first module (breadth-first back to it)."""
    start = min(component)
    parents: Dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1] + [start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    return sorted(component)
