"""The tactic contract (what to evaluate next) and the registry of tactics.

A tactic never touches storage or devices. The `fleetnas.host.search.engine.Search` calls it as:

- ``propose(n, history) -> list[config]``: up to ``n`` *new* canonical configs (none in ``history.seen``). Fewer (or
  none) is a valid answer: a generational tactic waiting for the rest of its generation, or a space running out.
- ``observe(key, F_row_or_None, history)``: a result arrived (``None`` = evaluation failed). Results may arrive in any
  order and interleaved with ``propose`` calls.

Everything a tactic decides must be a function of its seed and the sequence of calls it received: that is what makes a
journal replay (resume) give the same proposals as an uninterrupted run. Objectives reach a tactic in minimisation
form (maximised objectives negated), one row per evaluated config in ``history``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Sequence, Set, Type

import numpy as np

from fleetnas.host.search.pareto import Objective
from fleetnas.host.search.space import Config, SearchSpace


class History:
    """What the search knows: evaluated configs (genes + minimisation-form objectives), pending and failed keys."""

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective]) -> None:
        self.space = space
        self.objectives = tuple(objectives)
        self.keys: List[str] = []             # evaluated, in the order results arrived
        self._genes: List[np.ndarray] = []
        self._F: List[np.ndarray] = []
        self.pending: Dict[str, Config] = {}  # proposed, no result yet
        self.failed: Set[str] = set()
        self._index: Dict[str, int] = {}
        self._seen_rows: Set[bytes] = set()   # canonical gene rows of everything proposed (fast pool filtering)

    @property
    def n_evaluated(self) -> int:
        return len(self.keys)

    def seen(self, key: str) -> bool:
        """Proposed before (evaluated, pending or failed): never propose it again."""
        return key in self._index or key in self.pending or key in self.failed

    def seen_mask(self, canonical_genes: np.ndarray) -> np.ndarray:
        """``seen`` for a batch of canonical gene rows, without building their keys."""
        g = np.atleast_2d(np.asarray(canonical_genes, dtype=np.int64))
        return np.fromiter((row.tobytes() in self._seen_rows for row in g), dtype=bool, count=g.shape[0])

    def add_pending(self, key: str, config: Config) -> None:
        self.pending[key] = config
        self._seen_rows.add(self.space.to_genes(self.space.validate(config)).astype(np.int64).tobytes())

    def add_result(self, key: str, F_row: Optional[np.ndarray]) -> None:
        config = self.pending.pop(key)
        if F_row is None:
            self.failed.add(key)
            return
        self._index[key] = len(self.keys)
        self.keys.append(key)
        self._genes.append(self.space.to_genes(config))
        self._F.append(np.asarray(F_row, dtype=float))

    def genes(self) -> np.ndarray:
        if not self._genes:
            return np.zeros((0, len(self.space.params)), dtype=np.int64)
        return np.stack(self._genes)

    def F(self) -> np.ndarray:
        """Evaluated objectives, minimisation form, shape (n_evaluated, n_objectives)."""
        if not self._F:
            return np.zeros((0, len(self.objectives)))
        return np.stack(self._F)

    def value_of(self, key: str) -> Optional[np.ndarray]:
        i = self._index.get(key)
        return None if i is None else self._F[i]


class Tactic(ABC):
    """Base of every tactic: seeded, no storage, no I/O. Subclasses fill ``propose`` (and ``observe`` if stateful)."""

    name = "base"

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, **options: Any) -> None:
        if len(objectives) < 2:
            raise ValueError(f"a multi-objective search needs >= 2 objectives, got {len(objectives)}")
        unknown = sorted(set(options) - set(self.option_defaults()))
        if unknown:
            raise ValueError(f"tactic {self.name!r} has no option(s) {unknown}; options: {self.option_defaults()}")
        self.space = space
        self.objectives = tuple(objectives)
        self.seed = int(seed)
        self.options: Dict[str, Any] = {**self.option_defaults(), **options}
        self.rng = np.random.default_rng(self.seed)
        self.round_reports: List[Dict[str, Any]] = []  # one JSON-able dict per decision round (predictor quality...)

    @classmethod
    def option_defaults(cls) -> Dict[str, Any]:
        return {}

    @abstractmethod
    def propose(self, n: int, history: History) -> List[Config]: ...

    def observe(self, key: str, F_row: Optional[np.ndarray], history: History) -> None:
        """Called after ``history`` recorded a result (None = failed)."""

    # Helpers shared by tactics ------------------------------------------------------------------------------------
    def random_new(self, n: int, history: History, taken: Optional[Set[str]] = None, max_tries: int = 50) -> List[Config]:
        """Up to n uniformly random configs never seen (sampling without replacement, by rejection)."""
        taken = set() if taken is None else taken
        out: List[Config] = []
        tries = 0
        while len(out) < n and tries < max_tries:
            tries += 1
            for genes in self.space.sample_genes(self.rng, 2 * (n - len(out)) + 8):
                config = self.space.from_genes(genes)
                key = self.space.key(config)
                if key in taken or history.seen(key):
                    continue
                taken.add(key)
                out.append(config)
                if len(out) == n:
                    break
        return out


TACTICS: Dict[str, Type[Tactic]] = {}


def register(cls: Type[Tactic]) -> Type[Tactic]:
    TACTICS[cls.name] = cls
    return cls


def make_tactic(name: str, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0, **options: Any) -> Tactic:
    # Importing the modules registers the built-in tactics.
    from fleetnas.host.search import baselines, linas  # noqa: F401

    if name not in TACTICS:
        raise ValueError(f"unknown tactic {name!r}; choose from {sorted(TACTICS)}")
    return TACTICS[name](space, objectives, seed=seed, **options)
