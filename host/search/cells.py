"""Cell search spaces (NAS-Bench-201, NATS, DARTS-like cells): parameters that are the edges of a DAG.

In a cell, an operation on an edge whose input is always zero, or whose output never reaches the cell's output,
changes nothing the network computes: cells that differ only on such *dead* edges are the same function (NAS-Bench-201
has 4,930 functions among 15,625 cells). They are not the same candidate (runtimes still execute dead ops, so their
latency differs), but their accuracy is the same up to training noise. `CellEdges` declares the DAG so predictors
also see the *live* ops: one-hot columns where dead edges are zero, next to the plain one-hot (which latency needs).

    cell = CellEdges.parse("0-1,0-2,1-2,0-3,1-3,2-3")          # e0..e5 of NAS-Bench-201, node 3 is the output
    live = cell.live(genes, none_index)                       # (rows, edges) bool
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class CellEdges:
    """Edge k of the cell goes from node ``edges[k][0]`` to ``edges[k][1]``; node 0 is the input, the largest node the
    output; ``none`` is the option that means "no edge"."""

    edges: Tuple[Tuple[int, int], ...]
    none: str = "none"

    def __post_init__(self) -> None:
        edges = tuple((int(a), int(b)) for a, b in self.edges)
        if not edges:
            raise ValueError("a cell needs at least one edge")
        bad = [e for e in edges if not 0 <= e[0] < e[1]]
        if bad:
            raise ValueError(f"cell edges must go from a lower to a higher node (a DAG from node 0), got {bad}")
        object.__setattr__(self, "edges", edges)

    @classmethod
    def parse(cls, text: str, none: str = "none") -> "CellEdges":
        """``"0-1,0-2,1-2,0-3,1-3,2-3"``: one ``from-to`` per edge parameter, in the parameters' order."""
        try:
            edges = [tuple(int(n) for n in item.split("-")) for item in text.split(",") if item.strip()]
            if any(len(e) != 2 for e in edges):
                raise ValueError
        except ValueError:
            raise ValueError(f"cell {text!r}: write one FROM-TO node pair per edge parameter, e.g. "
                             "0-1,0-2,1-2,0-3,1-3,2-3") from None
        return cls(tuple(edges), none)  # type: ignore[arg-type]

    @property
    def output(self) -> int:
        return max(b for _, b in self.edges)

    def spec(self) -> str:
        return ",".join(f"{a}-{b}" for a, b in self.edges)

    def live(self, genes: np.ndarray, none_index: Sequence[int]) -> np.ndarray:
        """(rows, edges) bool: the edge has an op, its input can be non-zero and its output reaches the cell output.
        ``none_index[k]``: the gene value of "no edge" for edge k (-1 if edge k has no such option)."""
        g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
        present = g != np.asarray(none_index, dtype=np.int64)[None, :]
        nodes = self.output + 1
        nonzero = np.zeros((g.shape[0], nodes), dtype=bool)
        nonzero[:, 0] = True
        for node in range(1, nodes):  # edges go forward, so node order is a topological order
            for k, (a, b) in enumerate(self.edges):
                if b == node:
                    nonzero[:, node] |= present[:, k] & nonzero[:, a]
        reaches = np.zeros((g.shape[0], nodes), dtype=bool)
        reaches[:, self.output] = True
        for node in range(self.output - 1, -1, -1):
            for k, (a, b) in enumerate(self.edges):
                if a == node:
                    reaches[:, node] |= present[:, k] & reaches[:, b]
        src = np.array([a for a, _ in self.edges])
        dst = np.array([b for _, b in self.edges])
        return present & nonzero[:, src] & reaches[:, dst]
