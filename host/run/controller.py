"""The search loop: propose (tactic) -> evaluate accuracy + export once per sub-network -> measure on the fleet -> tell.

One tactic and one history per device class: each class gets its own front and its own budget of candidates, while
accuracy and the exported model of a configuration are computed once and shared by every class that proposes it.
The loop runs on one thread (it owns the tactics, histories and the journal's candidate rows); the dispatcher's
workers measure in parallel and hand results back as they arrive, in any order, failed ones included.
Resume replays the journal: proposals and results go back into each history (and its tactic), proposals without a
result are dispatched again, and the measurement cache answers for anything measured before the interruption.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.devices import DeviceRegistry
from fleetnas.host.fleet.dispatcher import Dispatcher, Job, JobResult, RuntimeConfig
from fleetnas.host.fleet.measurements import Measurement, MeasurementStore
from fleetnas.host.run.journal import RunJournal, Subnet

log = logging.getLogger("fleetnas.host.run")
OBJECTIVE_COLUMNS = {"accuracy": ("accuracy", True), "latency": ("latency_ms", False), "energy": ("energy_mj", False)}


def parse_objectives(text: str) -> Tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OBJECTIVE_COLUMNS]
    if unknown or len(names) < 2 or names[0] != "accuracy" or len(set(names)) != len(names):
        raise UsageError(f"--objectives {text!r}: use accuracy,latency or accuracy,latency,energy")
    return names


@dataclass(frozen=True)
class SearchSettings:
    supernet: str
    objectives: Tuple[str, ...] = ("accuracy", "latency")
    budget: int = 20                  # candidates per device class
    seed: int = 0
    tactic: str = "linas"
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    inflight_per_device: int = 2      # keeps each agent busy while the next model is exported/uploaded

    def meta(self) -> Dict[str, Any]:
        d = asdict(self)
        d["runtime"] = self.runtime.key
        d.pop("inflight_per_device")
        return d


@dataclass
class ClassState:
    device_class: str
    tactic: Any
    history: Any
    inflight: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    proposed: int = 0
    exhausted: bool = False

    @property
    def finished(self) -> bool:
        return not self.inflight and self.exhausted


class SearchController:
    def __init__(self, settings: SearchSettings, supernet, registry: DeviceRegistry, journal: RunJournal,
                 cache: Optional[MeasurementStore] = None, *, resume: bool = False,
                 on_update: Optional[Callable[["SearchController"], None]] = None,
                 dispatcher_options: Optional[Dict[str, Any]] = None, export_dir: Optional[Path] = None) -> None:
        from fleetnas.host.search.pareto import Objective
        if settings.budget < 1:
            raise UsageError(f"--budget must be >= 1, got {settings.budget}")
        self.settings = settings
        self.supernet = supernet
        self.registry = registry
        self.journal = journal
        self.cache = cache
        self.on_update = on_update
        self.dispatcher_options = dispatcher_options or {}
        self.objectives = [Objective(*OBJECTIVE_COLUMNS[n]) for n in settings.objectives]
        self.models_dir = Path(export_dir) if export_dir else journal.run_dir / "models"
        self._weights_id = supernet.weights_id
        self.subnets: Dict[str, Subnet] = journal.subnets()
        self.dispatcher: Optional[Dispatcher] = None
        self.started = time.monotonic()
        self._check_meta(resume)
        self.classes = {c: self._new_class_state(c) for c in registry.classes}
        self.resubmit: List[Tuple[str, str]] = []
        if resume:
            self._replay()

    # ------------------------------------------------------------------ set-up
    def _check_meta(self, resume: bool) -> None:
        meta, wanted = self.journal.meta(), json.loads(json.dumps(self.settings.meta()))  # as stored: lists
        if meta and not resume:
            raise UsageError(f"{self.journal.run_dir} already holds a run: add --resume to continue it, or pick a new "
                             f"--out folder")
        if resume and not meta:
            raise UsageError(f"--resume: {self.journal.run_dir} holds no run to continue; drop --resume to start one")
        changed = sorted(k for k in wanted if k in meta and meta[k] != wanted[k] and k != "budget")
        if changed:
            raise UsageError(f"--resume with different settings ({', '.join(f'{k}: {meta[k]} -> {wanted[k]}' for k in changed)});"
                             f" resume with the original ones or start a new --out folder")
        self.journal.set_meta({**wanted, "classes": self.registry.classes,
                               "devices": {d.name: d.device_class for d in self.registry}})

    def _new_class_state(self, device_class: str) -> ClassState:
        from fleetnas.host.search.tactic import History, make_tactic
        try:
            tactic = make_tactic(self.settings.tactic, self.supernet.space, self.objectives, seed=self.settings.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return ClassState(device_class, tactic, History(self.supernet.space, self.objectives))

    def _replay(self) -> None:
        for c, state in self.classes.items():
            for cand in self.journal.candidates(c):
                state.history.add_pending(cand.config_key, self.supernet.space.config_from_key(cand.config_key))
                state.proposed += 1
            for m in self.journal.measurements_for(c):
                if m.config_key in state.history.pending:
                    self._tell_history(state, m)
            for key in state.history.pending:
                self.resubmit.append((c, key))
                state.inflight[key] = state.history.pending[key]

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        with Dispatcher(self.registry, self.settings.runtime, journal=self.journal.measurements, cache=self.cache,
                        **self.dispatcher_options) as dispatcher:
            self.dispatcher = dispatcher
            for c, key in self.resubmit:
                self._submit(c, key, self.classes[c].inflight[key])
            while not all(s.finished for s in self.classes.values()):
                for state in self.classes.values():
                    self._fill(state)
                for result in dispatcher.results(timeout_s=0.2):
                    self._on_result(result)
                if self.on_update:
                    self.on_update(self)
            if self.on_update:
                self.on_update(self)

    def _fill(self, state: ClassState) -> None:
        if state.exhausted:
            return
        capacity = self.settings.inflight_per_device * len(self.registry.by_class[state.device_class])
        want = min(self.settings.budget - state.proposed, capacity - len(state.inflight))
        if self.settings.budget - state.proposed <= 0:
            state.exhausted = True
            return
        if want <= 0:
            return
        configs = state.tactic.propose(want, state.history)
        if not configs and not state.inflight:
            state.exhausted = True   # the space (or the tactic) has nothing new left
            return
        for config in configs[:want]:
            key = self.supernet.key(config)
            state.history.add_pending(key, config)
            self.journal.add_candidate(state.device_class, key)
            state.proposed += 1
            state.inflight[key] = config
            self._submit(state.device_class, key, config)

    def subnet(self, key: str, config: Dict[str, Any]) -> Subnet:
        """Accuracy and the exported model, once per configuration for every device class (journaled)."""
        if key not in self.subnets:
            from fleetnas.host.export.onnx import export_onnx
            t0 = time.monotonic()
            accuracy = self.cache.lookup_accuracy(self.supernet.name, self._weights_id, key) if self.cache else None
            if accuracy is None:
                accuracy = float(self.supernet.accuracy(config))
                if self.cache is not None:
                    self.cache.add_accuracy(self.supernet.name, self._weights_id, key, accuracy)
            t1 = time.monotonic()
            exported = export_onnx(self.supernet, config, self.models_dir)
            t2 = time.monotonic()
            macs = params = None
            try:
                macs, params = int(self.supernet.macs(config)), int(self.supernet.params(config))
            except (NotImplementedError, AttributeError):
                pass
            self.subnets[key] = s = Subnet(key, accuracy, exported.sha256, str(exported.path), exported.size_bytes,
                                           macs, params, t1 - t0, t2 - t1)
            self.journal.add_subnet(s)
        return self.subnets[key]

    def _submit(self, device_class: str, key: str, config: Dict[str, Any]) -> None:
        s = self.subnet(key, config)
        self.dispatcher.submit(Job(device_class, Path(s.model_path), s.model_sha256, key))

    def objective_row(self, m: Measurement) -> Optional[np.ndarray]:
        """Raw objective values (accuracy, latency_ms[, energy_mj]) or None when the measurement is not usable."""
        if not m.usable or m.config_key not in self.subnets:
            return None
        values = {"accuracy": self.subnets[m.config_key].accuracy, "latency": m.latency_ms, "energy": m.energy_mj}
        row = [values[n] for n in self.settings.objectives]
        return None if any(v is None for v in row) else np.asarray(row, dtype=float)

    def _tell_history(self, state: ClassState, m: Measurement) -> None:
        from fleetnas.host.search.pareto import to_minimization
        row = self.objective_row(m)
        F = None if row is None else to_minimization(row[None, :], self.objectives)[0]
        state.history.add_result(m.config_key, F)
        state.tactic.observe(m.config_key, F, state.history)

    def _on_result(self, result: JobResult) -> None:
        state = self.classes[result.job.device_class]
        key = result.job.config_key
        if key not in state.inflight:
            return
        del state.inflight[key]
        self._tell_history(state, result.measurement)
        if not result.measurement.usable:
            log.warning("%s on %s: %s %s", key, result.measurement.device_name, result.measurement.outcome,
                        result.measurement.response.get("message", ""))
