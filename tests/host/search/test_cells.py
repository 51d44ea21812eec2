"""Cell spaces: which edges are live, live-op features shared by cells computing the same function, the cell
declaration's round trip and errors, and `fleetnas bench --cell`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.host.cli import main
from fleetnas.host.search import encoding, operators
from fleetnas.host.search.cells import CellEdges
from fleetnas.host.search.space import Choice, SearchSpace

NB201 = CellEdges.parse("0-1,0-2,1-2,0-3,1-3,2-3")
OPS = ("avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3", "none", "skip_connect")


def nb201_space() -> SearchSpace:
    return SearchSpace([Choice(f"e{k}", OPS) for k in range(6)], cell=NB201)


def genes_of(space, *ops):
    return np.array([[OPS.index(o) for o in ops]])


@pytest.mark.parametrize("ops, live", [
    # Output fed only by the input through a skip: nothing before node 3 matters.
    (("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "none", "none"), [0, 0, 0, 1, 0, 0]),
    # Nothing reaches the output: every edge is dead.
    (("avg_pool_3x3", "nor_conv_3x3", "skip_connect", "none", "none", "none"), [0, 0, 0, 0, 0, 0]),
    # Node 1 is zero (e0 none), so the op from node 1 to the output is dead; node 2 is fed by the input.
    (("none", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1"), [0, 1, 0, 1, 0, 1]),
    # A full cell: every edge live.
    (("nor_conv_3x3",) * 6, [1, 1, 1, 1, 1, 1]),
])
def test_live_edges_of_nb201_cells(ops, live):
    space = nb201_space()
    none = [OPS.index("none")] * 6
    assert NB201.live(genes_of(space, *ops), none)[0].astype(int).tolist() == live


def test_cells_computing_the_same_function_share_live_features():
    space = nb201_space()
    a = genes_of(space, "nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_1x1", "none", "none")
    b = genes_of(space, "skip_connect", "none", "skip_connect", "nor_conv_1x1", "none", "none")
    fa, fb = encoding.features(space, a), encoding.features(space, b)
    assert fa.shape == (1, 60) and np.array_equal(fa[:, :30], encoding.onehot(space, a))
    assert np.array_equal(fa[:, 30:], fb[:, 30:])          # same function: same live-op columns
    assert not np.array_equal(fa[:, :30], fb[:, :30])      # different candidates (their latency differs)
    assert fa[0, 30:].sum() == 1                           # only e3's conv1x1 is live


def test_space_without_cell_features_are_the_onehot():
    space = SearchSpace([Choice("a", (1, 2)), Choice("b", ("x", "y", "z"))])
    genes = operators.sample_genes(space, np.random.default_rng(0), 5)
    assert np.array_equal(encoding.features(space, genes), encoding.onehot(space, genes))


def test_cell_round_trips_and_bad_declarations_are_named():
    space = nb201_space()
    again = SearchSpace.from_describe(json.loads(json.dumps(space.describe())))
    assert again.cell == space.cell
    with pytest.raises(ValueError, match="FROM-TO"):
        CellEdges.parse("0-1,banana")
    with pytest.raises(ValueError, match="lower to a higher node"):
        CellEdges.parse("1-0")
    with pytest.raises(ValueError, match="only 1 parameters"):
        SearchSpace([Choice("e0", OPS)], cell=CellEdges.parse("0-1,1-2"))
    with pytest.raises(ValueError, match="'none'"):
        SearchSpace([Choice("e0", ("a", "b"))], cell=CellEdges.parse("0-1"))


def test_bench_cli_with_a_cell(toy_table, capsys):
    options = ["--option", "inner_generations=5", "--option", "n_init=12", "--option", 'families=["ridge","svr"]']
    assert main(["bench", "--table", str(toy_table), "--params", "e0,e1,e2,e3", "--objectives",
                 "acc:max,latency_ms:min", "--cell", "0-1,0-2,1-2,0-3", "--tactic", "linas", "--budget", "40",
                 "--seeds", "1", "--batch", "10", "--json", *options]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["budgets"][-1] == 40 and 0.0 <= out["hv_gap_median"][-1] <= 1.0
    assert main(["bench", "--table", str(toy_table), "--params", "e0,e1,e2,e3", "--objectives",
                 "acc:max,latency_ms:min", "--cell", "0-1,x", "--budget", "40"]) == 2
    assert "FROM-TO" in capsys.readouterr().err
