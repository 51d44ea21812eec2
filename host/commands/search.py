"""`fleetnas search`: search a super-network against a fleet; per device class a Pareto front in the --out folder."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

HELP = "search a super-network on a fleet of agents: one Pareto front per device class"


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    from fleetnas.host.fleet.contract import QUICK_TIMING
    t = parser.add_argument_group("timing of each measurement (defaults: short but methodical)")
    t.add_argument("--warmup-runs", type=int, default=QUICK_TIMING.warmup_runs)
    t.add_argument("--warmup-s", type=float, default=QUICK_TIMING.warmup_s)
    t.add_argument("--blocks", type=int, default=QUICK_TIMING.blocks)
    t.add_argument("--min-runs", type=int, default=QUICK_TIMING.min_runs_per_block, help="inferences per block")
    t.add_argument("--min-block-s", type=float, default=QUICK_TIMING.min_block_s)
    t.add_argument("--timeout-s", type=float, default=QUICK_TIMING.timeout_s, help="worker timeout per model")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--supernet", required=True, help="super-network name (see `fleetnas supernets`)")
    parser.add_argument("--weights", type=Path, help="super-network checkpoint (default: its built-in weights)")
    parser.add_argument("--data", metavar="DIR|module:callable",
                        help="accuracy dataset: an image folder (one sub-folder per class) or a Python callable "
                             "f(resolution) -> (images, labels) batches; tiny uses its built-in digits split")
    parser.add_argument("--devices", required=True, metavar="FILE|local",
                        help="devices.toml, or `local` to start an agent on this machine for the run")
    parser.add_argument("--objectives", default="accuracy,latency", help="accuracy,latency[,energy]")
    parser.add_argument("--budget", type=int, required=True, help="candidates measured per device class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="run folder (journal, fronts, plots)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--tactic", default="linas", help="linas | nsga2 | random")
    parser.add_argument("--tactic-option", action="append", default=[], metavar="KEY=VALUE",
                        help="tactic option (JSON value), e.g. --tactic-option n_init=8; repeatable")
    parser.add_argument("--runtime", default="onnxruntime",
                        help="runtime on the boards, as `fleetnas devices check` lists them (default onnxruntime); "
                             "candidates are exported in the model format the boards load with it (e.g. litert: "
                             ".tflite, which needs pip install 'fleetnas[tflite-export]' on the host)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: the agent's big cluster)")
    parser.add_argument("--execution-provider", default="", help="onnxruntime EP (default CPU)")
    parser.add_argument("--measurement-cache", type=Path,
                        help="cross-run measurement cache (default ~/.cache/fleetnas/measurements.sqlite)")
    parser.add_argument("--no-measurement-cache", action="store_true",
                        help="measure (and evaluate accuracy) everything again")
    parser.add_argument("--export-dir", type=Path, help="where sub-networks are exported (default DIR/models)")
    parser.add_argument("--no-progress", action="store_true", help="no live display (logs only)")
    parser.add_argument("--json", action="store_true", help="print the report JSON at the end")
    add_timing_arguments(parser)


def runtime_from_args(args: argparse.Namespace, energy: bool):
    from fleetnas.host.fleet.contract import RuntimeConfig, TimingConfig
    timing = TimingConfig(warmup_runs=args.warmup_runs, warmup_s=args.warmup_s, blocks=args.blocks,
                          min_runs_per_block=args.min_runs, min_block_s=args.min_block_s, timeout_s=args.timeout_s)
    return RuntimeConfig(runtime=args.runtime, threads=args.threads, execution_provider=args.execution_provider,
                         energy=energy, timing=timing)


def check_fleet_runtime(registry, runtime: str) -> None:
    """Fail now, not after the first accuracy evaluation: every answering board offers ``runtime`` and this host
    can export a format they load with it."""
    from fleetnas.host.export.registry import exporter_for
    from fleetnas.host.fleet.formats import ask_fleet, runtime_formats
    infos = ask_fleet(registry)
    if infos:   # none answering: the run waits for them (and says so) as it would mid-run
        exporter_for(runtime_formats(infos, runtime), runtime).check()


def quiet_predictor_warnings() -> None:
    """Predictor fits warn about GP kernel bounds and iteration limits round after round: noise on a live display."""
    import warnings
    try:
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:
        return
    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def parse_tactic_options(items) -> tuple:
    from fleetnas.host.errors import UsageError
    options = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tactic-option {item!r}: write KEY=VALUE, e.g. n_init=8")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return tuple(sorted(options.items()))


@contextlib.contextmanager
def open_fleet(devices: str, run_dir: Path):
    if devices == "local":
        from fleetnas.host.fleet.local import local_agent
        with local_agent() as registry:
            yield registry
    else:
        from fleetnas.host.fleet.devices import load_devices
        yield load_devices(Path(devices))


def run_search(args: argparse.Namespace, *, print_tables: bool = True) -> dict:
    from fleetnas.host.errors import UsageError
    from fleetnas.host.fleet.measurements import MeasurementStore, default_cache_path
    from fleetnas.host.report.render import write_report
    from fleetnas.host.run.controller import SearchController, SearchSettings, parse_objectives
    from fleetnas.host.supernets.base import get_supernet

    quiet_predictor_warnings()
    objectives = parse_objectives(args.objectives)
    settings = SearchSettings(supernet=args.supernet, objectives=objectives, budget=args.budget, seed=args.seed,
                              tactic=args.tactic, runtime=runtime_from_args(args, "energy" in objectives),
                              tactic_options=parse_tactic_options(args.tactic_option),
                              data=getattr(args, "data", None) or "")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    supernet = get_supernet(args.supernet, weights=args.weights)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = None if args.no_measurement_cache else MeasurementStore(args.measurement_cache or default_cache_path())
    try:
        with open_fleet(args.devices, args.out) as registry:
            check_fleet_runtime(registry, settings.runtime.runtime)
            controller = SearchController(settings, supernet, registry, args.out, cache, resume=args.resume,
                                          export_dir=getattr(args, "export_dir", None))
            try:
                if not args.no_progress and not args.json and sys.stdout.isatty():
                    from fleetnas.host.run.progress import LiveProgress
                    with LiveProgress() as progress:
                        controller.on_update = progress
                        controller.run()
                else:
                    controller.run()
            finally:
                controller.close()
    finally:
        if cache is not None:
            cache.close()
    data = write_report(args.out)
    if print_tables and not args.json:
        for table in data["tables"].values():
            print(table)
        print(f"{data['candidates_evaluated']} candidates evaluated, {data['measurements']} measured on boards, "
              f"{data['cache_hits']} from the measurement cache; results in {args.out}")
        for c, errors in data["errors"].items():
            print(f"{c}: {data['failed'][c]} candidate(s) failed, e.g. {errors[0]}")
    return data


def run(args: argparse.Namespace) -> int:
    data = run_search(args)
    if args.json:
        data.pop("tables", None)
        print(json.dumps(data, indent=2, sort_keys=True))
    return 0
