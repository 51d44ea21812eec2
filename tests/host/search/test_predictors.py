"""Every predictor family fits, predicts a mean and a non-negative std; selection by held-out Kendall tau."""
from __future__ import annotations

import numpy as np
import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.predictors.base import Predictor, Uncertainty, kendall_tau, mape
from fleetnas.host.predictors.registry import DEFAULT_FAMILIES, PREDICTORS, make_predictor, predictor_class
from fleetnas.host.predictors.selection import select_and_fit


def _additive(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 12)) < 0.4).astype(float)
    weights = np.linspace(0.5, 3.0, 12)
    return X, X @ weights + 0.01 * rng.standard_normal(n)


@pytest.mark.parametrize("family", DEFAULT_FAMILIES)
def test_family_contract(family):
    X, y = _additive(60, 0)
    model = make_predictor(family, seed=0).fit(X[:40], y[:40])
    mean, std = model.predict(X[40:])
    assert mean.shape == std.shape == (20,) and np.all(std >= 0) and np.all(np.isfinite(mean))
    assert kendall_tau(y[40:], mean) > 0.5
    assert np.allclose(model.predict_mean(X[40:]), mean)
    again = make_predictor(family, seed=0).fit(X[:40], y[:40]).predict(X[40:])
    assert np.allclose(again[0], mean) and np.allclose(again[1], std)  # seeded


def test_selection_prefers_a_linear_model_on_an_additive_target():
    X, y = _additive(90, 1)
    selection = select_and_fit(X, y, families=("ridge", "trees"), n_folds=3, seed=0)
    assert selection.chosen == "ridge"
    assert selection.score_of("ridge").kendall_tau > selection.score_of("trees").kendall_tau
    assert selection.score_of("ridge").kendall_tau > 0.9


def test_metrics_and_errors():
    assert kendall_tau(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(1.0)
    assert mape(np.array([100.0, 200.0]), np.array([110.0, 180.0])) == pytest.approx(0.1)
    with pytest.raises(UsageError, match="unknown predictor 'bogus'; available: gp, mlp"):
        make_predictor("bogus")
    with pytest.raises(ValueError, match="at least 3 observations"):
        make_predictor("ridge").fit(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(RuntimeError, match="call fit"):
        make_predictor("gp").predict(np.zeros((1, 3)))


def test_svr_matrix_prediction_equals_libsvm():
    from sklearn.svm import SVR

    X, y = _additive(80, 2)
    ours = make_predictor("svr", seed=0, with_uncertainty=False).fit(X[:60], y[:60])
    z = (y[:60] - y[:60].mean()) / y[:60].std()  # predictors fit standardised targets
    reference = SVR(kernel="rbf", C=10.0, epsilon=0.02, gamma="scale").fit(X[:60], z)
    expected = reference.predict(X[60:]) * y[:60].std() + y[:60].mean()
    assert np.allclose(ours.predict_mean(X[60:]), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("family", DEFAULT_FAMILIES)
def test_each_family_says_what_uncertainty_it_gives(family):
    """A mean-only fit has a std unless the family's uncertainty needs extra (bootstrap) fits."""
    cls = predictor_class(family)
    assert issubclass(cls, Predictor) and cls.name == family
    X, y = _additive(40, 3)
    _, std = make_predictor(family, seed=0, with_uncertainty=False).fit(X[:30], y[:30]).predict(X[30:])
    if cls.uncertainty in (Uncertainty.BOOTSTRAP, Uncertainty.NONE):
        assert np.all(std == 0)
    else:
        assert cls.uncertainty in (Uncertainty.ENSEMBLE, Uncertainty.POSTERIOR) and np.any(std > 0)


def test_an_entry_point_plugs_in_a_predictor(monkeypatch):
    class MeanOnly(Predictor):
        name = "mean-only"

        def __init__(self, seed=0, with_uncertainty=True):
            super().__init__(seed)

        def _fit(self, X, y):
            self._w = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]

        def _predict(self, X):
            return np.c_[X, np.ones(len(X))] @ self._w, np.zeros(X.shape[0])

    class FakeEntryPoint:
        name = "mean-only"

        def load(self):
            return MeanOnly

    monkeypatch.setattr(PREDICTORS, "_installed", lambda: {"mean-only": FakeEntryPoint()})
    X, y = _additive(90, 1)
    selection = select_and_fit(X, y, families=("mean-only", "trees"), n_folds=3, seed=0)
    assert selection.chosen in ("mean-only", "trees") and MeanOnly.uncertainty == Uncertainty.NONE
    assert selection.score_of("mean-only").kendall_tau > 0.8  # scored like a built-in
