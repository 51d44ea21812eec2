"""`fleetnas bench`: run a search tactic on a table of real measurements (or a Python objective) over several seeds."""
from __future__ import annotations

import argparse
import json
import sys

from fleetnas.host.search.registry import TACTICS

HELP = "benchmark a search tactic on a table with known ground truth (HV gap, front recall) or a Python objective"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--table", metavar="CSV",
                        help="one architecture per row, .csv or .csv.gz (e.g. benchmarks/data/nb201_devices.csv.gz)")
    source.add_argument("--problem", metavar="MODULE:CALLABLE",
                        help="a callable returning an object with space, objectives, evaluate(config)")
    parser.add_argument("--params", metavar="COL,COL,...", help="columns that identify an architecture (--table)")
    parser.add_argument("--objectives", metavar="COL:max,COL:min[,COL:min]",
                        help="objective columns and directions (--table)")
    parser.add_argument("--cell", metavar="FROM-TO,...",
                        help="the --params are the edges of a cell, e.g. NAS-Bench-201: 0-1,0-2,1-2,0-3,1-3,2-3 "
                             "(op 'none' = no edge); predictors then also see which ops are live (--table)")
    parser.add_argument("--tactic", default="linas", choices=TACTICS.names())
    parser.add_argument("--budget", type=int, required=True, help="distinct evaluations per seed")
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (0..K-1)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=20, help="configurations asked per round")
    parser.add_argument("--option", "--tactic-option", dest="option", action="append", default=[],
                        metavar="NAME=VALUE", help="tactic option (JSON value), e.g. --option n_init=30; repeatable")
    parser.add_argument("--devices", metavar="COL,COL,...",
                        help="fleet benchmark (--table): one latency/energy column per device class, or LAT+ENERGY "
                             "for a class with two costs (three objectives); the accuracy is the --objectives column "
                             "(e.g. --objectives acc:max); --budget is per device")
    parser.add_argument("--new-device", metavar="COL",
                        help="with --devices: search those first, then this device joins; its HV gap is reported "
                             "after 10, 20, 30, 50 and 100 of its own measurements")
    parser.add_argument("--new-device-validations", type=int, default=0, metavar="N",
                        help="with --new-device and --validations: the cap grows by N when the device joins (as "
                             "`fleetnas search --resume` with a larger --validations); default 0: it lives on what "
                             "the others validated")
    parser.add_argument("--fleet-mode", choices=["joint", "independent"], default="joint",
                        help="with --devices: one search for the whole fleet (joint) or one linas search per device")
    parser.add_argument("--validations", type=int, metavar="N",
                        help="with --devices: at most N distinct accuracy evaluations for the whole run (joint)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.commands.search import quiet_predictor_warnings
    from fleetnas.host.errors import UsageError
    from fleetnas.host.search import benchmark
    from fleetnas.host.search.cells import CellEdges
    from fleetnas.host.search.options import parse_pairs
    from fleetnas.host.search.pareto import Objective
    from fleetnas.host.search.tactic import tactic_options

    if args.budget < 1 or args.seeds < 1 or args.batch < 1:
        raise UsageError("--budget, --seeds and --batch must be positive")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    quiet_predictor_warnings()   # GP fits warn round after round; they would bury the table
    options = parse_pairs(args.option, "--option")
    if args.devices or args.new_device or args.validations is not None or args.new_device_validations:
        return _run_fleet(args, seeds, options)
    tactic_options(args.tactic, options)  # an unknown or invalid option fails now, naming the valid ones
    try:
        if args.table:
            if not args.params or not args.objectives:
                raise UsageError("--table needs --params COL,COL,... and --objectives COL:max,COL:min")
            objectives = [Objective.parse(t) for t in args.objectives.split(",")]
            if not 2 <= len(objectives) <= 3:
                raise UsageError(f"give 2 or 3 objectives, got {len(objectives)}")
            cell = CellEdges.parse(args.cell) if args.cell else None
            problem = benchmark.TableProblem.from_csv(args.table, [p.strip() for p in args.params.split(",")],
                                                      objectives, cell=cell)
            result = benchmark.bench_table(problem, args.tactic, args.budget, seeds, args.batch, options)
        else:
            problem = benchmark.load_problem(args.problem)
            result = benchmark.bench_python(problem, args.tactic, args.budget, seeds, args.batch, options)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        return _print_json(result)
    _print_table(result)
    return 0


def _print_json(result: dict) -> int:
    """The result as one JSON object (the per-seed detail stays out: scripts want the medians)."""
    json.dump({k: v for k, v in result.items() if k != "per_seed"}, sys.stdout)
    print()
    return 0


def _run_fleet(args: argparse.Namespace, seeds, options) -> int:
    from fleetnas.host.errors import UsageError
    from fleetnas.host.search import fleet_bench
    from fleetnas.host.search.cells import CellEdges
    from fleetnas.host.search.pareto import Objective

    if not args.devices:
        raise UsageError("--new-device and --validations need --devices COL,COL,... (one column per device class)")
    if not args.table or not args.params or not args.objectives:
        raise UsageError("--devices needs --table CSV, --params COL,COL,... and --objectives ACC:max")
    if args.validations is not None and args.validations < 1:
        raise UsageError("--validations must be positive")
    objectives = [Objective.parse(t) for t in args.objectives.split(",")]
    if len(objectives) != 1:
        raise UsageError("with --devices, --objectives names the accuracy only (e.g. acc:max); "
                         "the device columns are the costs")
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if args.new_device and args.new_device in devices:
        raise UsageError(f"--new-device {args.new_device} is already in --devices")
    all_devices = devices + ([args.new_device] if args.new_device else [])
    cell = CellEdges.parse(args.cell) if args.cell else None
    try:
        table = fleet_bench.FleetTable.from_csv(args.table, [p.strip() for p in args.params.split(",")],
                                                objectives[0], [fleet_bench.parse_device(d) for d in all_devices], cell=cell)
        result = fleet_bench.bench_fleet(table, devices, args.fleet_mode, args.budget, seeds, args.batch,
                                         args.validations, options, args.new_device,
                                         new_device_validations=args.new_device_validations)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        return _print_json(result)
    print(f"fleet search ({result['mode']}), {len(seeds)} seeds, budget {args.budget} measurements per device; "
          f"validations {result['validations_median']:.0f} (median); host s per round: median "
          f"{result['round_s_median']:.2f}, max {result['round_s_max']:.2f}")
    for name, d in result["devices"].items():
        pair = f"; 3 objectives, r {d['correlation']:.3f} between its costs" if d["correlation"] is not None else ""
        print(f"{name} (true front {d['true_front_size']}{pair})")
        print(f"{'budget':>8} {'HV gap':>10} {'recall':>8}")
        for b, gap, rec in zip(result["budgets"], d["hv_gap_median"], d["recall_median"]):
            print(f"{b:>8} {gap:>10.2e} {rec:>8.1%}")
    if "new_device" in result:
        nd = result["new_device"]
        print(f"new device {nd['name']} (validations it added: {nd['new_validations_median']:.0f}; its HV gap if it "
              f"measured every config known before it joined: {nd['known_gap_median']:.2e})")
        print(f"{'own meas':>8} {'HV gap':>10} {'recall':>8}")
        for b, gap, rec in zip(nd["budgets"], nd["hv_gap_median"], nd["recall_median"]):
            print(f"{b:>8} {gap:>10.2e} {rec:>8.1%}")
    return 0


def _print_table(result) -> None:
    if "hv_gap_median" in result:
        print(f"tactic {result['tactic']}, {len(result['seeds'])} seeds, true front {result['true_front_size']} "
              f"(HV {result['hv_true']:.6f}); medians over seeds")
        print(f"{'budget':>8} {'HV gap':>10} {'recall':>8}")
        for b, gap, rec in zip(result["budgets"], result["hv_gap_median"], result["recall_median"]):
            print(f"{b:>8} {gap:>10.2e} {rec:>8.1%}")
        evals = result["evals_to_gap_1e-3_median"]
        print(f"evaluations to HV gap <= 1e-3 (median): {'not reached' if evals is None else int(evals)}")
    else:
        print(f"tactic {result['tactic']}, {len(result['seeds'])} seeds; hypervolume (normalised over all "
              "evaluations, reference 1.1), median over seeds")
        print(f"{'budget':>8} {'HV':>10}")
        for b, hv in zip(result["budgets"], result["hv_median"]):
            print(f"{b:>8} {hv:>10.6f}")
