"""Benchmarking a fleet search on a table: one accuracy column, one or two cost columns per device class.

A device written ``LAT+ENERGY`` is one class with two costs (e.g. latency and energy, three objectives with the
accuracy). Per device the metrics are those of `fleetnas.host.search.benchmark` on the problem (accuracy, that
device's cost or costs): HV gap and recall after each number of that device's own measurements. Validations are the
distinct configs whose accuracy was needed (measured on any device). Two modes:

- ``joint``: one `FleetSearch` over all devices;
- ``independent``: one linas search per device (what ``fleetnas search`` runs today), validations = their union.

``new_device``: the other devices are searched first, then the new one joins and its gap is reported after
``NEW_DEVICE_BUDGETS`` of its own measurements (independent mode: a linas search of that device alone). A device
joining alone is measured in rounds of ``new_batch`` (5): one board class, so rounds are short and frequent refits pay.
``known_gap``: its gap if it measured every config the others had measured before it joined, what it can reach without
new validations (where that is above a target, only new validations can meet it).

A joint run's result also has ``quality_median``: per class, the median over seeds of the last round's held-out
predictor quality (``loo_tau``, ``loo_mape``, ``recent_tau``, ``recent_mape``) and the accuracy model's ``cv_tau`` and
``recent_tau`` (see `fleetnas.host.search.fleet` for what each means).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from fleetnas.host.errors import UsageError
from fleetnas.host.search.benchmark import GAP_TARGET, TableProblem, budgets_for, read_table, run_search
from fleetnas.host.search.cells import CellEdges
from fleetnas.host.search.fleet import DeviceClass, FleetSearch
from fleetnas.host.search.pareto import MinMaxNormalizer, Objective, hypervolume, to_minimization
from fleetnas.host.search.space import SearchSpace

NEW_DEVICE_BUDGETS = (10, 20, 30, 50, 100)
MODES = ("joint", "independent")


@dataclass
class FleetTable:
    """The table once, and per device the `TableProblem` (accuracy, that device's cost or costs)."""

    space: SearchSpace
    accuracy: Objective
    devices: List[DeviceClass]
    problems: Dict[str, TableProblem]
    raw: Dict[str, np.ndarray]            # column -> value per row
    row_of_key: Dict[str, int]

    @classmethod
    def from_csv(cls, path: str, params: Sequence[str], accuracy: Objective,
                 devices: Sequence[Union[DeviceClass, Objective]], cell: Optional[CellEdges] = None) -> "FleetTable":
        devices = [DeviceClass.of(d) for d in devices]
        names = [d.name for d in devices]
        columns = list(dict.fromkeys(c.name for d in devices for c in d.costs))
        if len(set(names)) != len(names) or accuracy.name in columns:
            raise UsageError(f"--devices must be distinct columns other than the accuracy, got {names}")
        space, raw, row_of_key = read_table(path, params, [accuracy.name] + columns, cell)
        problems = {}
        for d in devices:
            objectives = (accuracy,) + tuple(d.costs)
            F = to_minimization(np.column_stack([raw[o.name] for o in objectives]), objectives)
            problems[d.name] = TableProblem(space, objectives, F, MinMaxNormalizer.fit(F)(F), row_of_key)
        return cls(space, accuracy, list(devices), problems, raw, row_of_key)

    def value(self, column: str, key: str) -> float:
        return float(self.raw[column][self.row_of_key[key]])

    def costs(self, device: str, key: str) -> Dict[str, float]:
        """What a board of ``device`` measures for ``key``: cost column -> value."""
        d = next(d for d in self.devices if d.name == device)
        return {c.name: self.value(c.name, key) for c in d.costs}

    def correlation(self, device: str) -> Optional[float]:
        """Pearson r of a two-cost device's columns over the table (None for one cost)."""
        d = next(d for d in self.devices if d.name == device)
        if len(d.costs) < 2:
            return None
        return float(np.corrcoef(self.raw[d.costs[0].name], self.raw[d.costs[1].name])[0, 1])


def parse_device(text: str) -> DeviceClass:
    """``COL`` (one cost) or ``COL+COL`` (two costs of one class, e.g. latency and energy columns)."""
    costs = [c.strip() for c in text.split("+")]
    if not 1 <= len(costs) <= 2 or not all(costs):
        raise UsageError(f"device {text!r}: write COL or LAT_COL+ENERGY_COL (one class, at most two cost columns)")
    try:
        return DeviceClass(text.strip(), tuple(Objective(c) for c in costs))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def device_metrics(problem: TableProblem, keys: Sequence[str], budgets: Sequence[int]) -> Dict[str, Any]:
    rows = np.array([problem.row_of_key[k] for k in keys], dtype=np.int64)
    ref = [1.1] * problem.Z.shape[1]
    gaps, recalls = [], []
    for b in budgets:
        sel = rows[:b]
        gaps.append(1.0 - hypervolume(problem.Z[sel], ref) / problem.hv_true if len(sel) else 1.0)
        recalls.append(float(problem.true_front[sel].sum() / problem.true_front.sum()))
    return {"hv_gap": gaps, "recall": recalls}


def _median_quality(reports: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Median over seeds of each number in the last round's quality report (see `fleetnas.host.search.fleet`)."""
    def med(values):
        values = [v for v in values if v is not None]
        return float(np.median(values)) if values else None

    acc = {k: med([r["accuracy"][k] for r in reports]) for k in ("cv_tau", "recent_tau")}
    classes = {c: {k: med([r["classes"][c][k] for r in reports if c in r["classes"]])
                   for k in ("loo_tau", "loo_mape", "recent_tau", "recent_mape")}
               for c in reports[0]["classes"]}
    return {"accuracy": acc, "classes": classes}


def drive_fleet(table: FleetTable, search: FleetSearch, batch: int) -> List[float]:
    """Ask, validate, measure, tell until the search is finished; returns the host CPU seconds of each round (CPU,
    not wall time: the benchmark machine may be shared)."""
    round_s = []
    while not search.finished:
        t0 = time.process_time()
        proposals = search.ask(batch)
        round_s.append(time.process_time() - t0)
        if not proposals:
            break  # space exhausted (or the validation cap leaves nothing to measure)
        for p in proposals:
            if p.validate:
                search.tell_accuracy(p.key, table.value(table.accuracy.name, p.key))
            for c in p.classes:
                search.tell_cost(p.key, c, table.costs(c, p.key))
    return round_s


def run_joint(table: FleetTable, devices: Sequence[str], seed: int, budget: int, batch: int,
              max_validations: Optional[int], options: Mapping[str, Any], new_device: Optional[str] = None,
              new_budget: int = max(NEW_DEVICE_BUDGETS), new_batch: int = 5,
              new_device_validations: int = 0) -> Dict[str, Any]:
    """``new_device_validations``: added to the cap when ``new_device`` joins (as a resume with a larger
    --validations does)."""
    by_name = {d.name: d for d in table.devices}
    search = FleetSearch(table.space, table.accuracy, [by_name[d] for d in devices], seed=seed, budget=budget,
                         max_validations=max_validations, **options)
    round_s = drive_fleet(table, search, batch)
    out: Dict[str, Any] = {"measured": {d: search.measurements(d) for d in devices},
                           "validations": search.n_validations, "round_s": round_s,
                           "rounds": search.round_reports}
    if new_device is not None:
        before = search.n_validations
        known = list(dict.fromkeys(k for d in devices for k in search.measurements(d)))
        search.add_class(by_name[new_device], new_budget)
        if max_validations is not None:
            search.max_validations = max_validations + new_device_validations
        out["round_s"] = round_s + drive_fleet(table, search, new_batch)
        out["new_device"] = {"measured": search.measurements(new_device), "known": known,
                             "new_validations": search.n_validations - before}
        out["validations"] = search.n_validations
    return out


def run_independent(table: FleetTable, devices: Sequence[str], seed: int, budget: int, batch: int,
                    options: Mapping[str, Any], new_device: Optional[str] = None,
                    new_budget: int = max(NEW_DEVICE_BUDGETS), new_batch: int = 5) -> Dict[str, Any]:
    measured, round_s, validated = {}, [], set()
    for d in devices:
        s = run_search(table.problems[d], "linas", seed, budget, batch, options)
        measured[d] = [e.key for e in s.evaluations()]
        validated |= set(measured[d])
        round_s += [r.get("cpu_s", 0.0) for r in s.round_reports]
    out: Dict[str, Any] = {"measured": measured, "validations": len(validated), "round_s": round_s}
    if new_device is not None:
        s = run_search(table.problems[new_device], "linas", seed, new_budget, new_batch, options)
        keys = [e.key for e in s.evaluations()]
        out["new_device"] = {"measured": keys, "known": sorted(validated),
                             "new_validations": len(set(keys) - validated)}
        out["validations"] = len(validated | set(keys))
    return out


def bench_fleet(table: FleetTable, devices: Sequence[str], mode: str, budget: int, seeds: Sequence[int],
                batch: int = 20, max_validations: Optional[int] = None, options: Optional[Mapping[str, Any]] = None,
                new_device: Optional[str] = None, on_seed=None, new_device_validations: int = 0) -> Dict[str, Any]:
    if mode not in MODES:
        raise UsageError(f"--fleet-mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "independent" and max_validations is not None:
        raise UsageError("--validations caps a joint search; independent searches validate what each one measures")
    if new_device_validations and (mode != "joint" or max_validations is None or new_device is None):
        raise UsageError("--new-device-validations raises a joint search's --validations cap when --new-device "
                         "joins: give --fleet-mode joint, --validations N and --new-device COL")
    if new_device_validations < 0:
        raise UsageError(f"--new-device-validations must be >= 0, got {new_device_validations}")
    options = dict(options or {})
    budgets = budgets_for(budget)
    new_budgets = list(NEW_DEVICE_BUDGETS)
    per_seed = []
    for seed in seeds:
        if mode == "joint":
            run = run_joint(table, devices, seed, budget, batch, max_validations, options, new_device,
                            new_device_validations=new_device_validations)
        else:
            run = run_independent(table, devices, seed, budget, batch, options, new_device)
        metrics = {"validations": run["validations"],
                   "round_s_max": max(run["round_s"], default=0.0),
                   "round_s_median": float(np.median(run["round_s"])) if run["round_s"] else 0.0,
                   "devices": {d: device_metrics(table.problems[d], run["measured"][d], budgets) for d in devices}}
        if run.get("rounds"):  # joint: the predictors' held-out quality in the last model round
            metrics["quality"] = run["rounds"][-1]["quality"]
        if new_device is not None:
            nd = run["new_device"]
            known = device_metrics(table.problems[new_device], nd["known"], [len(nd["known"])])
            metrics["new_device"] = dict(device_metrics(table.problems[new_device], nd["measured"], new_budgets),
                                         new_validations=nd["new_validations"], known_gap=known["hv_gap"][0])
        per_seed.append(metrics)
        if on_seed is not None:
            on_seed(seed, metrics)

    def med(values):
        return float(np.median(values))

    result: Dict[str, Any] = {
        "mode": mode, "budgets": budgets, "seeds": list(seeds), "batch": batch,
        "validations_median": med([m["validations"] for m in per_seed]),
        "max_validations": max_validations,
        "new_device_validations": new_device_validations,
        "round_s_max": max(m["round_s_max"] for m in per_seed),
        "round_s_median": med([m["round_s_median"] for m in per_seed]),
        "devices": {d: {"hv_gap_median": [med([m["devices"][d]["hv_gap"][i] for m in per_seed])
                                          for i in range(len(budgets))],
                        "recall_median": [med([m["devices"][d]["recall"][i] for m in per_seed])
                                          for i in range(len(budgets))],
                        "true_front_size": int(table.problems[d].true_front.sum()),
                        "objectives": len(table.problems[d].objectives),
                        "correlation": table.correlation(d)}
                    for d in devices},
        "gap_target": GAP_TARGET,
        "per_seed": per_seed,
    }
    if all("quality" in m for m in per_seed):
        result["quality_median"] = _median_quality([m["quality"] for m in per_seed])
    if new_device is not None:
        result["new_device"] = {
            "name": new_device, "budgets": new_budgets,
            "hv_gap_median": [med([m["new_device"]["hv_gap"][i] for m in per_seed]) for i in range(len(new_budgets))],
            "recall_median": [med([m["new_device"]["recall"][i] for m in per_seed]) for i in range(len(new_budgets))],
            "new_validations_median": med([m["new_device"]["new_validations"] for m in per_seed]),
            "known_gap_median": med([m["new_device"]["known_gap"] for m in per_seed]),
        }
    return result
