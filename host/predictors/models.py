"""scikit-learn model families behind the `Predictor` contract, each with its own uncertainty.

| name    | model                                   | std from                                     |
|---------|-----------------------------------------|----------------------------------------------|
| ridge   | RidgeCV (alpha by efficient LOO)        | spread of a small bootstrap ensemble         |
| svr     | RBF SVR                                 | spread of a small bootstrap ensemble         |
| trees   | ExtraTrees                              | spread of the per-tree predictions           |
| mlp     | small MLP (lbfgs)                       | spread of an ensemble of differently seeded nets |
| gp      | Gaussian process, Matern + white noise  | posterior standard deviation                 |

Bootstrap ensembles are only built by ``fit(..., with_uncertainty=True)`` on the chosen model: cross-validation needs
the mean only, which keeps the per-round host overhead small. They are registered by name in
`fleetnas.host.predictors.registry`.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Tuple

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import RidgeCV
from sklearn.neural_network import MLPRegressor
from sklearn.svm import SVR

from fleetnas.host.predictors.base import Predictor, Uncertainty


class _EnsemblePredictor(Predictor):
    """One model for the mean plus (optionally) bootstrap replicas whose spread is the std."""

    n_members = 5
    uncertainty = Uncertainty.BOOTSTRAP

    def __init__(self, seed: int = 0, with_uncertainty: bool = True) -> None:
        super().__init__(seed)
        self.with_uncertainty = with_uncertainty
        self._main = None
        self._members: List = []

    def _make(self, seed: int):
        raise NotImplementedError

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._main = self._make(self.seed).fit(X, y)
        self._members = []
        if self.with_uncertainty:
            rng = np.random.default_rng(self.seed)
            for k in range(self.n_members):
                idx = rng.integers(0, X.shape[0], X.shape[0])
                self._members.append(self._make(self.seed + 1 + k).fit(X[idx], y[idx]))

    def _predict_mean(self, X: np.ndarray) -> np.ndarray:
        return self._main.predict(X)

    def _predict(self, X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        mean = self._main.predict(X)
        if not self._members:
            return mean, np.zeros_like(mean)
        preds = np.stack([m.predict(X) for m in self._members])
        # Spread of the replicas around the main fit (not their own mean): bias of a replica counts as uncertainty.
        return mean, np.sqrt(np.mean((preds - mean) ** 2, axis=0))


class RidgePredictor(_EnsemblePredictor):
    name = "ridge"
    n_members = 8

    def _make(self, seed: int):
        return RidgeCV(alphas=np.logspace(-3, 3, 13))


class _RBFSVR:
    """sklearn's RBF SVR, predicting with one matrix product: libsvm's own predict walks the support vectors row by
    row, which made SVR prediction over a search pool (thousands of rows, six models) most of a round."""

    def __init__(self) -> None:
        self._svr = SVR(kernel="rbf", C=10.0, epsilon=0.02, gamma="scale")

    def fit(self, X: np.ndarray, y: np.ndarray) -> "_RBFSVR":
        self._svr.fit(X, y)
        self._sv = np.asarray(self._svr.support_vectors_, dtype=float)
        self._sv_sq = np.einsum("ij,ij->i", self._sv, self._sv)
        self._coef = np.asarray(self._svr.dual_coef_, dtype=float).ravel()
        self._intercept = float(np.ravel(self._svr.intercept_)[0])
        self._gamma = float(self._svr._gamma)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self._sv.shape[0] == 0:
            return np.full(X.shape[0], self._intercept)
        sq = np.einsum("ij,ij->i", X, X)[:, None] + self._sv_sq[None, :] - 2.0 * (X @ self._sv.T)
        return np.exp(-self._gamma * np.maximum(sq, 0.0)) @ self._coef + self._intercept


class SVRPredictor(_EnsemblePredictor):
    name = "svr"

    def _make(self, seed: int):
        return _RBFSVR()


class MLPPredictor(_EnsemblePredictor):
    name = "mlp"
    n_members = 3

    def _make(self, seed: int):
        return MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", alpha=1e-2, max_iter=60, random_state=seed)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            super()._fit(X, y)


class TreesPredictor(Predictor):
    name = "trees"
    uncertainty = Uncertainty.ENSEMBLE

    def __init__(self, seed: int = 0, with_uncertainty: bool = True, n_trees: int = 40) -> None:
        super().__init__(seed)
        self.n_trees = n_trees
        self._model = None

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._model = ExtraTreesRegressor(n_estimators=self.n_trees, min_samples_leaf=2, max_features=0.7,
                                          random_state=self.seed, n_jobs=1).fit(X, y)

    def _predict_mean(self, X: np.ndarray) -> np.ndarray:
        return self._model.predict(X)

    def _predict(self, X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        preds = np.stack([t.predict(X) for t in self._model.estimators_])
        return preds.mean(axis=0), preds.std(axis=0)


class GPPredictor(Predictor):
    name = "gp"
    uncertainty = Uncertainty.POSTERIOR
    tunes_hyperparameters = True
    max_points = 300  # exact GP is cubic in n: beyond this, fit on the most recent observations

    def __init__(self, seed: int = 0, with_uncertainty: bool = True, kernel=None) -> None:
        super().__init__(seed)
        self._model = None
        self.kernel = kernel  # a fitted kernel: reused as is (no hyper-parameter search), e.g. across CV folds

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = X[-self.max_points:], y[-self.max_points:]
        if self.kernel is not None:
            self._model = GaussianProcessRegressor(kernel=self.kernel, optimizer=None).fit(X, y)
            return
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=2.0, length_scale_bounds=(0.1, 50.0), nu=2.5) \
            + WhiteKernel(0.05, (1e-4, 1.0))
        self._model = GaussianProcessRegressor(kernel=kernel, normalize_y=False, n_restarts_optimizer=0,
                                               random_state=self.seed).fit(X, y)
        self.kernel = self._model.kernel_

    def tuned_options(self) -> Dict[str, Any]:
        return {"kernel": self.kernel}

    def _predict_mean(self, X: np.ndarray) -> np.ndarray:
        return self._model.predict(X)

    def _predict(self, X: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        mean, std = self._model.predict(X, return_std=True)
        return mean, std

