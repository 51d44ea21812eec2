"""Model selection by cross-validation: every round, each family is scored on held-out folds and the best is refitted.

``select_and_fit(X, y, families, n_folds, seed)`` returns a `Selection`: the refitted predictor (with its uncertainty)
and one `PredictorScore` per family (Kendall tau, MAPE, RMSE on pooled out-of-fold predictions, fit time). The
criterion is Kendall tau (a search needs the ranking right more than the values), RMSE breaking ties.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from fleetnas.host.predictors.base import Predictor, PredictorScore, kendall_tau, mape
from fleetnas.host.predictors.registry import DEFAULT_FAMILIES, PREDICTORS, make_predictor, predictor_class


@dataclass(frozen=True)
class Selection:
    predictor: Predictor
    chosen: str
    scores: Tuple[PredictorScore, ...]
    holdout_rmse: float

    def score_of(self, name: str) -> PredictorScore:
        return next(s for s in self.scores if s.model == name)


def fold_indices(n: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold id per observation: a seeded shuffle, as balanced as possible."""
    fold = np.arange(n) % n_folds
    np.random.default_rng(seed).shuffle(fold)
    return fold


def cross_validate(name: str, X: np.ndarray, y: np.ndarray, n_folds: int, seed: int,
                   options: Optional[Dict] = None) -> PredictorScore:
    """Pooled out-of-fold score of one family; ``options`` receives what the final refit may reuse (a GP kernel)."""
    fold = fold_indices(X.shape[0], n_folds, seed)
    out = np.empty_like(y, dtype=float)
    start = time.perf_counter()
    options = {} if options is None else options
    if predictor_class(name).tunes_hyperparameters:
        # Hyper-parameters are searched once on all the data; the folds reuse them (a GP fit is cubic in n).
        options.update(make_predictor(name, seed=seed).fit(X, y).tuned_options())
    for k in range(n_folds):
        test = fold == k
        model = make_predictor(name, seed=seed + k, with_uncertainty=False, **options).fit(X[~test], y[~test])
        out[test] = model.predict_mean(X[test])
    elapsed = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((out - y) ** 2)))
    return PredictorScore(model=name, kendall_tau=kendall_tau(y, out), mape=mape(y, out), rmse=rmse, cv_s=elapsed)


def select_and_fit(
    X: np.ndarray,
    y: np.ndarray,
    families: Sequence[str] = DEFAULT_FAMILIES,
    n_folds: int = 3,
    seed: int = 0,
) -> Selection:
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).ravel()
    unknown = [f for f in families if f not in PREDICTORS]
    if unknown or not families:
        raise ValueError(f"unknown predictor famil(ies) {unknown}; choose from {PREDICTORS.names()}")
    n_folds = max(2, min(n_folds, X.shape[0] // 3))
    options: Dict[str, Dict] = {name: {} for name in families}
    scores = tuple(cross_validate(name, X, y, n_folds, seed, options[name]) for name in families)
    best = max(scores, key=lambda s: (round(s.kendall_tau, 3), -s.rmse))
    predictor = make_predictor(best.model, seed=seed, with_uncertainty=True, **options[best.model]).fit(X, y)
    return Selection(predictor=predictor, chosen=best.model, scores=scores, holdout_rmse=best.rmse)
