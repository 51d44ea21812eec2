"""Pareto fronts and hypervolume, in minimisation form (negate maximised objectives first: see `Objective`).

- ``non_dominated_mask(F)``: rows of F that no other row dominates (identical rows are all kept).
- ``nondominated_ranks(F)``: rank 0 for the first front, 1 for the next, ... (non-dominated sorting).
- ``hypervolume(F, ref)``: exact, any number of objectives (2-D sweep; higher dimensions by slicing), points not
  strictly better than ``ref`` in every objective contribute nothing.
- ``MinMaxNormalizer``: the benchmark convention (min-max over a reference table, reference point 1.1).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np


@dataclass(frozen=True)
class Objective:
    """One objective: a name (table column or metric) and its direction."""

    name: str
    maximize: bool = False

    @classmethod
    def parse(cls, text: str) -> "Objective":
        """``"acc:max"`` / ``"latency_ms:min"`` (direction defaults to min)."""
        name, _, direction = text.strip().partition(":")
        direction = direction.strip().lower() or "min"
        if not name or direction not in ("min", "max"):
            raise ValueError(f"objective {text!r}: write NAME:max or NAME:min, e.g. acc_cifar10:max")
        return cls(name.strip(), direction == "max")

    def spec(self) -> str:
        return f"{self.name}:{'max' if self.maximize else 'min'}"


def to_minimization(values: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    """Raw objective values (n, m) -> minimisation form (maximised columns negated)."""
    sign = np.array([-1.0 if o.maximize else 1.0 for o in objectives])
    return np.asarray(values, dtype=float) * sign


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of F (n, m), minimisation."""
    F = np.asarray(F, dtype=float)
    n = F.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    if F.shape[1] == 2:
        # Sort by f0 then f1; a point is dominated iff an earlier point (f0 <= its f0) has a smaller f1, or the same
        # f1 with a strictly smaller f0.
        order = np.lexsort((F[:, 1], F[:, 0]))
        mask = np.zeros(n, dtype=bool)
        best_f1, best_f0_at_best = np.inf, np.inf
        for i in order:
            f0, f1 = F[i]
            if f1 < best_f1 or (f1 == best_f1 and f0 == best_f0_at_best):
                mask[i] = True
                if f1 < best_f1:
                    best_f1, best_f0_at_best = f1, f0
        return mask
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by_i = np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1)
        mask &= ~dominated_by_i
    return mask


def nondominated_ranks(F: np.ndarray) -> np.ndarray:
    """Front index of every row (0 = non-dominated); identical rows share a rank."""
    F = np.asarray(F, dtype=float)
    n = F.shape[0]
    ranks = np.full(n, -1, dtype=np.int64)
    if n and F.shape[1] == 2:
        # 2-D: scan by f0; tails[r] is the smallest f1 seen in front r (non-decreasing in r), so a point's front is
        # the first one whose tail is worse than its f1 (patience sorting, O(n log n)).
        order = np.lexsort((F[:, 1], F[:, 0]))
        tails: List[float] = []
        previous = None
        for i in order:
            point = (F[i, 0], F[i, 1])
            if point == previous:
                ranks[i] = ranks[last]
                continue
            r = bisect.bisect_right(tails, point[1])
            if r == len(tails):
                tails.append(point[1])
            else:
                tails[r] = point[1]
            ranks[i], previous, last = r, point, i
        return ranks
    if n > 200:
        # pymoo's compiled sorting is much faster than peeling for many points in 3+ objectives. Lazy and optional:
        # reports use this module, and pymoo is slow to import.
        try:
            from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

            for r, front in enumerate(NonDominatedSorting().do(F)):
                ranks[front] = r
            return ranks
        except ImportError:
            pass
    remaining = np.arange(n)
    rank = 0
    while remaining.size:
        mask = non_dominated_mask(F[remaining])
        ranks[remaining[mask]] = rank
        remaining = remaining[~mask]
        rank += 1
    return ranks


def _hv2d(F: np.ndarray, ref: np.ndarray) -> float:
    F = F[np.argsort(F[:, 0], kind="stable")]
    volume, best_f1 = 0.0, ref[1]
    for f0, f1 in F:
        if f1 < best_f1:
            volume += (ref[0] - f0) * (best_f1 - f1)
            best_f1 = f1
    return volume


def hypervolume(F: np.ndarray, ref: Sequence[float]) -> float:
    """Exact hypervolume dominated by F (minimisation) and bounded by ``ref``."""
    F = np.asarray(F, dtype=float).reshape(-1, len(ref))
    ref = np.asarray(ref, dtype=float)
    F = F[np.all(F < ref, axis=1)]
    if F.shape[0] == 0:
        return 0.0
    F = np.unique(F[non_dominated_mask(F)], axis=0)
    if F.shape[1] == 1:
        return float(ref[0] - F[:, 0].min())
    if F.shape[1] == 2:
        return float(_hv2d(F, ref))
    # Slice along the last objective: between consecutive levels the dominated region is the (m-1)-D hypervolume of
    # the points at or below that level.
    order = np.argsort(F[:, -1], kind="stable")
    F = F[order]
    levels = np.append(F[:, -1], ref[-1])
    volume = 0.0
    for i in range(F.shape[0]):
        depth = levels[i + 1] - levels[i]
        if depth > 0:
            volume += depth * hypervolume(F[: i + 1, :-1], ref[:-1])
    return float(volume)


class MinMaxNormalizer:
    """Min-max scaling of minimisation-form objectives to [0, 1] using reference bounds (e.g. a whole table)."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low = np.asarray(low, dtype=float)
        span = np.asarray(high, dtype=float) - self.low
        self.span = np.where(span > 0, span, 1.0)

    @classmethod
    def fit(cls, F: np.ndarray) -> "MinMaxNormalizer":
        F = np.asarray(F, dtype=float)
        return cls(F.min(axis=0), F.max(axis=0))

    def __call__(self, F: np.ndarray) -> np.ndarray:
        return (np.asarray(F, dtype=float) - self.low) / self.span


def hv_gap(F_found: np.ndarray, hv_true: float, ref: Sequence[float]) -> float:
    """1 - HV(found) / HV(true); F_found already normalised and in minimisation form."""
    if hv_true <= 0:
        raise ValueError("the true hypervolume must be positive")
    return float(1.0 - hypervolume(F_found, ref) / hv_true)
