"""Predictor families by name: the built-ins of `fleetnas.host.predictors.models` plus any package's
``fleetnas.predictors`` entry points (a class following `fleetnas.host.predictors.base.Predictor`)."""
from __future__ import annotations

from typing import Any, Type

from fleetnas.host.plugins import Registry
from fleetnas.host.predictors.base import Predictor

PREDICTORS = Registry("fleetnas.predictors", {
    "ridge": "fleetnas.host.predictors.models:RidgePredictor",
    "svr": "fleetnas.host.predictors.models:SVRPredictor",
    "trees": "fleetnas.host.predictors.models:TreesPredictor",
    "mlp": "fleetnas.host.predictors.models:MLPPredictor",
    "gp": "fleetnas.host.predictors.models:GPPredictor",
}, "predictor")

# What linas scores every round unless told otherwise.
DEFAULT_FAMILIES = ("ridge", "svr", "trees", "mlp", "gp")


def predictor_class(name: str) -> Type[Predictor]:
    return PREDICTORS.load(name)


def make_predictor(name: str, seed: int = 0, with_uncertainty: bool = True, **options: Any) -> Predictor:
    return predictor_class(name)(seed=seed, with_uncertainty=with_uncertainty, **options)
