"""Fronts and hypervolume against hand-computed values and the published ground truth."""
from __future__ import annotations

import numpy as np
import pytest

from fleetnas.host.search.pareto import (MinMaxNormalizer, Objective, hypervolume, non_dominated_mask,
                                         nondominated_ranks, to_minimization)


def test_hypervolume_2d_by_hand():
    # Staircase against ref (4, 4): strips 3x1 (from (1,3)) + 2x1 (from (2,2)) + 1x1 (from (3,1)) = 6.
    F = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(F, [4, 4]) == pytest.approx(6.0)
    # A dominated point and a point outside the reference box change nothing.
    assert hypervolume(np.vstack([F, [[3.0, 3.0], [5.0, 0.0]]]), [4, 4]) == pytest.approx(6.0)
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_hypervolume_3d_by_hand():
    # Inclusion-exclusion against ref (2,2,2): A=(0,1,1), B=(1,0,1), C=(1,1,0) each dominate a box of volume 2;
    # every pairwise and the triple intersection is the unit cube [1,2]^3: 2+2+2 - 1-1-1 + 1 = 4; A and B alone: 3.
    F = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert hypervolume(F, [2, 2, 2]) == pytest.approx(4.0)
    assert hypervolume(F[:2], [2, 2, 2]) == pytest.approx(3.0)


def test_hypervolume_3d_matches_pymoo_on_random_sets():
    from pymoo.indicators.hv import HV

    rng = np.random.default_rng(0)
    for _ in range(5):
        F = rng.random((40, 3))
        assert hypervolume(F, [1.1] * 3) == pytest.approx(HV(ref_point=np.array([1.1] * 3))(F), rel=1e-9)


def test_non_dominated_mask_keeps_identical_points_and_drops_dominated():
    F = np.array([[1, 2], [1, 2], [2, 1], [2, 2], [1, 3], [0.5, 5]], dtype=float)
    assert non_dominated_mask(F).tolist() == [True, True, True, False, False, True]
    F3 = np.array([[1, 1, 1], [1, 1, 1], [0, 2, 2], [2, 2, 2]], dtype=float)
    assert non_dominated_mask(F3).tolist() == [True, True, True, False]


def test_nondominated_ranks_match_peeling():
    rng = np.random.default_rng(1)
    for m in (2, 3):
        F = rng.integers(0, 6, (250, m)).astype(float)
        ranks = nondominated_ranks(F)
        remaining, rank = np.arange(len(F)), 0
        while remaining.size:
            mask = non_dominated_mask(F[remaining])
            assert np.all(ranks[remaining[mask]] == rank)
            remaining, rank = remaining[~mask], rank + 1


def test_objective_parse_and_minimisation_form():
    acc, lat = Objective.parse("acc:max"), Objective.parse("latency_ms")
    assert (acc.maximize, lat.maximize) == (True, False) and acc.spec() == "acc:max"
    assert to_minimization(np.array([[90.0, 5.0]]), [acc, lat]).tolist() == [[-90.0, 5.0]]
    with pytest.raises(ValueError, match="NAME:max or NAME:min"):
        Objective.parse("acc:up")


@pytest.mark.parametrize("cost,front_size,hv", [("hwnb_raspi4_lat_ms", 43, 1.175022),
                                                ("hwnb_pixel3_lat_ms", 44, 1.172515)])
def test_ground_truth_hypervolume_of_published_table(shared_data, cost, front_size, hv):
    import csv

    with open(shared_data / "nb201" / "nb201_devices.csv", newline="") as handle:
        rows = [(float(r["acc_cifar10"]), float(r[cost])) for r in csv.DictReader(handle)]
    F = to_minimization(np.array(rows), [Objective("acc_cifar10", True), Objective(cost)])
    Z = MinMaxNormalizer.fit(F)(F)
    assert non_dominated_mask(Z).sum() == front_size
    assert hypervolume(Z, [1.1, 1.1]) == pytest.approx(hv, abs=1e-6)
