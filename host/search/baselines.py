"""Baseline tactics: ``random`` (uniform, without replacement) and ``nsga2`` (pymoo NSGA-II on real evaluations).

``nsga2`` follows the usual integer set-up (integer random sampling, SBX(0.9, eta 15) + PM(eta 20) with rounding,
duplicate elimination, population 50). A child that was evaluated before is a cache hit: pymoo gets the stored
objectives and no measurement is spent. A failed child gets a penalty (worse than anything seen) so it dies out.
pymoo's generation is all-or-nothing: ``propose`` hands out the generation's new configs as asked and returns fewer (or
none) until all of them have results; then it tells pymoo and asks for the next generation.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from fleetnas.host.search.space import Config
from fleetnas.host.search.tactic import History, Tactic, register


@register
class RandomTactic(Tactic):
    name = "random"

    def propose(self, n: int, history: History) -> List[Config]:
        return self.random_new(n, history)


@register
class NSGA2Tactic(Tactic):
    name = "nsga2"

    @classmethod
    def option_defaults(cls) -> Dict[str, Any]:
        return {"pop_size": 50}

    def __init__(self, space, objectives, seed: int = 0, **options: Any) -> None:
        super().__init__(space, objectives, seed, **options)
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        problem = Problem(n_var=len(space.params), n_obj=len(objectives), xl=np.zeros(len(space.params)),
                          xu=(space.n_options - 1).astype(float), vtype=int)
        self._algorithm = NSGA2(
            pop_size=int(self.options["pop_size"]),
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        self._algorithm.setup(problem, seed=self.seed, termination=("n_gen", 10**9), verbose=False)
        self._pop = None                      # the generation being evaluated
        self._keys: List[str] = []            # key of each individual of that generation
        self._to_hand_out: List[Config] = []  # its configs not yet proposed
        self._waiting: set = set()            # its keys proposed, without a result yet

    def _penalty(self, history: History) -> np.ndarray:
        F = history.F()
        if F.shape[0] == 0:
            return np.full(len(self.objectives), 1e12)
        return F.max(axis=0) + np.abs(F.max(axis=0)) + 1.0

    def _next_generation(self, history: History) -> None:
        pop = self._algorithm.ask()
        genes = self.space.canonical_genes(self.space.clip_genes(pop.get("X")))
        pop.set("X", genes.astype(float))
        self._pop, self._keys, self._to_hand_out, self._waiting = pop, [], [], set()
        fresh = set()
        for row in genes:
            config = self.space.from_genes(row)
            key = self.space.key(config)
            self._keys.append(key)
            if history.seen(key) or key in fresh:
                continue  # cache hit (evaluated / failed) or pending from an earlier generation: no new measurement
            fresh.add(key)
            self._to_hand_out.append(config)

    def _generation_complete(self, history: History) -> bool:
        return not self._to_hand_out and all(
            history.value_of(k) is not None or k in history.failed for k in self._keys)

    def _tell_generation(self, history: History) -> None:
        penalty = self._penalty(history)
        F = np.array([history.value_of(k) if history.value_of(k) is not None else penalty for k in self._keys])
        self._pop.set("F", F)
        self._algorithm.tell(infills=self._pop)
        self._pop = None

    def propose(self, n: int, history: History) -> List[Config]:
        out: List[Config] = []
        for _ in range(1000):  # generations made only of cache hits are told at once; bounded for safety
            if self._pop is None:
                self._next_generation(history)
            take, self._to_hand_out = self._to_hand_out[: n - len(out)], self._to_hand_out[n - len(out):]
            out.extend(take)
            if len(out) >= n or not self._generation_complete(history):
                break
            self._tell_generation(history)
        return out

    def observe(self, key: str, F_row: Optional[np.ndarray], history: History) -> None:
        if self._pop is not None and self._generation_complete(history):
            self._tell_generation(history)
