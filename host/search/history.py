"""`History`: what a search knows, as tactics see it (evaluated genes and objectives, pending and failed keys)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Set

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
