"""The fleet search's per-class batch utilities: Monte Carlo probability of non-dominance and expected hypervolume
improvement on two objectives (accuracy, one cost), each with a believer fantasy (``take``) so a batch spreads."""
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


class DominanceState:
    """Per class: Monte Carlo probability that each candidate is non-dominated, with believer fantasies."""

    def __init__(self, samples: np.ndarray, front: np.ndarray, measured: np.ndarray) -> None:
        self.samples = samples
        self.dominated = dominated_2d(samples, front)
        self.dominated[:, measured] = True
        self.means: np.ndarray = np.zeros((samples.shape[1], 2))

    def utility(self) -> np.ndarray:
        return 1.0 - self.dominated.mean(axis=0)

    def take(self, i: int) -> None:
        m, s = self.means[i], self.samples
        self.dominated |= (m[0] <= s[..., 0]) & (m[1] <= s[..., 1])
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
