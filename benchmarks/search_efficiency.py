"""Search efficiency on published measurements: linas vs nsga2 vs random, medians over seeds.

Runs the same code as `fleetnas bench` on the shipped benchmarks/data/nb201_devices.csv.gz for several problems (two
devices, one other device column and a 3-objective problem, so nothing is tuned to one column) and prints,
per problem and tactic: HV gap at 100/200/300/500 evaluations, front recall at 300/500, evaluations to a gap of 1e-3,
and the median host CPU time of a linas round. Then the targets below, checked on the median figures. The table is
declared a cell space (``--cell 0-1,0-2,1-2,0-3,1-3,2-3`` of `fleetnas bench`), so linas's predictors see live ops.

    nice python benchmarks/search_efficiency.py                  # 10 seeds, budget 500, all problems (long)
    python benchmarks/search_efficiency.py --seeds 3 --problems raspi4 --jobs 2

Timing figures are CPU seconds of the search process (the machine may be shared: wall time is noisier).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

from fleetnas.host.search.benchmark import TableProblem, budgets_for, run_search, table_metrics
from fleetnas.host.search.cells import CellEdges
from fleetnas.host.search.pareto import Objective

TABLE = Path(__file__).resolve().parent / "data" / "nb201_devices.csv.gz"   # shipped; see data/README.md
PARAMS = [f"e{i}" for i in range(6)]
CELL = "0-1,0-2,1-2,0-3,1-3,2-3"  # NB201's e0..e5 as from-to nodes (fleetnas bench --cell): same for every device
PROBLEMS = {
    "raspi4": "acc_cifar10:max,hwnb_raspi4_lat_ms:min",
    "pixel3": "acc_cifar10:max,hwnb_pixel3_lat_ms:min",
    "xeon": "acc_cifar10:max,help_xeon_gold6226_ms:min",
    "3obj": "acc_cifar10:max,hwnb_raspi4_lat_ms:min,hwnb_pixel3_lat_ms:min",
}
TACTICS = ("linas", "nsga2", "random")
REPORT_BUDGETS = (100, 200, 300, 500)


def _load(problem: str):
    return TableProblem.from_csv(str(TABLE), PARAMS, [Objective.parse(t) for t in PROBLEMS[problem].split(",")],
                                 cell=CellEdges.parse(CELL))


def _one(job):
    from threadpoolctl import threadpool_limits

    problem_name, tactic, seed, budget, batch = job
    with threadpool_limits(1):  # one process per core: no BLAS oversubscription
        problem = _load(problem_name)
        start = time.process_time()
        search = run_search(problem, tactic, seed, budget, batch)
        metrics = table_metrics(problem, search, budgets_for(budget))
    cpu = [r["cpu_s"] for r in search.round_reports]
    return problem_name, tactic, seed, metrics, float(np.median(cpu)) if cpu else 0.0, time.process_time() - start


def _median(values):
    finite = np.array([np.inf if v is None else v for v in values], dtype=float)
    m = float(np.median(finite))
    return None if not np.isfinite(m) else m


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--problems", default=",".join(PROBLEMS), help=f"subset of {','.join(PROBLEMS)}")
    parser.add_argument("--tactics", default=",".join(TACTICS))
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    parser.add_argument("--json", action="store_true", help="also print the per-seed figures as JSON")
    args = parser.parse_args(argv)
    if not TABLE.is_file():
        print(f"error: {TABLE} not found (shipped with the repository in benchmarks/data)", file=sys.stderr)
        return 2
    problems = [p for p in args.problems.split(",") if p]
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        print(f"error: unknown problem(s) {unknown}; choose from {list(PROBLEMS)}", file=sys.stderr)
        return 2
    tactics = [t for t in args.tactics.split(",") if t]
    jobs = [(p, t, s, args.budget, args.batch) for p in problems for t in tactics for s in range(args.seeds)]
    results = {}
    start = time.time()
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            outputs = pool.imap_unordered(_one, jobs)
            for out in outputs:
                results.setdefault((out[0], out[1]), []).append(out)
                print(f"  done {out[0]} {out[1]} seed {out[2]} ({len(sum(results.values(), []))}/{len(jobs)})",
                      file=sys.stderr, flush=True)
    else:
        for job in jobs:
            out = _one(job)
            results.setdefault((out[0], out[1]), []).append(out)
            print(f"  done {out[0]} {out[1]} seed {out[2]}", file=sys.stderr, flush=True)
    _print(results, problems, tactics, args)
    print(f"\n{len(jobs)} runs in {time.time() - start:.0f} s wall")
    if args.json:
        print(json.dumps({f"{p}/{t}": [{"seed": o[2], **o[3]} for o in outs] for (p, t), outs in results.items()}))
    return 0


def _print(results, problems, tactics, args) -> None:
    budgets = budgets_for(args.budget)
    shown = [b for b in REPORT_BUDGETS if b in budgets]
    print(f"\nmedian over {args.seeds} seeds, budget {args.budget}, batch {args.batch} (HV gap = 1 - HV/HV_true; "
          "recall = fraction of the true front evaluated)")
    head = "".join(f"{'gap@' + str(b):>10}" for b in shown) + "".join(f"{'rec@' + str(b):>9}" for b in shown[-2:])
    print(f"{'problem':<8}{'tactic':<8}{head}{'evals<=1e-3':>13}{'round cpu s':>13}")
    medians = {}
    for p in problems:
        for t in tactics:
            outs = results.get((p, t), [])
            if not outs:
                continue
            gap = {b: float(np.median([o[3]["hv_gap"][budgets.index(b)] for o in outs])) for b in shown}
            rec = {b: float(np.median([o[3]["recall"][budgets.index(b)] for o in outs])) for b in shown}
            evals = _median([o[3]["evals_to_gap"] for o in outs])
            cpu = float(np.median([o[4] for o in outs])) if t == "linas" else None
            medians[(p, t)] = (gap, rec, evals)
            row = "".join(f"{gap[b]:>10.1e}" for b in shown) + "".join(f"{rec[b]:>9.0%}" for b in shown[-2:])
            print(f"{p:<8}{t:<8}{row}{'-' if evals is None else int(evals):>13}{'' if cpu is None else f'{cpu:.2f}':>13}")
    print("\ntargets (medians): gap<=1e-3 by 200; at 300 gap<=1e-3 and recall>=50%; recall>=80% at 500; "
          "linas ahead of nsga2 (smaller gap) at every budget from 100")
    for p in problems:
        if (p, "linas") not in medians:
            continue
        gap, rec, evals = medians[(p, "linas")]
        checks = []
        if 200 in gap:
            checks.append(("gap<=1e-3@200", gap[200] <= 1e-3))
        if 300 in gap:
            checks.append(("gap<=1e-3@300", gap[300] <= 1e-3))
            checks.append(("recall>=50%@300", rec[300] >= 0.5))
        if 500 in rec:
            checks.append(("recall>=80%@500", rec[500] >= 0.8))
        if (p, "nsga2") in medians:
            other = medians[(p, "nsga2")][0]
            checks.append(("ahead of nsga2", all(gap[b] <= other[b] for b in gap if b >= 100)))
        print(f"  {p:<8}" + "  ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks))


if __name__ == "__main__":
    sys.exit(main())
