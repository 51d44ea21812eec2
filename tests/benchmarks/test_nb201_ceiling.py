"""The oracle bounds of benchmarks/nb201_ceiling.py back issue 4's closing claims: check their parts on known cases."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fleetnas.host.search.pareto import hypervolume, non_dominated_mask

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "nb201_ceiling.py"
_spec = importlib.util.spec_from_file_location("nb201_ceiling", _PATH)
ceiling = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ceiling)


def test_exclusive_hv_is_the_hypervolume_a_point_adds():
    rng = np.random.default_rng(0)
    for _ in range(100):
        front = rng.random((int(rng.integers(1, 8)), 2))  # dominated members included on purpose
        points = rng.random((6, 2))
        base = hypervolume(front, [1.1, 1.1])
        added = [hypervolume(np.vstack([front, p]), [1.1, 1.1]) - base for p in points]
        np.testing.assert_allclose(ceiling.exclusive_hv(points, front), added, atol=1e-12)


def test_cell_function_merges_twins_and_separates_functions():
    f = ceiling.cell_function
    conv = "nor_conv_3x3"
    # Only e3 (0->3) carries the input to the output; ops on edges cut off from the output change nothing.
    assert f([conv, "none", "none", "skip_connect", "none", "none"]) == \
        f(["avg_pool_3x3", "nor_conv_1x1", "none", "skip_connect", "none", "none"])
    # x -> skip -> node1 -> conv -> out is the same function as x -> conv -> out.
    assert f(["skip_connect", "none", "none", "none", conv, "none"]) == f(["none"] * 3 + [conv, "none", "none"])
    assert f(["none"] * 3 + [conv, "none", "none"]) != f(["none"] * 3 + ["nor_conv_1x1", "none", "none"])
    assert f(["none"] * 6) == f([conv, conv, conv, "none", "none", "none"])  # no path to the output


@pytest.mark.parametrize("aim", ["recall", "hv"])
def test_oracle_search_finds_the_front_of_a_small_table(aim):
    """Two classes of twins and singletons: with the whole table as budget, the oracle has measured every member;
    at half of it, it has found more of the front than the first half of the (shuffled) table holds."""
    rng = np.random.default_rng(1)
    n = 100
    classes = np.arange(n)
    classes[:30], classes[30:60] = 0, 1
    classes = np.unique(classes, return_inverse=True)[1]
    means = rng.uniform(70.0, 94.0, classes.max() + 1)
    acc = means[classes] + 0.15 * rng.standard_normal(n)
    lat = np.exp(rng.normal(1.0, 0.8, n))
    out = ceiling.oracle_search(acc, lat, classes, budget=n, batch=10, seed=0, aim=aim, n_draws=16)
    assert out[100] == pytest.approx((1.0, 0.0), abs=1e-12)
    true = non_dominated_mask(np.column_stack([-acc, lat]))
    in_order = true[:50].sum() / true.sum()
    assert out[50][0] > in_order
