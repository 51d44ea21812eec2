"""`Search`: the ask/tell interface a controller drives, journalled as it happens, resumable by replay.

Usage (the fleet controller, a benchmark, a test)::

    journal = Journal("run/journal.sqlite")
    search = Search(space, [Objective("acc", True), Objective("latency_ms")], tactic="linas", seed=0, budget=300,
                    journal=journal, run="rpi5", resume=True)   # resume=True: continue the run if it exists
    for p in search.pending():            # after a resume: proposals that never got a result; dispatch them again
        ...
    while not search.finished:
        batch = search.ask(8)             # list[Proposal(trial_id, key, config)]; may be shorter, even empty
        ...dispatch to boards...
        search.tell(trial_id, {"acc": 71.2, "latency_ms": 12.5})   # in any order, as results arrive
        search.fail(trial_id, "OOM on rpi5-02")                     # a candidate that cannot be evaluated

Rules: ``ask`` never returns a configuration proposed before in the run (canonical keys; the journal enforces it
too). ``budget`` caps the number of distinct configurations proposed; a failed one has spent its measurement. An
empty ``ask`` with ``n_pending > 0`` means "tell me results first" (a generational tactic waits for its generation);
with nothing pending and budget left it means the space is exhausted. One thread owns a `Search`.

Resume: opening an existing run replays its ``events`` (asks and results, in order) through a fresh tactic with the
same seed and checks every replayed proposal against the journal, so the state (history, predictors, pymoo
populations, random generators) is exactly the one an uninterrupted run would have: with results told in the same
order, the continued run makes the same proposals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from fleetnas.host.errors import FleetnasError
from fleetnas.host.search.pareto import Objective, non_dominated_mask, to_minimization
from fleetnas.host.search.space import Config, SearchSpace
from fleetnas.host.search.history import History
from fleetnas.host.search.tactic import make_tactic
from fleetnas.host.store.journal import Journal, JournalError


class SearchError(FleetnasError):
    """Wrong use of a search (unknown trial, missing objective value, settings that differ from the journal)."""


@dataclass(frozen=True)
class Proposal:
    trial_id: int
    key: str
    config: Config


@dataclass(frozen=True)
class Evaluation:
    trial_id: int
    key: str
    config: Config
    values: Dict[str, float]


class Search:
    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        tactic: str = "linas",
        seed: int = 0,
        budget: Optional[int] = None,
        journal: Optional[Journal] = None,
        run: str = "search",
        tactic_options: Optional[Mapping[str, Any]] = None,
        resume: bool = False,
    ) -> None:
        self.space = space
        self.objectives = tuple(objectives)
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise SearchError(f"objective names must be unique, got {names}")
        self.budget = budget
        self.journal = journal if journal is not None else Journal(":memory:")
        options = dict(tactic_options or {})
        self.tactic = make_tactic(tactic, space, self.objectives, seed=seed, options=options)
        self.history = History(space, self.objectives)
        self._trials: Dict[int, Proposal] = {}
        self._evaluations: Dict[int, Evaluation] = {}
        self._reports_written = 0
        settings = {"space": space.describe(), "objectives": [o.spec() for o in self.objectives], "tactic": tactic,
                    "seed": int(seed), "tactic_options": options, "budget": budget}
        try:   # the budget may grow (or shrink) on resume; every other setting must be the one the run started with
            self.run_id, existed = self.journal.open_run(run, settings, resume=resume, may_change=("budget",))
        except JournalError as exc:
            raise SearchError(str(exc)) from None
        if existed:
            self._replay()

    # --- the controller's interface -------------------------------------------------------------------------------
    @property
    def n_proposed(self) -> int:
        return len(self._trials)

    @property
    def n_evaluated(self) -> int:
        return len(self._evaluations)

    @property
    def n_pending(self) -> int:
        return len(self.history.pending)

    @property
    def budget_left(self) -> Optional[int]:
        return None if self.budget is None else max(0, self.budget - self.n_proposed)

    @property
    def finished(self) -> bool:
        """Budget spent and every proposal answered."""
        return self.budget_left == 0 and self.n_pending == 0

    def ask(self, n: int) -> List[Proposal]:
        if n < 1:
            raise SearchError(f"ask for at least one configuration, not {n}")
        if self.budget_left is not None:
            n = min(n, self.budget_left)
        if n == 0:
            return []
        configs = self._propose(n)
        ids = self.journal.record_ask(self.run_id, n, [(self.space.key(c), c) for c in configs])
        out = [self._register(trial_id, c) for trial_id, c in zip(ids, configs)]
        self._write_round_reports()
        return out

    def tell(self, trial_id: int, values: Mapping[str, float]) -> None:
        clean = self._check_values(trial_id, values)
        self.journal.record_result(self.run_id, trial_id, clean)
        self._apply_result(trial_id, clean)

    def fail(self, trial_id: int, error: str) -> None:
        self._check_pending(trial_id)
        self.journal.record_result(self.run_id, trial_id, None, error=str(error) or "failed")
        self._apply_result(trial_id, None)

    def pending(self) -> List[Proposal]:
        """Proposals without a result (after a resume: the ones to dispatch again), in proposal order."""
        return [p for p in sorted(self._trials.values(), key=lambda p: p.trial_id) if p.key in self.history.pending]

    def evaluations(self) -> List[Evaluation]:
        """Successful evaluations, in the order the results arrived."""
        return list(self._evaluations.values())

    def front(self) -> List[Evaluation]:
        """The evaluated non-dominated configurations."""
        evaluated = self.evaluations()
        if not evaluated:
            return []
        F = to_minimization([[e.values[o.name] for o in self.objectives] for e in evaluated], self.objectives)
        return [e for e, keep in zip(evaluated, non_dominated_mask(F)) if keep]

    @property
    def round_reports(self) -> List[Dict[str, Any]]:
        return list(self.tactic.round_reports)

    # --- internals ------------------------------------------------------------------------------------------------
    def _propose(self, n: int) -> List[Config]:
        configs = self.tactic.propose(n, self.history)
        keys = [self.space.key(c) for c in configs]
        if len(set(keys)) != len(keys) or any(self.history.seen(k) for k in keys) or len(keys) > n:
            raise SearchError(f"tactic {self.tactic.name!r} proposed a configuration twice (bug in the tactic)")
        return [self.space.validate(c) for c in configs]

    def _register(self, trial_id: int, config: Config) -> Proposal:
        proposal = Proposal(trial_id, self.space.key(config), config)
        self._trials[trial_id] = proposal
        self.history.add_pending(proposal.key, config)
        return proposal

    def _check_pending(self, trial_id: int) -> Proposal:
        proposal = self._trials.get(trial_id)
        if proposal is None:
            raise SearchError(f"trial {trial_id} was never proposed by this run")
        if proposal.key not in self.history.pending:
            raise SearchError(f"trial {trial_id} already has a result; each trial is told once")
        return proposal

    def _check_values(self, trial_id: int, values: Mapping[str, float]) -> Dict[str, float]:
        self._check_pending(trial_id)
        clean: Dict[str, float] = {}
        for o in self.objectives:
            if o.name not in values:
                raise SearchError(f"trial {trial_id}: missing value for objective {o.name!r} (got {sorted(values)})")
            value = float(values[o.name])
            if not math.isfinite(value):
                raise SearchError(f"trial {trial_id}: objective {o.name!r} is {value}; report a failure with fail()")
            clean[o.name] = value
        return clean

    def _apply_result(self, trial_id: int, values: Optional[Dict[str, float]]) -> None:
        proposal = self._trials[trial_id]
        F_row = None
        if values is not None:
            F_row = to_minimization(np.array([[values[o.name] for o in self.objectives]]), self.objectives)[0]
            self._evaluations[trial_id] = Evaluation(trial_id, proposal.key, proposal.config, values)
        self.history.add_result(proposal.key, F_row)
        self.tactic.observe(proposal.key, F_row, self.history)

    def _write_round_reports(self) -> None:
        reports = self.tactic.round_reports
        for report in reports[self._reports_written:]:
            self.journal.record_round(self.run_id, int(report.get("round", self._reports_written)), report)
            self._reports_written += 1

    def _replay(self) -> None:
        trials = {t.trial_id: t for t in self.journal.trials(self.run_id)}
        for event in self.journal.events(self.run_id):
            if event.kind == "ask":
                ids = event.payload["trial_ids"]
                configs = self._propose(int(event.payload["n"]))
                keys = [self.space.key(c) for c in configs]
                if keys != [trials[i].key for i in ids]:
                    raise SearchError("the journal does not replay: the tactic now proposes different configurations "
                                      "(changed code, options or space since the run started)")
                for trial_id, config in zip(ids, configs):
                    self._register(trial_id, config)
            else:
                trial_id = int(event.payload["trial_id"])
                values = event.payload["values"]
                self._apply_result(trial_id, None if values is None else {k: float(v) for k, v in values.items()})
        self._reports_written = len(self.tactic.round_reports)

