"""The fleet search's cost models: one ridge model per cost series (a class's latency, or its energy), with transfer.

A series is one cost of one device class. Level 0: a ridge model on the one-hot encoding (costs are close to additive
in the ops actually run). Level 1 (``transfer="stack"``): a ridge model that also takes the other series' level-0
predictions as inputs; the variant with the smaller leave-one-out error is kept, so a series with ten measurements
mostly rescales what the other series measured (a class's energy rescales its own latency), and a series with
hundreds relies on its own data.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np


class LooRidge:
    """Standardised ridge with the alpha of smallest leave-one-out error (kept: it selects the transfer variant)."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import RidgeCV

        self.mu, self.sd = X.mean(axis=0), X.std(axis=0) + 1e-9
        self._X, self._y = (X - self.mu) / self.sd, y
        self.model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(self._X, y)
        self.loo_mse = float(-self.model.best_score_)

    def loo_predictions(self) -> np.ndarray:
        """Each training point predicted by the model fitted without it (closed form: residual / (1 - leverage));
        the intercept is not penalised, hence the 1 / n in the leverage."""
        X, n = self._X, self._X.shape[0]
        gram = X.T @ X + self.model.alpha_ * np.eye(X.shape[1])
        leverage = 1.0 / n + np.einsum("ij,ji->i", X, np.linalg.solve(gram, X.T))
        residual = self._y - self.model.predict(X)
        return self._y - residual / np.maximum(1.0 - leverage, 1e-9)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict((X - self.mu) / self.sd)


class CostModels:
    """Fitted cost models of every series with >= 3 measurements.

    ``data``: series -> (keys in measurement order, their costs in minimisation form); ``encode``: genes -> inputs;
    ``genes_of``: key -> genes. ``models[series]`` has ``variant`` ("own", "others", "own+others"), ``rmse`` (leave-one-
    out, in units of the series' std), ``y`` (measured values) and what `loo_predictions` needs."""

    def __init__(self, data: Mapping[str, Tuple[Sequence[str], np.ndarray]], encode: Callable[[np.ndarray], np.ndarray],
                 genes_of: Mapping[str, np.ndarray], transfer: str) -> None:
        self.encode = encode
        self.level0: Dict[str, Dict[str, Any]] = {}
        for s, (keys, y) in data.items():
            if len(keys) < 3:
                continue
            mu, sd = y.mean(), y.std() + 1e-12
            self.level0[s] = {"model": LooRidge(encode(np.stack([genes_of[k] for k in keys])), (y - mu) / sd),
                              "mu": mu, "sd": sd, "keys": list(keys), "y": y}
        self.models: Dict[str, Dict[str, Any]] = {}
        for s, m in self.level0.items():
            m = dict(m, variant="own", stack=None)
            m["rmse"] = math.sqrt(m["model"].loo_mse)
            others = [o for o in self.level0 if o != s]
            if transfer == "stack" and others:
                X = encode(np.stack([genes_of[k] for k in m["keys"]]))
                Z = np.column_stack([self.level0[o]["model"].predict(X) for o in others])
                target = (m["y"] - m["mu"]) / m["sd"]
                best_mse = m["model"].loo_mse
                for variant, feats in (("others", Z), ("own+others", np.hstack([X, Z]))):
                    model = LooRidge(feats, target)
                    if model.loo_mse < best_mse:
                        best_mse = model.loo_mse
                        m.update(variant=variant, stack=model, rmse=math.sqrt(model.loo_mse), others=others)
            self.models[s] = m

    def __contains__(self, series: str) -> bool:
        return series in self.models

    def predict(self, genes: np.ndarray) -> Dict[str, Tuple[np.ndarray, float]]:
        """series -> (predicted mean per row, the std of its error) for the rows of ``genes``."""
        Xc = self.encode(genes)
        base = {s: m["model"].predict(Xc) for s, m in self.level0.items()}
        out = {}
        for s, m in self.models.items():
            if m["stack"] is None:
                z = base[s]
            else:
                Z = np.column_stack([base[o] for o in m["others"]])
                z = m["stack"].predict(Z if m["variant"] == "others" else np.hstack([Xc, Z]))
            out[s] = (z * m["sd"] + m["mu"], max(m["rmse"], 1e-3) * m["sd"])
        return out

    def loo_predictions(self, series: str) -> np.ndarray:
        m = self.models[series]
        return (m["stack"] or m["model"]).loo_predictions() * m["sd"] + m["mu"]

    def report(self) -> Dict[str, Dict[str, Any]]:
        # leave-one-out RMSE in units of the series' measured std
        return {s: {"inputs": m["variant"], "loo_rmse": round(m["rmse"], 4)} for s, m in self.models.items()}


def series_names(name: str, costs: Sequence[str]) -> List[str]:
    """A class with one cost is one series named like the class; with several, ``class/cost`` each."""
    return [name] if len(costs) == 1 else [f"{name}/{c}" for c in costs]
