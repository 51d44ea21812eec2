"""Fronts from a run's journal alone (so a replay of the journal gives the same fronts as the live run).

Per device class: every evaluated point (configuration, accuracy, measured statistics, provenance), the Pareto front
over the run's objectives, and the hypervolume after each evaluation (in the order results were journaled).
Hypervolume uses the minimisation form (1 - accuracy, latency_ms[, energy_mj]) with a reference point of 1.0 for
accuracy and 1.1 x the worst value the class saw for the others, so it is comparable along one run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from fleetnas.host.store.run_store import RunStore

_COLUMN = {"accuracy": "accuracy", "latency": "latency_ms", "energy": "energy_mj"}


@dataclass(frozen=True)
class Point:
    config_key: str
    accuracy: float
    latency_ms: float
    energy_mj: Optional[float]
    outcome: str
    device_name: str
    source: str
    emulated: bool
    model_sha256: str
    macs: Optional[int]
    params: Optional[int]
    measurement: Dict[str, Any]      # the whole MeasureResponse: every statistic and its provenance
    replayed: bool = False           # answered from an agent's memory of the run's request, not measured for it
    float_accuracy: Optional[float] = None   # the float network's (``accuracy`` is the int8 model's at int8)
    int8_accuracy: Optional[float] = None    # the deployed int8 model's (None: an fp32 run)
    accuracy_model: Optional[str] = None     # which model ``accuracy`` was evaluated on

    @property
    def accuracy_drop(self) -> Optional[float]:
        """Float minus int8 accuracy (positive: quantization cost accuracy); None for fp32 models."""
        if self.int8_accuracy is None or self.float_accuracy is None:
            return None
        return self.float_accuracy - self.int8_accuracy

    @property
    def config(self) -> Dict[str, Any]:
        return json.loads(self.config_key)

    @property
    def stability(self) -> str:
        """The agent's verdict on the latency: STABLE, NOISY, UNSTABLE ("" when it gave none, e.g. a replayed table)."""
        text = str(self.measurement.get("stability", "")).replace("STABILITY_", "")
        return "" if text == "UNSPECIFIED" else text

    @property
    def block_median_cv(self) -> Optional[float]:
        """Coefficient of variation of the block medians (a fraction): what the stability verdict is based on."""
        cv = self.measurement.get("block_median_cv")
        return None if cv is None else float(cv)

    def value(self, objective: str) -> Optional[float]:
        return getattr(self, _COLUMN[objective])

    def row(self) -> Dict[str, Any]:
        """Flat values for CSV: configuration parameters, objectives, main statistics, provenance."""
        r = self.measurement
        overall, config = r.get("overall") or {}, r.get("config") or {}
        out: Dict[str, Any] = dict(self.config)
        out.update(accuracy=self.accuracy, latency_ms=self.latency_ms, energy_mj=self.energy_mj,
                   latency_p90_ms=overall.get("p90_ms"), latency_min_ms=overall.get("min_ms"),
                   latency_std_ms=overall.get("std_ms"), runs=overall.get("n"),
                   block_median_cv=r.get("block_median_cv"), outcome=self.outcome,
                   stability=str(r.get("stability", "")).replace("STABILITY_", ""),
                   emulated=self.emulated, device=self.device_name, device_id=r.get("device_id"),
                   runtime=config.get("runtime"), runtime_version=config.get("runtime_version"),
                   threads=config.get("intra_op_threads"), source=self.source, replayed=self.replayed,
                   model_sha256=self.model_sha256, macs=self.macs, params=self.params, config=self.config_key)
        if self.int8_accuracy is not None:
            out.update(float_accuracy=self.float_accuracy, int8_accuracy=self.int8_accuracy,
                       accuracy_drop=self.accuracy_drop, accuracy_model=self.accuracy_model)
        return out


@dataclass(frozen=True)
class ClassFront:
    device_class: str
    objectives: Tuple[str, ...]
    points: Tuple[Point, ...]         # every usable evaluation, in journal order
    front: Tuple[Point, ...]          # non-dominated points, by latency
    failed: int                       # evaluations without usable numbers
    errors: Tuple[str, ...]           # why they failed (distinct messages, first seen first)
    measurements: int                 # measurements behind the points (measured + from the cache)
    measured: int                     # of which measured on a board in this run
    hv_curve: Tuple[float, ...]       # hypervolume after each point
    reference: Tuple[float, ...]

    def objective_matrix(self, points=None) -> np.ndarray:
        pts = self.points if points is None else points
        return np.array([[p.value(o) for o in self.objectives] for p in pts], dtype=float).reshape(len(pts), -1)


def minimization(F: np.ndarray) -> np.ndarray:
    """(accuracy, others...) -> (1 - accuracy, others...)."""
    G = np.array(F, dtype=float, copy=True)
    if len(G):
        G[:, 0] = 1.0 - G[:, 0]
    return G


def class_front(store: RunStore, device_class: str, objectives: Tuple[str, ...]) -> ClassFront:
    from fleetnas.host.search.pareto import hypervolume, non_dominated_mask
    trials = store.class_trials(device_class)
    points, failed, errors = [], 0, []
    for t in trials:
        if t.state == "failed":
            failed += 1
            if t.error and t.error not in errors:
                errors.append(t.error)
        if t.state != "done" or t.measurement is None or t.subnet is None:
            continue
        m, s = t.measurement, t.subnet
        points.append(Point(t.config_key, t.values["accuracy"], float(t.values["latency_ms"]),
                            t.values.get("energy_mj", m.energy_mj), m.outcome, m.device_name, m.source, m.emulated,
                            m.model_sha256, s.macs, s.params, m.response, m.replayed, s.float_accuracy,
                            s.int8_accuracy, s.accuracy_model))
    F = minimization(np.array([[p.value(o) for o in objectives] for p in points], dtype=float).reshape(
        len(points), len(objectives)))
    reference = (1.0,) + tuple(1.1 * float(F[:, j].max()) if len(F) else 1.0 for j in range(1, len(objectives)))
    curve = tuple(hypervolume(F[: i + 1], reference) for i in range(len(F)))
    mask = non_dominated_mask(F) if len(F) else np.zeros(0, dtype=bool)
    front = sorted((p for p, keep in zip(points, mask) if keep), key=lambda p: (p.latency_ms, -p.accuracy))
    measured = sum(1 for p in points if p.source == "measured")
    return ClassFront(device_class, objectives, tuple(points), tuple(front), failed, tuple(errors), len(points),
                      measured, curve, reference)


def run_fronts(run_dir) -> Dict[str, ClassFront]:
    with RunStore.open(run_dir) as store:
        objectives = tuple(store.settings.get("objectives") or ("accuracy", "latency"))
        return {c: class_front(store, c, objectives) for c in store.settings["classes"]}
