"""Fixtures for the search tests: a small synthetic problem (625 configs) as a Python problem and as a CSV table."""
from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from fleetnas.host.search.benchmark import PythonProblem
from fleetnas.host.search.pareto import Objective
from fleetnas.host.search.space import Choice, SearchSpace

OPS = ("none", "skip", "pool", "conv1", "conv3")
_COST_MS = {"none": 0.0, "skip": 0.1, "pool": 0.6, "conv1": 1.5, "conv3": 4.0}
_GAIN = {"none": 0.0, "skip": 1.0, "pool": 1.5, "conv1": 3.0, "conv3": 4.5}


def toy_space() -> SearchSpace:
    return SearchSpace([Choice(f"e{i}", OPS) for i in range(4)])


def toy_values(config) -> dict:
    """Accuracy with diminishing returns and an interaction; latency near-additive; energy ~ latency + memory."""
    ops = [config[f"e{i}"] for i in range(4)]
    gain = sum(_GAIN[o] * (0.8 ** i) for i, o in enumerate(ops))
    bonus = 2.0 if ops[0] == "conv3" and ops[3] != "none" else 0.0
    acc = 60.0 + 30.0 * (1.0 - np.exp(-(gain + bonus) / 6.0))
    lat = 1.0 + sum(_COST_MS[o] * (1.0 + 0.1 * i) for i, o in enumerate(ops))
    energy = 0.5 * lat + 0.3 * sum(o.startswith("conv") for o in ops)
    return {"acc": float(acc), "latency_ms": float(lat), "energy_mj": float(energy)}


def make_toy_problem(n_objectives: int = 2) -> PythonProblem:
    objectives = [Objective("acc", True), Objective("latency_ms")] + ([Objective("energy_mj")] if n_objectives == 3 else [])
    return PythonProblem(toy_space(), objectives, toy_values)


@pytest.fixture
def toy_problem() -> PythonProblem:
    return make_toy_problem(2)


@pytest.fixture
def toy_problem_3obj() -> PythonProblem:
    return make_toy_problem(3)


@pytest.fixture
def toy_table(tmp_path):
    """The toy problem written as a benchmark table (one row per configuration)."""
    path = tmp_path / "toy.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["e0", "e1", "e2", "e3", "acc", "latency_ms", "energy_mj"])
        for ops in itertools.product(OPS, repeat=4):
            values = toy_values({f"e{i}": o for i, o in enumerate(ops)})
            writer.writerow(list(ops) + [values["acc"], values["latency_ms"], values["energy_mj"]])
    return path


# Small inner search and two model families: the same code paths as the defaults, fast enough for the default run.
FAST_LINAS = {"n_init": 12, "inner_generations": 5, "inner_pop": 20, "n_random_pool": 50, "families": ["ridge", "svr"]}
