"""Benchmarking tactics on tables of real measurements (ground truth known) or on a Python objective.

Table convention (``../shared/data/README.md``): every row is one architecture; objectives are min-max normalised over
the whole table in minimisation form; reference point 1.1 per objective; the true front is the table's non-dominated
rows (identical objective vectors all count). At each budget: HV gap = 1 - HV(evaluated) / HV(true front), recall =
fraction of true front rows evaluated. Budgets count distinct evaluated configurations.

``--problem module:callable``: the callable takes no argument and returns a `PythonProblem` (space, objectives,
evaluate(config) -> {objective: value}). There is no ground truth: hypervolume at each budget is reported, normalised
by the range of everything evaluated over all seeds of that bench run.
"""
from __future__ import annotations

import csv
import gzip
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from fleetnas.host.errors import UsageError
from fleetnas.host.search.cells import CellEdges
from fleetnas.host.search.engine import Search
from fleetnas.host.search.pareto import MinMaxNormalizer, Objective, hypervolume, non_dominated_mask, to_minimization
from fleetnas.host.search.space import Choice, SearchSpace

STANDARD_BUDGETS = (50, 100, 200, 300, 500)
GAP_TARGET = 1e-3


def parse_cell(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_table(path: str, params: Sequence[str], value_columns: Sequence[str], cell: Optional[CellEdges] = None
               ) -> Tuple[SearchSpace, Dict[str, np.ndarray], Dict[str, int]]:
    """A benchmark table (CSV, or .csv.gz as shipped): the space its ``params`` span, each value column as floats,
    and the row of each configuration's key. Every problem in it is one clear UsageError."""
    if not Path(path).is_file():
        raise UsageError(f"table {path} not found; give a CSV with one architecture per row")
    opener = gzip.open if str(path).endswith(".gz") else open   # the shipped tables are gzip-compressed
    with opener(path, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in list(params) + list(value_columns) if c not in header]
        if missing:
            raise UsageError(f"column(s) {missing} not in {path}; it has {header}")
        rows = list(reader)
    if not rows:
        raise UsageError(f"table {path} has no rows")
    values = {p: [parse_cell(r[p]) for r in rows] for p in params}
    space = SearchSpace([Choice(p, tuple(sorted(set(values[p]), key=lambda v: (str(type(v)), v)))) for p in params],
                        cell=cell)
    try:
        columns = {c: np.array([float(r[c]) for r in rows]) for c in value_columns}
    except ValueError as exc:
        raise UsageError(f"objective columns must be numbers: {exc}") from exc
    row_of_key: Dict[str, int] = {}
    for i in range(len(rows)):
        key = space.key({p: values[p][i] for p in params})
        if key in row_of_key:
            raise UsageError(f"rows {row_of_key[key]} and {i} of {path} have the same parameters {key}; "
                             "--params must identify a row")
        row_of_key[key] = i
    return space, columns, row_of_key


@dataclass
class PythonProblem:
    space: SearchSpace
    objectives: Sequence[Objective]
    evaluate: Callable[[Dict[str, Any]], Mapping[str, float]]


@dataclass
class TableProblem:
    """A CSV table as a search problem: a space over ``params`` and a lookup of the objective columns."""

    space: SearchSpace
    objectives: Sequence[Objective]
    F: np.ndarray                       # (rows, objectives), minimisation form
    Z: np.ndarray                       # normalised over the table
    row_of_key: Dict[str, int]
    true_front: np.ndarray = field(init=False)
    hv_true: float = field(init=False)

    def __post_init__(self) -> None:
        self.true_front = non_dominated_mask(self.Z)
        self.hv_true = hypervolume(self.Z[self.true_front], [1.1] * len(self.objectives))

    @classmethod
    def from_csv(cls, path: str, params: Sequence[str], objectives: Sequence[Objective],
                 cell: Optional[CellEdges] = None) -> "TableProblem":
        space, columns, row_of_key = read_table(path, params, [o.name for o in objectives], cell)
        raw = np.column_stack([columns[o.name] for o in objectives])
        F = to_minimization(raw, objectives)
        return cls(space, tuple(objectives), F, MinMaxNormalizer.fit(F)(F), row_of_key)

    def evaluate(self, config: Dict[str, Any]) -> Dict[str, float]:
        row = self.row_of_key.get(self.space.key(config))
        if row is None:
            raise KeyError(f"configuration {config} is not a row of the table")
        sign = [-1.0 if o.maximize else 1.0 for o in self.objectives]
        return {o.name: float(s * self.F[row, j]) for j, (o, s) in enumerate(zip(self.objectives, sign))}


def budgets_for(budget: int) -> List[int]:
    return [b for b in STANDARD_BUDGETS if b < budget] + [budget]


def run_search(problem, tactic: str, seed: int, budget: int, batch: int = 20,
               options: Optional[Mapping[str, Any]] = None, journal=None, resume: bool = False,
               stop_after: Optional[int] = None) -> Search:
    """Drive a `Search` synchronously: ask ``batch``, evaluate, tell in proposal order, until the budget is spent.

    ``stop_after`` stops after that many results (simulates a crash; reopen with ``resume=True``)."""
    search = Search(problem.space, problem.objectives, tactic=tactic, seed=seed, budget=budget, journal=journal,
                    run=f"{tactic}-seed{seed}", tactic_options=options, resume=resume)
    told = 0
    queue = search.pending()
    while True:
        if not queue:
            if search.finished:
                break
            queue = search.ask(batch)
            if not queue:
                break  # space exhausted
        for proposal in queue:
            if stop_after is not None and told >= stop_after:
                return search
            search.tell(proposal.trial_id, problem.evaluate(proposal.config))
            told += 1
        queue = []
    return search


def table_metrics(problem: TableProblem, search: Search, budgets: Sequence[int]) -> Dict[str, Any]:
    rows = np.array([problem.row_of_key[e.key] for e in search.evaluations()], dtype=np.int64)
    ref = [1.1] * len(problem.objectives)
    gaps, recalls = [], []
    for b in budgets:
        sel = rows[:b]
        gaps.append(1.0 - hypervolume(problem.Z[sel], ref) / problem.hv_true)
        recalls.append(float(problem.true_front[sel].sum() / problem.true_front.sum()))
    # First budget with gap <= target: the gap only shrinks, so bisect on the prefix length.
    first = None
    lo, hi = 1, len(rows)
    if hi and 1.0 - hypervolume(problem.Z[rows], ref) / problem.hv_true <= GAP_TARGET:
        while lo < hi:
            mid = (lo + hi) // 2
            if 1.0 - hypervolume(problem.Z[rows[:mid]], ref) / problem.hv_true <= GAP_TARGET:
                hi = mid
            else:
                lo = mid + 1
        first = lo
    return {"hv_gap": gaps, "recall": recalls, "evals_to_gap": first}


def _median_or_none(values: Sequence[Optional[float]]) -> Optional[float]:
    finite = np.array([np.inf if v is None else float(v) for v in values])
    median = float(np.median(finite))
    return None if not np.isfinite(median) else median


def bench_table(problem: TableProblem, tactic: str, budget: int, seeds: Sequence[int], batch: int = 20,
                options: Optional[Mapping[str, Any]] = None, on_seed=None) -> Dict[str, Any]:
    budgets = budgets_for(budget)
    per_seed = []
    for seed in seeds:
        search = run_search(problem, tactic, seed, budget, batch, options)
        metrics = table_metrics(problem, search, budgets)
        metrics["round_s_max"] = max((r.get("total_s", 0.0) for r in search.round_reports), default=0.0)
        per_seed.append(metrics)
        if on_seed is not None:
            on_seed(seed, metrics)
    return {
        "tactic": tactic,
        "budgets": budgets,
        "hv_gap_median": [float(np.median([m["hv_gap"][i] for m in per_seed])) for i in range(len(budgets))],
        "recall_median": [float(np.median([m["recall"][i] for m in per_seed])) for i in range(len(budgets))],
        "evals_to_gap_1e-3_median": _median_or_none([m["evals_to_gap"] for m in per_seed]),
        "seeds": list(seeds),
        "true_front_size": int(problem.true_front.sum()),
        "hv_true": problem.hv_true,
        "per_seed": per_seed,
    }


def load_problem(spec: str) -> PythonProblem:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--problem {spec!r}: write module:callable, e.g. mypkg.problems:make_problem")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--problem {spec!r}: cannot load it ({exc})") from exc
    problem = factory()
    if not all(hasattr(problem, a) for a in ("space", "objectives", "evaluate")):
        raise UsageError(f"--problem {spec!r} must return an object with space, objectives and evaluate(config)")
    return problem


def bench_python(problem, tactic: str, budget: int, seeds: Sequence[int], batch: int = 20,
                 options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    budgets = budgets_for(budget)
    runs = [run_search(problem, tactic, seed, budget, batch, options) for seed in seeds]
    objectives = tuple(problem.objectives)
    Fs = [to_minimization(np.array([[e.values[o.name] for o in objectives] for e in s.evaluations()]), objectives)
          for s in runs]
    norm = MinMaxNormalizer.fit(np.vstack(Fs))
    ref = [1.1] * len(objectives)
    hv = [[hypervolume(norm(F[:b]), ref) for b in budgets] for F in Fs]
    return {"tactic": tactic, "budgets": budgets, "hv_median": [float(np.median([h[i] for h in hv]))
                                                                 for i in range(len(budgets))],
            "seeds": list(seeds), "per_seed": [{"hv": h} for h in hv]}
