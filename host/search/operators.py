"""Variation operators on gene rows: uniform sampling, mutation, crossover, one-gene neighbours, and the repair of
real-valued rows (as pymoo's SBX/PM produce them) to valid genes. Every operator takes an explicit random generator,
so runs are reproducible. Results are *not* canonicalised: ``SearchSpace.canonical_genes`` does that.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np

if TYPE_CHECKING:
    # SearchSpace.sample uses this module, so importing the space here at run time would be a cycle; the operators
    # only read ``params`` and ``n_options`` from it.
    from fleetnas.host.search.space import Config, SearchSpace


def sample_genes(space: "SearchSpace", rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rows, each gene uniform over its options."""
    return (rng.random((n, len(space.params))) * space.n_options).astype(np.int64)


def clip_genes(space: "SearchSpace", x: np.ndarray) -> np.ndarray:
    """Repair: round real-valued gene rows to the nearest valid integer genes."""
    return np.clip(np.rint(np.asarray(x, dtype=float)), 0, space.n_options - 1).astype(np.int64)


def mutate_genes(space: "SearchSpace", genes: np.ndarray, rng: np.random.Generator,
                 prob: Optional[float] = None) -> np.ndarray:
    """Resample each gene with probability ``prob`` (default 1/n_params) to a *different* option."""
    g = np.atleast_2d(np.asarray(genes, dtype=np.int64)).copy()
    p = 1.0 / len(space.params) if prob is None else float(prob)
    hit = (rng.random(g.shape) < p) & (space.n_options > 1)
    # A shift of 1..n-1 modulo n gives a uniformly chosen different option.
    shift = 1 + (rng.random(g.shape) * (space.n_options - 1)).astype(np.int64)
    g[hit] = ((g + shift) % space.n_options)[hit]
    return g


def mutate(space: "SearchSpace", config: Mapping[str, Any], rng: np.random.Generator,
           prob: Optional[float] = None) -> "Config":
    """``mutate_genes`` on one config; returns the canonical config."""
    genes = mutate_genes(space, space.to_genes(space.validate(config))[None, :], rng, prob)[0]
    return space.from_genes(genes)


def crossover_genes(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform crossover: each gene from ``a`` or ``b`` with equal probability."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return np.where(rng.random(a.shape) < 0.5, a, b).astype(np.int64)


def crossover(space: "SearchSpace", a: Mapping[str, Any], b: Mapping[str, Any], rng: np.random.Generator) -> "Config":
    """``crossover_genes`` on two configs; returns the canonical config."""
    ga, gb = space.to_genes(space.validate(a)), space.to_genes(space.validate(b))
    return space.from_genes(crossover_genes(ga[None, :], gb[None, :], rng)[0])


def neighbours_genes(space: "SearchSpace", genes: np.ndarray) -> np.ndarray:
    """Every gene row that differs from a row of ``genes`` in exactly one gene."""
    g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
    out = []
    for i, n in enumerate(space.n_options):
        for shift in range(1, int(n)):
            moved = g.copy()
            moved[:, i] = (moved[:, i] + shift) % n
            out.append(moved)
    return np.vstack(out) if out else g[:0]
