"""A joint search over the fleet (``fleetnas search --fleet-mode joint``): one `FleetSearch` for every device class.

Accuracy is evaluated once per sub-network and serves every class; each class's costs (latency, or latency and energy
with ``--objectives accuracy,latency,energy``) are measured on that class's boards. The controller's loop calls the
same four steps as for independent searches: ``start``, ``fill``, ``on_result`` and ``finished``.

Journal: each class's trials and results are in the class's own journal run (so reports read joint and independent
runs alike), and every call made to the search is logged in order (journal table ``fleet_calls``). Resume builds a
fresh search with the same seed and replays those calls: every ``ask`` must propose what it proposed before. Then
what was outstanding is finished: a validation asked for and not told is evaluated (or read back), a measurement
journaled but not told is told, one sent by the host that died is recovered from the agent, the rest sent again.
Devices of a class the run did not have join it here: the search adds the class and measures only for it, reusing
every validation and every other class's measurements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from fleetnas.host.errors import UsageError
from fleetnas.host.search.engine import Evaluation
from fleetnas.host.search.pareto import Objective, non_dominated_mask, to_minimization

FLEET_MODES = ("independent", "joint")
# the joint search picks its accuracy model by 3-fold cross-validation, which needs 3 points in each training fold
MIN_VALIDATIONS = 6


def check_fleet_mode(settings) -> None:
    """The fleet mode's settings, checked before the run folder is made."""
    if settings.fleet_mode not in FLEET_MODES:
        raise UsageError(f"--fleet-mode {settings.fleet_mode!r}: use one of {', '.join(FLEET_MODES)}")
    if settings.fleet_mode != "joint":
        if settings.validations is not None:
            raise UsageError("--validations caps a joint search: add --fleet-mode joint (independent searches "
                             "evaluate the accuracy of what each one measures)")
        return
    if len(settings.objectives) not in (2, 3):
        raise UsageError(f"--fleet-mode joint searches accuracy and one or two costs per class, not "
                         f"{','.join(settings.objectives)}: use --objectives accuracy,latency or "
                         f"accuracy,latency,energy, or --fleet-mode independent")
    if settings.validations is not None and settings.validations < MIN_VALIDATIONS:
        raise UsageError(f"--validations must be >= {MIN_VALIDATIONS} (the accuracy model needs them), got "
                         f"{settings.validations}")
    from fleetnas.host.search.fleet import FleetOptions   # lazy: numpy and the predictors
    from fleetnas.host.search.options import from_mapping
    # unknown or invalid --tactic-option values fail here, in one line naming the valid options
    options = from_mapping(FleetOptions, dict(settings.tactic_options), "the joint fleet search")
    if len(settings.objectives) == 3 and options.acquisition == "ehvi":
        raise UsageError("--tactic-option acquisition=\"ehvi\" takes one cost per class: drop it (the default "
                         "\"pnd\" searches accuracy, latency and energy) or search accuracy,latency")
    if options.n_init < MIN_VALIDATIONS:
        raise UsageError(f"--tactic-option n_init={options.n_init}: the joint search starts with at least "
                         f"{MIN_VALIDATIONS} validated sub-networks")


def _cap(validations: Optional[int]) -> str:
    return "no cap" if validations is None else str(validations)


@dataclass
class ClassProgress:
    """One class of a joint search as the progress display and the resume summary read it (the same attributes as
    an independent class's state and `Search`)."""
    device_class: str
    budget: int
    objectives: Tuple[Objective, ...]
    space: Any
    evaluated: Dict[str, Evaluation] = field(default_factory=dict)   # key -> evaluation, in result order
    inflight: Dict[str, int] = field(default_factory=dict)           # key -> trial id, asked and not told
    n_failed: int = 0
    stalled: bool = False          # the joint search has nothing more to propose

    @property
    def search(self) -> "ClassProgress":
        return self

    @property
    def n_evaluated(self) -> int:
        return len(self.evaluated)

    @property
    def n_pending(self) -> int:
        return len(self.inflight)

    @property
    def n_proposed(self) -> int:
        return self.n_evaluated + self.n_failed + self.n_pending

    @property
    def left(self) -> int:
        return max(0, self.budget - self.n_proposed)

    @property
    def finished(self) -> bool:
        return not self.inflight and (self.left == 0 or self.stalled)

    def front(self) -> List[Evaluation]:
        evaluated = list(self.evaluated.values())
        if not evaluated:
            return []
        F = to_minimization([[e.values[o.name] for o in self.objectives] for e in evaluated], self.objectives)
        return [e for e, keep in zip(evaluated, non_dominated_mask(F)) if keep]

    def told(self, trial_id: int, key: str, values: Dict[str, float]) -> None:
        self.inflight.pop(key, None)
        self.evaluated[key] = Evaluation(trial_id, key, self.space.config_from_key(key), dict(values))

    def failed(self, key: str) -> None:
        self.inflight.pop(key, None)
        self.n_failed += 1


@dataclass(frozen=True)
class _Asked:
    key: str
    validate: bool
    trial_ids: Dict[str, int]     # class -> trial id


class JointLoop:
    """The joint search of a `SearchController` (``controller``: its store, sub-networks, dispatcher and settings)."""

    def __init__(self, controller) -> None:
        from fleetnas.host.search.fleet import FleetSearch   # lazy: sklearn and the predictors
        self.controller = c = controller
        self.store = c.store
        self.space = c.supernet.space
        self.accuracy, *self.costs = c.objectives
        settings = c.settings
        # the cap the run started with: its journal replays under it, and under each change a resume made
        started_cap, _ = self.store.validation_caps()
        try:
            self.fleet = FleetSearch(self.space, self.accuracy, [], seed=settings.seed, budget=settings.budget,
                                     max_validations=started_cap, **dict(settings.tactic_options))
        except ValueError as exc:
            raise UsageError(f"--tactic-option: {exc}") from None
        self._run_settings = {"space": self.space.describe(), "fleet_mode": "joint"}
        self.run_ids: Dict[str, int] = {}
        self.views: Dict[str, ClassProgress] = {}
        self._asked: List[_Asked] = []
        self._awaiting_accuracy: Set[str] = set()
        self._stalled = False
        self.classes_added: List[str] = []
        self.validations_before = 0
        self._replay()
        self.validations_before = self.fleet.n_validations
        for cls in c.registry.classes:
            if cls not in self.views:
                if self._asked:     # a class joins a run that has searched already
                    self.classes_added.append(cls)
                self._add_class(cls, settings.budget)
        for cls, view in self.views.items():
            if view.budget != settings.budget:     # --budget changed on resume
                self._set_budget(cls, settings.budget, log=True)
        self._set_stalled(False)     # a new class or budget may give the search something to propose again
        self._resumed = {}
        for cls in self.views:
            self._resumed.update(self.store.pending(cls))

    # ------------------------------------------------------------------ set-up and replay
    def _add_class(self, cls: str, budget: int, log: bool = True) -> None:
        from fleetnas.host.search.fleet import DeviceClass
        # one cost: the class is that cost under the class's name (as runs made before energy could be searched)
        self.fleet.add_class(Objective(cls) if len(self.costs) == 1 else DeviceClass(cls, tuple(self.costs)), budget)
        self.run_ids[cls] = self.store.class_run(cls, self._run_settings)
        self.views[cls] = ClassProgress(cls, budget, (self.accuracy, *self.costs), self.space)
        if log:
            self.store.add_fleet_call("add_class", {"class": cls, "budget": budget})

    def _set_budget(self, cls: str, budget: int, log: bool) -> None:
        self.fleet.budget[cls] = budget
        self.views[cls].budget = budget
        if log:
            self.store.add_fleet_call("budget", {"class": cls, "budget": budget})

    def _replay(self) -> None:
        values: Dict[str, Dict[int, Optional[Dict[str, float]]]] = {}
        subnets = self.controller.subnets
        for call in self.store.fleet_calls():
            p = call.payload
            if call.call == "add_class":
                self._add_class(p["class"], int(p["budget"]), log=False)
                values[p["class"]] = self.store.trial_values(self.run_ids[p["class"]])
            elif call.call == "budget":
                self._set_budget(p["class"], int(p["budget"]), log=False)
            elif call.call == "validations":
                self.fleet.max_validations = p["to"]
            elif call.call == "ask":
                proposals = self.fleet.ask(int(p["n"]))
                got = [(q.key, q.validate, list(q.classes)) for q in proposals]
                if got != [(q["key"], q["validate"], q["classes"]) for q in p["proposals"]]:
                    raise UsageError(f"--resume: the joint search does not replay its journal (call {call.seq} "
                                     f"proposed other sub-networks): was the run made by another fleetnas version? "
                                     f"Start a new --out folder")
                for q in p["proposals"]:
                    self._register(q["key"], q["validate"], {c: int(t) for c, t in q["trial_ids"].items()})
                self._set_stalled(not proposals)
            elif call.call == "accuracy":
                self.fleet.tell_accuracy(p["key"], subnets[p["key"]].accuracy)
                self._awaiting_accuracy.discard(p["key"])
            elif call.call == "cost":
                cls, trial_id = p["class"], int(p["trial_id"])
                told = values[cls][trial_id]
                self.fleet.tell_cost(p["key"], cls, self._costs_of(told))
                self.views[cls].told(trial_id, p["key"], told)
                self._set_stalled(False)
            elif call.call == "fail":
                self.fleet.fail(p["key"], p.get("class"))
                if p.get("class") is None:
                    self._awaiting_accuracy.discard(p["key"])
                else:
                    self.views[p["class"]].failed(p["key"])
                    self._set_stalled(False)

    def _costs_of(self, values: Dict[str, float]):
        """What the search is told of a measurement: the cost, or each cost by name."""
        if len(self.costs) == 1:
            return values[self.costs[0].name]
        return {c.name: values[c.name] for c in self.costs}

    def _register(self, key: str, validate: bool, trial_ids: Dict[str, int]) -> _Asked:
        asked = _Asked(key, validate, trial_ids)
        self._asked.append(asked)
        if validate:
            self._awaiting_accuracy.add(key)
        for cls, trial_id in trial_ids.items():
            self.views[cls].inflight[key] = trial_id
        return asked

    def _set_stalled(self, stalled: bool) -> None:
        """Stalled: the last ask proposed nothing; no new ask until a result arrives (or the run is resumed)."""
        self._stalled = stalled
        for view in self.views.values():
            view.stalled = stalled

    def resume_summary(self) -> str:
        parts = [f"{c} {v.n_evaluated} done, {v.n_failed} failed, {v.n_pending} pending"
                 for c, v in self.views.items() if c not in self.classes_added]
        text = "; ".join(parts) + f"; {self.validations_before} validation(s) shared by the fleet"
        if self.store.validation_cap_change:
            was, now = self.store.validation_cap_change
            text += f"; at most {_cap(now)} validation(s) in all (was {_cap(was)})"
        if self.classes_added:
            text += f"; new class(es) join the search: {', '.join(self.classes_added)}"
        return text

    # ------------------------------------------------------------------ the loop's steps
    @property
    def n_validations(self) -> int:
        return self.fleet.n_validations

    @property
    def finished(self) -> bool:
        if any(v.inflight for v in self.views.values()):
            return False
        return self.fleet.finished or self._stalled

    def start(self) -> None:
        """After a resume: finish what was asked before (in the order it was asked)."""
        for asked in list(self._asked):
            if asked.key in self._awaiting_accuracy or any(
                    asked.key in self.views[c].inflight for c in asked.trial_ids):
                self._launch(asked)

    def fill(self) -> None:
        if self._stalled:
            return                  # nothing new to propose until a result arrives
        if self._awaiting_accuracy:
            return                  # its models are fitted on every accuracy it asked for (on Ray: still coming)
        active = [c for c, v in self.views.items() if v.left > 0]
        if not active:
            return
        per_device = self.controller.settings.inflight_per_device
        free = min(per_device * len(self.controller.registry.by_class[c]) - len(self.views[c].inflight)
                   for c in active)
        if free <= 0:
            return
        reports_before = len(self.fleet.round_reports)
        proposals = self.fleet.ask(free)
        report = self.fleet.round_reports[-1] if len(self.fleet.round_reports) > reports_before else None
        trial_ids = self.store.add_fleet_ask(free, [{"key": p.key, "config": p.config, "validate": p.validate,
                                                     "classes": list(p.classes)} for p in proposals], self.run_ids,
                                             report)
        self._set_stalled(not proposals)
        for asked in [self._register(p.key, p.validate, ids) for p, ids in zip(proposals, trial_ids)]:
            self._launch(asked)

    def _launch(self, asked: _Asked) -> None:
        """Accuracy (once, for every class) and the exported model, then a measurement per class still waiting."""
        self.controller.with_subnet(asked.key, self.space.config_from_key(asked.key),
                                    lambda subnet: self._launch_ready(asked, subnet))

    def _launch_ready(self, asked: _Asked, subnet) -> None:
        c = self.controller
        if asked.key in self._awaiting_accuracy:
            self.fleet.tell_accuracy(asked.key, subnet.accuracy)
            self.store.add_fleet_call("accuracy", {"key": asked.key})
            self._awaiting_accuracy.discard(asked.key)
        for cls, trial_id in asked.trial_ids.items():
            if self.views[cls].inflight.get(asked.key) != trial_id:
                continue            # told before an interruption
            resumed = self._resumed.pop(trial_id, None)
            if resumed is not None and resumed.measurement is not None:   # measured before an interruption
                self._tell(cls, asked.key, resumed.measurement, already_journaled=True)
            else:
                c.submit(cls, trial_id, subnet, resumed)

    def on_result(self, result) -> None:
        view = self.views.get(result.job.device_class)
        if view is not None and result.job.config_key in view.inflight:
            self._tell(result.job.device_class, result.job.config_key, result.measurement)

    def _tell(self, cls: str, key: str, m, already_journaled: bool = False) -> None:
        c, view = self.controller, self.views[cls]
        trial_id = view.inflight[key]
        values = c.objective_values(key, m)
        self._set_stalled(False)
        if values is None:
            self.store.add_fleet_result(self.run_ids[cls], trial_id, cls, key, None, c.failure_reason(key, m))
            self.fleet.fail(key, cls)
            view.failed(key)
            return
        if not already_journaled:
            self.store.add_measurement(trial_id, m)
        self.store.add_fleet_result(self.run_ids[cls], trial_id, cls, key, values)
        self.fleet.tell_cost(key, cls, self._costs_of(values))
        view.told(trial_id, key, values)
