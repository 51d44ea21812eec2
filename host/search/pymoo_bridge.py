"""The one place fleetnas sets up pymoo: a problem over a space's genes and NSGA-II with the integer operators.

Genes are integers ``0 <= g[i] < n_options[i]``; pymoo works on them as reals (SBX(0.9, eta 15) crossover and PM(eta
20) mutation, each followed by rounding), the usual integer set-up. Every tactic that runs NSGA-II builds it here, so
the set-up cannot drift between them.
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from fleetnas.host.search.space import SearchSpace

# real-valued gene rows (as pymoo hands them out) -> objectives (rows, n_obj), minimisation form
EvaluateGenes = Callable[[np.ndarray], np.ndarray]


class _EvaluatedProblem(Problem):
    def __init__(self, evaluate: EvaluateGenes, **bounds) -> None:
        super().__init__(**bounds)
        self._evaluate_genes = evaluate

    def _evaluate(self, x, out, *args, **kwargs):
        out["F"] = self._evaluate_genes(x)


def gene_problem(space: SearchSpace, n_obj: int, evaluate: Optional[EvaluateGenes] = None) -> Problem:
    """The space's genes as a pymoo problem; without ``evaluate`` it is for ask/tell (objectives told from outside)."""
    n_var = len(space.params)
    bounds = dict(n_var=n_var, n_obj=n_obj, xl=np.zeros(n_var), xu=(space.n_options - 1).astype(float), vtype=int)
    return Problem(**bounds) if evaluate is None else _EvaluatedProblem(evaluate, **bounds)


def nsga2(pop_size: int, sampling: Union[np.ndarray, None] = None, eliminate_duplicates: bool = True) -> NSGA2:
    """NSGA-II over integer genes. ``sampling``: the first population as gene rows (default: uniform random)."""
    return NSGA2(
        pop_size=pop_size,
        sampling=IntegerRandomSampling() if sampling is None else np.asarray(sampling, dtype=float),
        crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=eliminate_duplicates,
    )


def run_generations(problem: Problem, algorithm: NSGA2, n_gen: int, seed: int) -> None:
    """Run ``algorithm`` on an evaluated problem for ``n_gen`` generations (results: what ``evaluate`` saw)."""
    minimize(problem, algorithm, ("n_gen", n_gen), seed=seed, verbose=False)


def start_ask_tell(problem: Problem, algorithm: NSGA2, seed: int) -> NSGA2:
    """Prepare ``algorithm`` for ``ask()`` / ``tell(infills=...)`` with objectives measured outside pymoo."""
    algorithm.setup(problem, seed=seed, termination=("n_gen", 10**9), verbose=False)
    return algorithm
