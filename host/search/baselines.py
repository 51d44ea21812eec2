"""Baseline tactics: ``random`` (uniform, without replacement) and ``nsga2`` (pymoo NSGA-II on real evaluations).

``nsga2`` follows the usual integer set-up (integer random sampling, SBX(0.9, eta 15) + PM(eta 20) with rounding,
duplicate elimination, population 50). A child that was evaluated before is a cache hit: pymoo gets the stored
objectives and no measurement is spent. A failed child gets a penalty (worse than anything seen) so it dies out.
pymoo's generation is all-or-nothing: ``propose`` hands out the generation's new configs as asked and returns fewer (or
none) until all of them have results; then it tells pymoo and asks for the next generation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from fleetnas.host.search import operators, pymoo_bridge
from fleetnas.host.search.history import History
from fleetnas.host.search.options import at_least
from fleetnas.host.search.space import Config
from fleetnas.host.search.tactic import Tactic


@dataclass(frozen=True)
class NSGA2Options:
    pop_size: int = 50  # population per generation

    def __post_init__(self) -> None:
        at_least(self, 2, "pop_size")


class RandomTactic(Tactic):
    name = "random"

    def propose(self, n: int, history: History) -> List[Config]:
        return self.random_new(n, history)


class NSGA2Tactic(Tactic):
    name = "nsga2"
    Options = NSGA2Options
    options: NSGA2Options

    def __init__(self, space, objectives, seed: int = 0, options: Optional[NSGA2Options] = None) -> None:
        super().__init__(space, objectives, seed, options)
        self._algorithm = pymoo_bridge.start_ask_tell(pymoo_bridge.gene_problem(space, len(self.objectives)),
                                                      pymoo_bridge.nsga2(self.options.pop_size), seed=self.seed)
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
        genes = self.space.canonical_genes(operators.clip_genes(self.space, pop.get("X")))
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
