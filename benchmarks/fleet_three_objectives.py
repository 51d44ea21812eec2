"""Three objectives (accuracy, latency, energy) in the joint fleet search, against random search on the same problem.

Boards' latency and energy are strongly correlated; the NB201 table (benchmarks/data, shipped) has no energy column,
so each problem pairs two correlated device columns as one class's two costs (``LAT+ENERGY``), e.g. the Raspberry Pi 4
and Pixel 3 latencies (r printed per problem). Per problem: the fleet search of that one class (``fleetnas bench
--devices A+B``) and random search on (accuracy, A, B); HV gap and recall at each budget, medians over seeds; the
target is a gap at 300 evaluations at least 5x smaller than random search's.

    nice python benchmarks/fleet_three_objectives.py                       # 5 seeds, three problems
    nice python benchmarks/fleet_three_objectives.py --seeds 2 --problems hwnb_raspi4_lat_ms+hwnb_pixel3_lat_ms
    nice python benchmarks/fleet_three_objectives.py --option dominance='"full"'   # a fleet search option
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "nb201_devices.csv.gz"   # shipped; see data/README.md
PARAMS = [f"e{i}" for i in range(6)]
CELL = "0-1,0-2,1-2,0-3,1-3,2-3"
ACCURACY = "acc_cifar10"
PROBLEMS = ("hwnb_raspi4_lat_ms+hwnb_pixel3_lat_ms", "help_titanrtx_bs1_ms+help_xeon_gold6226_ms",
            "hwnb_fpga_lat_ms+help_xeon_gold6226_ms")
RATIO_TARGET = 5.0


def run(problems, seeds, budget: int, batch: int, options) -> dict:
    from threadpoolctl import threadpool_limits

    from fleetnas.host.search.benchmark import bench_table
    from fleetnas.host.search.cells import CellEdges
    from fleetnas.host.search.fleet_bench import FleetTable, bench_fleet, parse_device
    from fleetnas.host.search.pareto import Objective

    warnings.filterwarnings("ignore")  # GP hyper-parameter bounds: noise, not news
    devices = [parse_device(p) for p in problems]
    table = FleetTable.from_csv(str(TABLE), PARAMS, Objective(ACCURACY, True), devices, cell=CellEdges.parse(CELL))
    out = {}
    with threadpool_limits(1):
        for name in problems:
            fleet = bench_fleet(table, [name], "joint", budget, seeds, batch, None, options)
            rand = bench_table(table.problems[name], "random", budget, seeds, batch)
            out[name] = {"r": table.correlation(name), "budgets": fleet["budgets"],
                         "fleet_gap": fleet["devices"][name]["hv_gap_median"],
                         "fleet_recall": fleet["devices"][name]["recall_median"],
                         "random_gap": rand["hv_gap_median"], "random_recall": rand["recall_median"],
                         "true_front": fleet["devices"][name]["true_front_size"],
                         "round_s_median": fleet["round_s_median"], "round_s_max": fleet["round_s_max"],
                         "fleet_gap_per_seed": [m["devices"][name]["hv_gap"][-1] for m in fleet["per_seed"]],
                         "random_gap_per_seed": [m["hv_gap"][-1] for m in rand["per_seed"]]}
    return out


def main(argv=None) -> int:
    from fleetnas.host.search.options import parse_pairs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=300, help="evaluations per problem")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="LAT+ENERGY column pairs, comma-separated")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="fleet search option (JSON value); repeatable")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if not TABLE.is_file():
        print(f"skipped: {TABLE} not found (it ships with the repository: restore it with git checkout)")
        return 0
    problems = [p for p in args.problems.split(",") if p]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    result = run(problems, seeds, args.budget, args.batch, parse_pairs(args.option, "--option"))
    print(f"NB201 {ACCURACY} + two correlated cost columns (one class, three objectives), budget {args.budget}, "
          f"seeds {seeds[0]}-{seeds[-1]} (medians)")
    for name, r in result.items():
        print(f"\n{name}  (r {r['r']:.3f}, true front {r['true_front']})")
        print(f"{'budget':>8} {'fleet gap':>10} {'random gap':>11} {'ratio':>7} {'fleet rec.':>10} {'rand rec.':>10}")
        for b, fg, rg, fr, rr in zip(r["budgets"], r["fleet_gap"], r["random_gap"], r["fleet_recall"],
                                     r["random_recall"]):
            print(f"{b:>8} {fg:>10.2e} {rg:>11.2e} {rg / max(fg, 1e-12):>6.1f}x {fr:>10.1%} {rr:>10.1%}")
        ratio = r["random_gap"][-1] / max(r["fleet_gap"][-1], 1e-12)
        print(f"target: gap@{args.budget} at least {RATIO_TARGET:.0f}x smaller than random's: {ratio:.1f}x, "
              f"{'met' if ratio >= RATIO_TARGET else 'NOT met'}; host s per round median {r['round_s_median']:.2f},"
              f" max {r['round_s_max']:.2f}")
    if args.json:
        json.dump(result, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
