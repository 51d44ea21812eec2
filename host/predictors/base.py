"""The predictor contract and the quality metrics reported each round.

A predictor maps feature rows (a search space's encoding) to one objective: ``fit(X, y)`` then
``predict(X) -> (mean, std)``; ``std`` is the predictor's own uncertainty, and the class attribute ``uncertainty`` says
where it comes from (`Uncertainty`), so a tactic can plan its fits without knowing model families by name. Models are
seeded (``seed`` argument) so a search round is reproducible.

A model family registers under the ``fleetnas.predictors`` entry-point group (see `fleetnas.host.predictors.registry`)
with a constructor ``cls(seed=0, with_uncertainty=True, **tuned_options)``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, Tuple

import numpy as np
from scipy.stats import kendalltau


class Uncertainty:
    """Where a predictor's ``std`` comes from (the values of ``Predictor.uncertainty``)."""

    NONE = "none"            # std is always zero
    BOOTSTRAP = "bootstrap"  # extra replicas, fitted only with ``with_uncertainty=True`` (mean-only fits give 0)
    ENSEMBLE = "ensemble"    # spread of members every fit has anyway (e.g. the trees of a forest)
    POSTERIOR = "posterior"  # posterior standard deviation (e.g. a Gaussian process)


class Predictor(ABC):
    """fit(X, y) / predict(X) -> (mean, std). Subclasses fill ``_fit`` and ``_predict``; targets are standardised here."""

    name = "base"
    uncertainty = Uncertainty.NONE
    # True when fitting searches hyper-parameters that ``tuned_options()`` hands back for cheaper refits.
    tunes_hyperparameters = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self._y_mean = 0.0
        self._y_scale = 1.0
        self._fitted = False

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Predictor":
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).ravel()
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"fit needs X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
        if X.shape[0] < 3:
            raise ValueError(f"{self.name}: need at least 3 observations to fit, got {X.shape[0]}")
        self._y_mean = float(y.mean())
        self._y_scale = float(y.std()) or 1.0
        self._fit(X, (y - self._y_mean) / self._y_scale)
        self._fitted = True
        return self

    def predict(self, X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if not self._fitted:
            raise RuntimeError(f"{self.name}: call fit before predict")
        mean, std = self._predict(np.asarray(X, dtype=float))
        return mean * self._y_scale + self._y_mean, np.abs(std) * self._y_scale

    def predict_mean(self, X: np.ndarray) -> np.ndarray:
        """Mean only; subclasses may make this cheaper than ``predict`` (it runs inside the inner search)."""
        if not self._fitted:
            raise RuntimeError(f"{self.name}: call fit before predict")
        return self._predict_mean(np.asarray(X, dtype=float)) * self._y_scale + self._y_mean

    def _predict_mean(self, X: np.ndarray) -> np.ndarray:
        return self._predict(X)[0]

    def tuned_options(self) -> Dict[str, Any]:
        """Constructor options that reuse this fit's tuned hyper-parameters (no search) in a refit; {} if none."""
        return {}

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class PredictorScore:
    """Held-out quality of one model family on one objective (pooled out-of-fold predictions)."""

    model: str
    kendall_tau: float
    mape: float
    rmse: float
    cv_s: float  # wall time of this family's cross-validation


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return 0.0
    tau = kendalltau(y_true, y_pred).statistic
    return 0.0 if not np.isfinite(tau) else float(tau)


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error; denominators below 1 % of the value range are floored (near-zero latencies)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    floor = max(1e-12, 0.01 * float(np.ptp(y_true)))
    return float(np.mean(np.abs(y_pred - y_true) / np.maximum(np.abs(y_true), floor)))
