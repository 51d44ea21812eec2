"""The fleet search's per-class batch utilities: Monte Carlo probability of non-dominance (two objectives, or three
for a class with two costs) and expected hypervolume improvement on two objectives (accuracy, one cost), each with a
believer fantasy (``take``) so a batch spreads."""
from __future__ import annotations

import numpy as np

from fleetnas.host.search.pareto import non_dominated_mask


def dominated_2d(samples: np.ndarray, front: np.ndarray) -> np.ndarray:
    """samples (S, P, 2), front (k, 2) -> bool (S, P): some front point is <= in both objectives (minimisation).
    Two objectives: sort the front by the first, and compare with the best second objective among front points not
    worse in the first (a prefix minimum), instead of comparing every sample with every front point."""
    if front.shape[0] == 0:
        return np.zeros(samples.shape[:2], dtype=bool)
    order = np.argsort(front[:, 0], kind="stable")
    f0, best_f1 = front[order, 0], np.minimum.accumulate(front[order, 1])
    idx = np.searchsorted(f0, samples[..., 0], side="right")
    return (idx > 0) & (best_f1[np.maximum(idx - 1, 0)] <= samples[..., 1])


def dominated_nd(samples: np.ndarray, front: np.ndarray) -> np.ndarray:
    """samples (S, P, d), front (k, d) -> bool (S, P): some front point is <= in every objective (minimisation).
    One front point at a time: memory stays at S x P whatever the front's size."""
    if samples.shape[-1] == 2:
        return dominated_2d(samples, front)
    out = np.zeros(samples.shape[:2], dtype=bool)
    for f in front:
        out |= np.all(f <= samples, axis=-1)
    return out


def dominated_projections(samples: np.ndarray, front: np.ndarray) -> list:
    """Accuracy and several costs: per 2-D projection (accuracy, one cost), whether each sample is dominated there. A
    sample dominated in every projection stands in for a 3-D dominated one (cheap; a sample non-dominated in some
    projection is non-dominated in 3-D, not the reverse)."""
    out = []
    for j in range(1, samples.shape[-1]):
        proj = front[:, [0, j]]
        out.append(dominated_2d(samples[..., [0, j]], proj[non_dominated_mask(proj)] if len(proj) else proj))
    return out


class DominanceState:
    """Per class: Monte Carlo probability that each candidate is non-dominated, with believer fantasies.
    ``projections``: with more than two objectives, dominance in every (accuracy, cost) projection instead."""

    def __init__(self, samples: np.ndarray, front: np.ndarray, measured: np.ndarray,
                 projections: bool = False) -> None:
        self.samples = samples
        self.projections = projections and samples.shape[-1] > 2
        if self.projections:
            self._per_projection = dominated_projections(samples, front)
            for d in self._per_projection:
                d[:, measured] = True
            self.dominated = np.logical_and.reduce(self._per_projection)
        else:
            self.dominated = dominated_nd(samples, front)
        self.dominated[:, measured] = True
        self.means: np.ndarray = np.zeros((samples.shape[1], 2))

    def utility(self) -> np.ndarray:
        return 1.0 - self.dominated.mean(axis=0)

    def take(self, i: int) -> None:
        m, s = self.means[i], self.samples
        if s.shape[-1] == 2:
            self.dominated |= (m[0] <= s[..., 0]) & (m[1] <= s[..., 1])
        elif self.projections:
            better_acc = m[0] <= s[..., 0]
            for j, d in enumerate(self._per_projection, start=1):
                d |= better_acc & (m[j] <= s[..., j])
                d[:, i] = True
            self.dominated = np.logical_and.reduce(self._per_projection)
        else:
            self.dominated |= np.all(m <= s, axis=-1)
        self.dominated[:, i] = True


def hv_improvement_2d(samples: np.ndarray, front: np.ndarray, ref: float = 1.1) -> np.ndarray:
    """samples (S, P, 2), front (k, 2) non-dominated, both normalised (minimisation) -> (S, P) hypervolume each
    sample adds to the front, reference point (ref, ref). The front's staircase splits the first objective into k + 1
    intervals; on each the improvement is the overlap width times the height below the staircase."""
    f = front[np.argsort(front[:, 0], kind="stable")]
    left = np.concatenate([[-np.inf], f[:, 0]])
    right = np.concatenate([f[:, 0], [ref]])
    height = np.concatenate([[ref], np.minimum.accumulate(f[:, 1])]) if len(f) else np.array([ref])
    y0, y1 = samples[..., 0][..., None], samples[..., 1][..., None]
    width = np.clip(np.minimum(right, ref) - np.maximum(left, y0), 0.0, None)
    return (width * np.clip(np.minimum(height, ref) - y1, 0.0, None)).sum(axis=-1)


class HVIState:
    """Per class: Monte Carlo expected hypervolume improvement over a shortlist, with believer fantasies."""

    shortlist = 150

    def __init__(self, samples: np.ndarray, front: np.ndarray, measured: np.ndarray) -> None:
        self.front = front
        full = hv_improvement_2d(samples, front).mean(axis=0)
        full[measured] = 0.0
        self.short = np.argsort(-full, kind="stable")[:self.shortlist]
        self.short = self.short[full[self.short] > 0]
        self.samples = samples[:, self.short]
        self.value = np.zeros(samples.shape[1])
        self.value[self.short] = full[self.short]
        self.means: np.ndarray = np.zeros((samples.shape[1], 2))

    def utility(self) -> np.ndarray:
        return self.value

    def take(self, i: int) -> None:
        self.front = np.vstack([self.front, self.means[i]])
        self.front = self.front[non_dominated_mask(self.front)]
        self.value[self.short] = hv_improvement_2d(self.samples, self.front).mean(axis=0)
        self.value[i] = 0.0
