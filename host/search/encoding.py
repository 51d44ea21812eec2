"""Feature encodings of gene rows: what predictors are fitted on.

- ``onehot``: one column per (parameter, option); genes the space marks inactive (``SearchSpace.active_mask``) are
  all zeros, so equivalent architectures have identical features;
- ``features``: what linas fits: ``onehot``, plus for a cell space (``SearchSpace(..., cell=CellEdges(...))``) the
  one-hot of live ops only (dead edges all zeros), so configs computing the same function share those columns;
- ``ordinal``: one column per parameter, the option index scaled to [0, 1] (inactive: 0).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from fleetnas.host.search.space import SearchSpace


def _offsets(space: SearchSpace) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(space.n_options)]).astype(np.int64)


def n_onehot(space: SearchSpace) -> int:
    return int(np.sum(space.n_options))


def onehot(space: SearchSpace, genes: np.ndarray) -> np.ndarray:
    """One column per (parameter, option); inactive parameters are all zeros. Input: gene rows."""
    g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
    out = np.zeros((g.shape[0], n_onehot(space)), dtype=np.float64)
    rows = np.repeat(np.arange(g.shape[0]), g.shape[1])
    cols = (g + _offsets(space)[:-1]).ravel()
    out[rows, cols] = space.active_mask(g).ravel().astype(np.float64)
    return out


def features(space: SearchSpace, genes: np.ndarray) -> np.ndarray:
    """``onehot``, and for a cell space also the one-hot of live ops only (dead edges all zeros)."""
    plain = onehot(space, genes)
    if space.cell is None:
        return plain
    g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
    n_edges = len(space.cell.edges)
    live = space.cell.live(g[:, :n_edges], space.cell_none_index)
    width = _offsets(space)[n_edges]
    return np.hstack([plain, plain[:, :width] * np.repeat(live, space.n_options[:n_edges], axis=1)])


def ordinal(space: SearchSpace, genes: np.ndarray) -> np.ndarray:
    """One column per parameter: option index scaled to [0, 1]; inactive parameters are 0."""
    g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
    scale = np.maximum(space.n_options - 1, 1).astype(np.float64)
    return np.where(space.active_mask(g), g / scale, 0.0)


def encode_configs(space: SearchSpace, configs: Iterable[Mapping[str, Any]], kind: str = "onehot") -> np.ndarray:
    """Configs (validated and canonicalised first) -> ``onehot`` or ``ordinal`` rows."""
    genes = np.array([space.to_genes(space.validate(c)) for c in configs], dtype=np.int64)
    genes = genes.reshape(-1, len(space.params))
    if kind == "onehot":
        return onehot(space, genes)
    if kind == "ordinal":
        return ordinal(space, genes)
    raise ValueError(f"unknown encoding {kind!r}; use 'onehot' or 'ordinal'")
