"""No import cycles among fleetnas modules, host and agent.

Every module under host/ and agent/ is parsed (not imported) as its ``fleetnas.*`` name; every import in it, at
module level or inside a function, is an edge to the fleetnas modules it runs (the packages on the way included).
Imports under ``if TYPE_CHECKING:`` never run and are left out. A cycle fails the test, printed as ``a -> b -> ... -> a``.
"""
from __future__ import annotations

from import_scan import all_modules, cycles, import_graph


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph(all_modules())
    assert "fleetnas.host.search.engine" in graph and "fleetnas.agent.cli" in graph
    assert "fleetnas.host.search.space" in graph["fleetnas.host.search.engine"]   # module level
    assert "fleetnas.host.errors" in graph["fleetnas.host.commands.bench"]        # inside run()
    assert "fleetnas.host.search" in graph["fleetnas.host.commands.bench"]        # the package of what it imports


def test_the_graph_leaves_out_type_checking_imports():
    # operators.py names the space only for the type checker: a run-time import would be a cycle
    assert "fleetnas.host.search.space" not in import_graph(all_modules())["fleetnas.host.search.operators"]


def test_the_cycle_finder_prints_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_fleetnas_modules():
    found = cycles(import_graph(all_modules()))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)
