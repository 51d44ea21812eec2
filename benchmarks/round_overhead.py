"""Host overhead of one linas round (predictor selection and fit + inner NSGA-II of 50 x 100 + batch pick).

Aim: <= 2 s per round on 2 cores. A round is timed by the tactic itself (``round_reports``: fit_s,
inner_s, select_s, total_s wall, cpu_s); this script drives whole searches and prints, per problem, the median,
90th percentile and maximum of the round wall time, the median of each part, and the first round separately (it
also pays one-off imports and a k-fold model selection).

Problems: the OFA MobileNetV3 space (46 genes, ~7e22 sub-networks) and the HAT Transformer space with seeded
synthetic objectives (their cost model is what is timed, not their values), in 2 and 3 objectives, and NAS-Bench-201
from the shipped table (benchmarks/data).

    python benchmarks/round_overhead.py                     # budget 300, all problems
    python benchmarks/round_overhead.py --problems ofa2 --budget 500
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from fleetnas.host.search.benchmark import PythonProblem, TableProblem, run_search
from fleetnas.host.search.cells import CellEdges
from fleetnas.host.search.pareto import Objective

TABLE = Path(__file__).resolve().parent / "data" / "nb201_devices.csv.gz"   # shipped; see data/README.md


def _ofa_problem(n_objectives: int):
    from fleetnas.host.supernets.ofa_mbv3 import mbv3_space  # lazy: super-network modules import torch

    return _python_problem(mbv3_space(), n_objectives, PythonProblem, Objective)


def _hat_problem(n_objectives: int):
    from fleetnas.host.supernets.transformer import HatDims, hat_space  # lazy: imports torch

    return _python_problem(hat_space(HatDims()), n_objectives, PythonProblem, Objective)


def _python_problem(space, n_objectives: int, PythonProblem, Objective):
    """Latency-like (additive over active genes), accuracy-like (saturating) and energy-like objectives; seeded."""
    rng = np.random.default_rng(0)
    cost = [rng.uniform(0.1, 1.0, p.n_options) for p in space.params]
    gain = [rng.normal(0.0, 1.0, p.n_options) for p in space.params]
    power = [rng.uniform(0.8, 1.2, p.n_options) for p in space.params]

    def evaluate(config: Dict) -> Dict[str, float]:
        genes = space.to_genes(config)
        active = ~np.isin(space.names, space.inactive_names(config))
        latency = sum(c[g] for c, g, a in zip(cost, genes, active) if a)
        score = sum(v[g] for v, g, a in zip(gain, genes, active) if a)
        out = {"acc": float(np.tanh(0.05 * score + 0.02 * latency)), "latency_ms": float(latency)}
        if n_objectives == 3:
            out["energy_mj"] = float(latency * np.mean([p[g] for p, g in zip(power, genes)]))
        return out

    names = ["acc:max", "latency_ms:min", "energy_mj:min"][:n_objectives]
    return PythonProblem(space, tuple(Objective.parse(n) for n in names), evaluate)


def _nb201_problem(columns: str):
    return TableProblem.from_csv(str(TABLE), [f"e{i}" for i in range(6)],
                                 [Objective.parse(t) for t in columns.split(",")],
                                 cell=CellEdges.parse("0-1,0-2,1-2,0-3,1-3,2-3"))


PROBLEMS: Dict[str, Callable] = {
    "ofa2": lambda: _ofa_problem(2),
    "ofa3": lambda: _ofa_problem(3),
    "hat2": lambda: _hat_problem(2),
    "nb201": lambda: _nb201_problem("acc_cifar10:max,hwnb_raspi4_lat_ms:min"),
    "nb201-3obj": lambda: _nb201_problem("acc_cifar10:max,hwnb_raspi4_lat_ms:min,hwnb_pixel3_lat_ms:min"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default=",".join(PROBLEMS), help=f"subset of {','.join(PROBLEMS)}")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    problems = [p for p in args.problems.split(",") if p]
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        print(f"error: unknown problem(s) {unknown}; choose from {list(PROBLEMS)}", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"linas round overhead, budget {args.budget}, batch {args.batch}, {cores} cores, "
          f"load average {os.getloadavg()[0]:.2f} (target: <= 2 s per round on 2 cores)")
    print(f"{'problem':<12}{'rounds':>7}{'first s':>9}{'median s':>10}{'p90 s':>8}{'max s':>8}"
          f"{'fit':>7}{'inner':>7}{'select':>8}{'cpu med':>9}  <=2 s")
    for name in problems:
        if name.startswith("nb201") and not TABLE.is_file():
            print(f"{name:<12} skipped: {TABLE} not found")
            continue
        problem = PROBLEMS[name]()
        start = time.perf_counter()
        search = run_search(problem, "linas", args.seed, args.budget, args.batch)
        reports: List[Dict] = list(search.round_reports)
        rest = reports[1:] or reports
        total = np.array([r["total_s"] for r in rest])

        def med(key: str) -> float:
            return float(np.median([r[key] for r in rest]))

        print(f"{name:<12}{len(reports):>7}{reports[0]['total_s']:>9.2f}{np.median(total):>10.2f}"
              f"{np.percentile(total, 90):>8.2f}{total.max():>8.2f}{med('fit_s'):>7.2f}{med('inner_s'):>7.2f}"
              f"{med('select_s'):>8.2f}{med('cpu_s'):>9.2f}  {'yes' if np.median(total) <= 2.0 else 'NO'}"
              f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
