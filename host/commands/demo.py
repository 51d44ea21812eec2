"""`fleetnas demo [--out DIR]`: the README's first command.

A local agent, the built-in `tiny` super-network with its real accuracy on held-out digits, real latency measured
by onnxruntime on this machine, a short seeded search, then the front as a table and a plot. A few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fleetnas.host.search.registry import TACTICS

HELP = "run a short real search on this machine (local agent, tiny super-network) and print the front"
DEMO_BUDGET = 30
# linas fits predictors after 6 random configurations (its default, 20, exceeds the demo's budget), then refits after
# every 3 new results (not every one): two predictor rounds keep the demo's host time small on 2 cores.
DEMO_TACTIC_OPTIONS = ["n_init=6", "refit_after=3"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("fleetnas-demo"), help="run folder (default ./fleetnas-demo)")
    parser.add_argument("--budget", type=int, default=DEMO_BUDGET,
                        help=f"candidates to measure (default {DEMO_BUDGET})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tactic", default="linas", choices=TACTICS.names())
    parser.add_argument("--weights", type=Path, help="tiny checkpoint (default: the committed weights)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted demo in --out")
    parser.add_argument("--no-progress", action="store_true",
                        help="no live display: plain progress lines (as when stdout is not a terminal)")
    parser.add_argument("--json", action="store_true", help="print the report JSON at the end")


def run(args: argparse.Namespace) -> int:
    import time

    from fleetnas.host.commands.search import add_timing_arguments, run_search
    from fleetnas.host.errors import UsageError

    if args.out.exists() and any(args.out.iterdir()) and not args.resume:
        raise UsageError(f"{args.out} is not empty: pass --out NEWDIR, or --resume to continue that demo")
    timing = argparse.ArgumentParser(add_help=False)
    add_timing_arguments(timing)
    search_args = timing.parse_args([])
    for name, value in dict(supernet="tiny", weights=args.weights, devices="local", objectives="accuracy,latency",
                            budget=args.budget, seed=args.seed, out=args.out, resume=args.resume, tactic=args.tactic,
                            tactic_option=DEMO_TACTIC_OPTIONS if args.tactic == "linas" else [],
                            runtime="onnxruntime", threads=1, execution_provider="", measurement_cache=None,
                            no_measurement_cache=True, export_dir=None, no_progress=args.no_progress,
                            allow_random_weights=False, json=args.json).items():
        setattr(search_args, name, value)
    t0 = time.monotonic()
    data = run_search(search_args)
    if args.json:
        data.pop("tables", None)
        data["wall_s"] = round(time.monotonic() - t0, 1)
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(f"demo finished in {time.monotonic() - t0:.0f} s; plot: {args.out / 'local' / 'front.png'}")
    return 0
