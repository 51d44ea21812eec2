"""The search loop: ask (per device class) -> accuracy + export once per sub-network -> measure on the fleet -> tell.

One ``fleetnas.host.search.engine.Search`` per device class (its own tactic, front and budget), all in the run's one
store (fleetnas.host.store.run_store); accuracy and the exported model of a configuration are computed once and
shared by every class that proposes it. This thread owns the searches and the store; the dispatcher's workers
measure in parallel and hand results back as they arrive, in any order, failed ones included. The controller only
writes to the store; what it needs to know is read once, when the run is opened.
Resume: each Search replays its journal (same proposals, same tactic state); proposals without a result are
dispatched again, except that a measurement already journaled for one is told directly, and the measurement cache
answers for anything measured in an earlier run.
A run that fails before anything was sent to the fleet (bad tactic, data, weights) leaves no run folder behind.
With ``fleet_mode="joint"`` one search serves every class instead (fleetnas.host.run.fleet_loop): the loop is the
same, its four steps (start, fill, on_result, finished) come from the joint search.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from fleetnas.host.errors import FleetnasError, UsageError
from fleetnas.host.fleet.devices import DeviceRegistry
from fleetnas.host.fleet.dispatcher import Dispatcher, Job, JobResult, RuntimeConfig
from fleetnas.host.fleet.measurements import Measurement, MeasurementStore
from fleetnas.host.run.fleet_loop import JointLoop, check_fleet_mode
from fleetnas.host.run.host_work import (HostWork, InProcessHostWork, SubnetTask, SubnetWorkSpec, resolve_data,
                                         write_model_files)
from fleetnas.host.store.accuracy_cache import AccuracyCache
from fleetnas.host.store.caches import accuracy_cache_beside
from fleetnas.host.store.run_store import PendingTrial, RunStore, Subnet

log = logging.getLogger("fleetnas.host.run")
# objective on the command line -> (value name in the journal, maximise?)
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
    tactic_options: Tuple[Tuple[str, Any], ...] = ()   # e.g. (("n_init", 6),) for a short linas run
    data: str = ""                    # accuracy dataset as given (--data): image folder or module:callable
    fleet_mode: str = "independent"   # "joint": one search for every class (fleetnas.host.run.fleet_loop)
    validations: Optional[int] = None  # joint only: cap on accuracy evaluations for the whole run
    precision: str = "fp32"           # "int8": candidates exported, measured and evaluated as int8 models

    def run_settings(self, registry: DeviceRegistry, weights_id: str, weights_path: Optional[str]) -> Dict[str, Any]:
        return {"supernet": self.supernet, "weights": weights_id, "weights_path": weights_path,
                "data": self.data, "objectives": list(self.objectives),
                "seed": self.seed, "tactic": self.tactic, "tactic_options": dict(self.tactic_options),
                "budget": self.budget, "fleet_mode": self.fleet_mode, "validations": self.validations,
                "precision": self.precision,
                "runtime": json.loads(self.runtime.key),
                "classes": registry.classes, "devices": {d.name: d.device_class for d in registry}}


@dataclass
class ClassState:
    device_class: str
    search: Any                                    # fleetnas.host.search.engine.Search
    inflight: Dict[str, int] = field(default_factory=dict)   # config key -> trial id
    exhausted: bool = False

    @property
    def finished(self) -> bool:
        return self.search.finished or (self.exhausted and not self.inflight)


class SearchController:
    """``cache``: the measurement cache; the accuracy cache is kept in the same file unless ``accuracy_cache`` is
    given. ``resume``: continue the run in ``run_dir`` (its settings must match). ``host_work``: builds where
    sub-networks are extracted, exported and evaluated (default: in this process)."""

    def __init__(self, settings: SearchSettings, supernet, registry: DeviceRegistry, run_dir: Path,
                 cache: Optional[MeasurementStore] = None, *, resume: bool = False,
                 on_update: Optional[Callable[["SearchController"], None]] = None,
                 dispatcher_options: Optional[Dict[str, Any]] = None, export_dir: Optional[Path] = None,
                 accuracy_cache: Optional[AccuracyCache] = None,
                 host_work: Optional[Callable[[SubnetWorkSpec], HostWork]] = None) -> None:
        from fleetnas.host.search.pareto import Objective
        if settings.budget < 1:
            raise UsageError(f"--budget must be >= 1, got {settings.budget}")
        check_fleet_mode(settings)
        self.settings = settings
        self.supernet = supernet
        self.registry = registry
        self.run_dir = Path(run_dir)
        self.cache = cache
        self.on_update = on_update
        self.dispatcher_options = dispatcher_options or {}
        self.objectives = [Objective(*OBJECTIVE_COLUMNS[n]) for n in settings.objectives]
        self.models_dir = Path(export_dir) if export_dir else self.run_dir / "models"
        self._weights_id = supernet.weights_id
        # accuracy cache entries are only shared between runs that evaluate on the same data
        self._accuracy_id = self._weights_id + (f"|data:{settings.data}" if settings.data else "")
        self._data = resolve_data(settings.data)   # a wrong --data fails here, before the run folder is made
        self._host_work_factory = host_work
        self.host_work: Optional[HostWork] = None        # opened with the dispatcher (it knows the model format)
        self._waiting: Dict[str, List[Callable[[Subnet], None]]] = {}   # key -> what runs once it is ready
        self._own_accuracy_cache = accuracy_cache is None and cache is not None
        self.accuracy_cache = accuracy_cache   # default: opened below, in the measurement cache's file
        self.dispatcher: Optional[Dispatcher] = None
        self.started = time.monotonic()
        self._dispatched_any = False   # until then a failed start leaves nothing behind
        self.discarded = False
        self.resumed = resume
        path = getattr(supernet, "weights_path", None)
        wanted = settings.run_settings(registry, self._weights_id, str(path) if path else None)
        # a changed search space (new super-network code) is checked with the other settings, in one error
        self.store = (RunStore.resume(self.run_dir, wanted, registry.classes, {"space": supernet.space.describe()})
                      if resume else RunStore.create(self.run_dir, wanted))
        try:
            if self._own_accuracy_cache:
                self.accuracy_cache = accuracy_cache_beside(cache)
            self.subnets: Dict[str, Subnet] = self.store.subnets()      # computed before an interruption
            self._pending: Dict[int, PendingTrial] = {}
            self.joint: Optional[JointLoop] = None
            if settings.fleet_mode == "joint":
                self.joint = JointLoop(self)
                self.classes = self.joint.views
            else:
                self.classes = {c: self._open_class(c) for c in registry.classes}
                for c in registry.classes:
                    self._pending.update(self.store.pending(c))
        except BaseException:
            self._close(discard=not resume)
            raise
        self.subnets_reused = len(self.subnets)

    def close(self) -> None:
        if not self.discarded:     # a failed start removed the run folder already
            self._close(discard=False)

    def _close(self, discard: bool) -> None:
        if discard:
            self.store.discard()
            self.discarded = True
        else:
            self.store.close()
        if self._own_accuracy_cache and self.accuracy_cache is not None:
            self.accuracy_cache.close()
            self.accuracy_cache = None

    # ------------------------------------------------------------------ set-up
    def _open_class(self, device_class: str) -> ClassState:
        from fleetnas.host.search.engine import Search
        try:
            search = Search(self.supernet.space, self.objectives, tactic=self.settings.tactic, seed=self.settings.seed,
                            budget=self.settings.budget, journal=self.store.journal, run=device_class,
                            resume=self.resumed, tactic_options=dict(self.settings.tactic_options))
        except (ValueError, FleetnasError) as exc:
            raise UsageError(f"device class {device_class}: {exc}") from None
        return ClassState(device_class, search)

    def resume_summary(self) -> str:
        """One line: what a resumed run picked up."""
        if self.joint is not None:
            return f"resuming {self.run_dir}: {self.joint.resume_summary()}"
        parts = []
        for c, state in self.classes.items():
            s = state.search
            failed = s.n_proposed - s.n_evaluated - s.n_pending
            parts.append(f"{c} {s.n_evaluated} done, {failed} failed, {s.n_pending} pending")
        return (f"resuming {self.run_dir}: {'; '.join(parts)}; {self.subnets_reused} sub-network(s) reused "
                f"(accuracy and exported model){''.join('; ' + note for note in self.store.notes)}")

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """The loop until every class is finished. If it fails before anything was sent to the fleet, a new run's
        folder is removed (and the store closed): the corrected command starts afresh."""
        try:
            self._loop()
        except BaseException:
            if not self.resumed and not self._dispatched_any:
                self._close(discard=True)
            raise

    def _loop(self) -> None:
        with Dispatcher(self.registry, self.settings.runtime, cache=self.cache, run_uid=self.store.run_uid,
                        **self.dispatcher_options) as dispatcher:
            self.dispatcher = dispatcher
            self.host_work = self._open_host_work()
            try:
                steps = self.joint if self.joint is not None else self
                steps.start()
                while not steps.finished or self._waiting:
                    steps.fill()
                    self.collect_subnets()
                    for result in dispatcher.results(timeout_s=0.2):
                        steps.on_result(result)
                    if self.on_update:
                        self.on_update(self)
            finally:
                self.host_work.close()
            if self.on_update:
                self.on_update(self)

    # independent searches, one per class (a joint search has the same four steps in fleetnas.host.run.fleet_loop)
    def start(self) -> None:
        for state in self.classes.values():
            for p in state.search.pending():    # after a resume
                self._dispatch(state, p)

    @property
    def finished(self) -> bool:
        return all(s.finished for s in self.classes.values())

    def fill(self) -> None:
        for state in self.classes.values():
            self._fill(state)

    def on_result(self, result: JobResult) -> None:
        self._on_result(result)

    def _fill(self, state: ClassState) -> None:
        if state.finished or state.exhausted:
            return
        capacity = self.settings.inflight_per_device * len(self.registry.by_class[state.device_class])
        want = min(state.search.budget_left or 0, capacity - len(state.inflight))
        if want <= 0:
            return
        proposals = state.search.ask(want)
        if not proposals and not state.inflight:
            state.exhausted = True   # the space (or the tactic) has nothing new left
        for p in proposals:
            self._dispatch(state, p)

    def _dispatch(self, state: ClassState, proposal) -> None:
        resumed = self._pending.pop(proposal.trial_id, None)
        state.inflight[proposal.key] = proposal.trial_id
        self.with_subnet(proposal.key, proposal.config,
                         lambda subnet: self._dispatch_ready(state, proposal, subnet, resumed))

    def _dispatch_ready(self, state: ClassState, proposal, subnet: Subnet, resumed: Optional[PendingTrial]) -> None:
        if resumed is not None and resumed.measurement is not None:   # measured before an interruption, not told
            self._tell(state, proposal.key, resumed.measurement, already_journaled=True)
            return
        self.submit(state.device_class, proposal.trial_id, subnet, resumed)

    def submit(self, device_class: str, trial_id: int, subnet: Subnet, resumed: Optional[PendingTrial]) -> None:
        """A measurement of ``subnet`` on ``device_class`` to the fleet. A trial sent by a host that died may have its
        measurement on an agent: the dispatcher asks for it first (recover)."""
        recover = resumed is not None and resumed.dispatched
        if not recover:
            self.store.mark_dispatched(trial_id)
        self._dispatched_any = True
        self.dispatcher.submit(Job(device_class, Path(subnet.model_path), subnet.model_sha256, subnet.config_key,
                                   recover=recover))

    def failure_reason(self, key: str, m: Measurement) -> str:
        reason = m.response.get("message") or m.outcome
        if m.usable and "energy_mj" in [o.name for o in self.objectives]:
            reason = f"no energy measured: {m.response.get('energy_unavailable_reason') or 'no sensor'}"
        log.warning("%s on %s: %s %s", key, m.device_name, m.outcome, reason)
        return f"{m.outcome} on {m.device_name}: {reason}"

    def with_subnet(self, key: str, config: Dict[str, Any], then: Callable[[Subnet], None]) -> None:
        """``then(subnet)`` once the accuracy and exported model of ``key`` are ready: at once when they are known,
        else from `collect_subnets`. Computed once per configuration for every device class (and across runs)."""
        if key in self.subnets:
            then(self.subnets[key])
            return
        waiting = self._waiting.setdefault(key, [])
        waiting.append(then)
        if len(waiting) == 1:
            cache = self.accuracy_cache
            accuracy = cache.lookup(self.supernet.name, self._accuracy_id, key) if cache else None
            self.host_work.submit(SubnetTask(key, dict(config), accuracy))

    def collect_subnets(self) -> None:
        """The sub-networks finished since the last call: journaled, then what waited for them runs."""
        for r in self.host_work.results():
            path = write_model_files(r, self.models_dir)
            if r.evaluated and self.accuracy_cache is not None:
                self.accuracy_cache.add(self.supernet.name, self._accuracy_id, r.key, r.accuracy)
            # with --precision int8 the objective is the int8 model's accuracy, not the float network's
            subnet = Subnet(r.key, r.deployed_accuracy, r.model_sha256, str(path), r.size_bytes, r.macs, r.params,
                            r.accuracy_s, r.export_s, r.accuracy, r.int8_accuracy, r.accuracy_model)
            self.subnets[r.key] = subnet
            self.store.add_subnet(subnet)
            for then in self._waiting.pop(r.key, []):
                then(subnet)

    def _open_host_work(self) -> HostWork:
        """Where sub-networks are worked on; exported in the model format the boards load with the run's runtime."""
        from fleetnas.host.export.registry import exporter_for
        exporter = exporter_for(self.dispatcher.model_formats(), self.settings.runtime.runtime,
                                self.settings.precision)
        path = getattr(self.supernet, "weights_path", None)
        spec = SubnetWorkSpec(self.supernet.name, self._weights_id, str(path) if path else None, self.settings.data,
                              exporter.format, self.settings.precision, export_dir=str(self.models_dir),
                              accuracy_id=self._accuracy_id)
        if self._host_work_factory is not None:
            return self._host_work_factory(spec)
        # in this process the deployed (int8) accuracies are looked up in and added to the accuracy cache directly
        return InProcessHostWork(spec, self.supernet, accuracy_cache=self.accuracy_cache)

    def objective_values(self, key: str, m: Measurement) -> Optional[Dict[str, float]]:
        if not m.usable:
            return None
        values = {"accuracy": self.subnets[key].accuracy if key in self.subnets else None,
                  "latency_ms": m.latency_ms, "energy_mj": m.energy_mj}
        names = [o.name for o in self.objectives]
        if any(values[n] is None for n in names):
            return None
        return {n: float(values[n]) for n in names}

    def _tell(self, state: ClassState, key: str, m: Measurement, already_journaled: bool = False) -> None:
        trial_id = state.inflight.pop(key)
        values = self.objective_values(key, m)
        if values is None:
            state.search.fail(trial_id, self.failure_reason(key, m))
            return
        if not already_journaled:
            self.store.add_measurement(trial_id, m)
        state.search.tell(trial_id, values)

    def _on_result(self, result: JobResult) -> None:
        state = self.classes[result.job.device_class]
        if result.job.config_key in state.inflight:
            self._tell(state, result.job.config_key, result.measurement)
