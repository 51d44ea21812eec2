"""Picking the batch to measure: probability of being non-dominated, with greedy "believer" fantasies for spread.

For each candidate, predicted objectives are Gaussian (mean, calibrated std), minimisation form. ``pick_batch``:

1. draws ``n_draws`` joint samples of every candidate's objectives;
2. marks, per draw, the candidates that the evaluated front dominates (Monte Carlo estimate of
   P(non-dominated | front so far)); this rewards both predicted quality and uncertainty;
3. greedily takes the most probable candidate, adds its *predicted mean* to the front as if measured (a "believer"
   fantasy), updates the other candidates' probabilities, and repeats: the batch spreads along the front instead of
   piling into one region. Ties (probability 0) fall back to the predicted non-dominated rank.
"""
from __future__ import annotations

from typing import List

import numpy as np

from fleetnas.host.search.pareto import non_dominated_mask, nondominated_ranks


def dominated_by_any(samples: np.ndarray, front: np.ndarray, chunk: int = 64) -> np.ndarray:
    """samples (S, P, m), front (k, m) -> bool (S, P): some front point weakly better everywhere, strictly somewhere."""
    out = np.zeros(samples.shape[:2], dtype=bool)
    for start in range(0, front.shape[0], chunk):
        f = front[start:start + chunk][None, None, :, :]            # (1, 1, k, m)
        y = samples[:, :, None, :]                                  # (S, P, 1, m)
        out |= np.any(np.all(f <= y, axis=3) & np.any(f < y, axis=3), axis=2)
    return out


def pick_batch(
    mean: np.ndarray,
    std: np.ndarray,
    F_evaluated: np.ndarray,
    n: int,
    rng: np.random.Generator,
    n_draws: int = 48,
    shortlist: int = 400,
) -> List[int]:
    """Indices (into the candidate rows of ``mean``/``std``) of up to ``n`` candidates to measure, best first."""
    P = mean.shape[0]
    if P == 0 or n <= 0:
        return []
    n = min(n, P)
    front = F_evaluated[non_dominated_mask(F_evaluated)] if F_evaluated.shape[0] else F_evaluated
    rank = nondominated_ranks(mean)
    # Shortlist: the best candidates by predicted rank, then by optimistic (mean - 2 std) rank, to bound the cost.
    optimistic_rank = nondominated_ranks(mean - 2.0 * std)
    order = np.lexsort((rank, optimistic_rank))
    by_rank = np.lexsort((optimistic_rank, rank))
    short = list(dict.fromkeys(list(by_rank[:shortlist // 2]) + list(order[:shortlist])))[:max(shortlist, n)]
    short = np.array(short, dtype=np.int64)
    mu, sd = mean[short], std[short]
    samples = mu[None, :, :] + sd[None, :, :] * rng.standard_normal((n_draws,) + mu.shape)
    dominated = dominated_by_any(samples, front) if front.shape[0] else np.zeros(samples.shape[:2], dtype=bool)
    chosen: List[int] = []
    available = np.ones(short.shape[0], dtype=bool)
    for _ in range(n):
        prob = 1.0 - dominated.mean(axis=0)
        # Probability first, predicted rank second (ties at 0 happen once the front is well covered).
        score = np.where(available, prob - 1e-6 * rank[short], -np.inf)
        best = int(np.argmax(score))
        if not np.isfinite(score[best]):
            break
        chosen.append(int(short[best]))
        available[best] = False
        fantasy = mu[best][None, :]
        dominated |= dominated_by_any(samples, fantasy)
    return chosen
