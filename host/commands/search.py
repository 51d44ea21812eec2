"""`fleetnas search`: search a super-network against a fleet; per device class a Pareto front in the --out folder."""
from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Optional

from fleetnas.host.commands.listen import add_listen_arguments
from fleetnas.host.search.registry import TACTICS

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
    parser.add_argument("--allow-random-weights", action="store_true",
                        help="search a super-network that has no --weights anyway (latency is real, accuracy is not)")
    parser.add_argument("--data", metavar="DIR|module:callable",
                        help="accuracy dataset: an image folder (one sub-folder per class) or a Python callable "
                             "f(resolution) -> (images, labels) batches; tiny uses its built-in digits split")
    parser.add_argument("--devices", required=True, metavar="FILE|local",
                        help="devices.toml, or `local` to start an agent on this machine for the run")
    parser.add_argument("--objectives", default="accuracy,latency", help="accuracy,latency[,energy]")
    parser.add_argument("--budget", type=int, required=True, help="candidates measured per device class")
    parser.add_argument("--fleet-mode", default="independent", choices=("independent", "joint"),
                        help="independent: one search per device class; joint: one search for the whole fleet, each "
                             "accuracy evaluation serving every class (a class added to the devices file later joins "
                             "a finished run with --resume); --tactic-option then sets the joint search's options")
    parser.add_argument("--validations", type=int, metavar="N",
                        help="joint only: at most N accuracy evaluations for the whole run (default: no cap); "
                             "--resume with another N raises or lowers the cap (e.g. to give a class that joins a "
                             "finished run validations of its own), without it the run keeps its cap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="run folder (journal, fronts, plots)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--tactic", default="linas", choices=TACTICS.names())
    parser.add_argument("--tactic-option", action="append", default=[], metavar="KEY=VALUE",
                        help="tactic option (JSON value), e.g. --tactic-option n_init=8; repeatable")
    parser.add_argument("--runtime", default="onnxruntime",
                        help="runtime on the boards, as `fleetnas devices check` lists them (default onnxruntime); "
                             "candidates are exported in the model format the boards load with it (e.g. litert: "
                             ".tflite, which needs pip install 'fleetnas[tflite-export]' on the host)")
    from fleetnas.host.export.registry import PRECISIONS
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="numeric precision of the models measured and deployed; int8: statically quantized "
                             "(calibrated on the accuracy data), and accuracy is the int8 model's (default fp32)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: the agent's big cluster)")
    parser.add_argument("--execution-provider", default="", help="onnxruntime EP (default CPU)")
    parser.add_argument("--measurement-cache", metavar="FILE|URL",
                        help="cross-run measurement cache (default ~/.cache/fleetnas/measurements.sqlite), or a "
                             "postgresql://USER@HOST/DB URL several hosts share (pip install 'fleetnas[postgresql]')")
    parser.add_argument("--accuracy-cache", metavar="FILE|URL",
                        help="cross-run accuracy cache, a file or a postgresql:// URL (default: with the measurement "
                             "cache)")
    parser.add_argument("--no-measurement-cache", action="store_true",
                        help="measure (and evaluate accuracy) everything again")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="extract, export and evaluate sub-networks on a Ray cluster (its head node's ADDRESS, "
                             "e.g. 10.0.0.5:6379; alone: a Ray instance on this machine); pip install 'fleetnas[ray]' "
                             "here and on every node")
    parser.add_argument("--export-dir", type=Path, help="where sub-networks are exported (default DIR/models)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no live display: plain progress lines (as when stdout is not a terminal)")
    parser.add_argument("--json", action="store_true", help="print the report JSON at the end")
    add_timing_arguments(parser)
    add_listen_arguments(parser)


def runtime_from_args(args: argparse.Namespace, energy: bool):
    from fleetnas.host.fleet.contract import RuntimeConfig, TimingConfig
    timing = TimingConfig(warmup_runs=args.warmup_runs, warmup_s=args.warmup_s, blocks=args.blocks,
                          min_runs_per_block=args.min_runs, min_block_s=args.min_block_s, timeout_s=args.timeout_s)
    return RuntimeConfig(runtime=args.runtime, threads=args.threads, execution_provider=args.execution_provider,
                         energy=energy, timing=timing)


def quiet_predictor_warnings() -> None:
    """Predictor fits warn about GP kernel bounds and iteration limits round after round: noise on a live display."""
    import warnings
    try:
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:
        return
    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def parse_tactic_options(items, tactic: str = "") -> tuple:
    """``--tactic-option`` pairs as sorted (name, value) items; checked against ``tactic``'s options when given."""
    from fleetnas.host.search.options import parse_pairs
    from fleetnas.host.search.tactic import tactic_options
    options = parse_pairs(items, "--tactic-option")
    if tactic:
        tactic_options(tactic, options)  # an unknown or invalid option fails before the fleet starts
    return tuple(sorted(options.items()))


@contextlib.contextmanager
def open_fleet(devices: str, run_dir: Path, args: Optional[argparse.Namespace] = None):
    if devices == "local":
        from fleetnas.host.fleet.local import local_agent
        with local_agent() as registry:
            yield registry
    else:
        from fleetnas.host.commands.listen import dial_in_hub
        from fleetnas.host.fleet.devices import load_devices
        registry = load_devices(Path(devices))
        with dial_in_hub(args, registry, announce=True):
            yield registry


CACHE_OPTIONS = ("measurement_cache", "accuracy_cache")   # may be URLs: printed with the password masked


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: every option that differs from its default, plus --resume."""
    from fleetnas.host.store.caches import describe
    defaults = argparse.ArgumentParser(add_help=False)
    add_arguments(defaults)
    words = ["fleetnas", "search"]
    for action in defaults._actions:
        if not action.option_strings or action.dest in ("out", "resume"):
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:                 # a switch
            words.append(flag)
        elif isinstance(value, list):         # repeatable (--tactic-option)
            words += [w for item in value for w in (flag, str(item))]
        else:
            words += [flag, describe(value) if action.dest in CACHE_OPTIONS else str(value)]
    words += ["--resume", "--out", str(args.out)]
    return " ".join(shlex.quote(w) for w in words)


def validation_cap(args: argparse.Namespace) -> Optional[int]:
    """--validations, or on --resume without it the cap the run has (a resume changes it only when told to)."""
    cap = getattr(args, "validations", None)
    if cap is None and args.resume:
        from fleetnas.host.errors import UsageError
        from fleetnas.host.store.run_store import RunStore
        try:
            return RunStore.read_settings(args.out).get("validations")
        except UsageError:
            return None      # not a run folder: the resume itself says so
    return cap


def run_search(args: argparse.Namespace, *, print_tables: bool = True) -> dict:
    from fleetnas.host.errors import UsageError
    from fleetnas.host.report.render import fleet_lines, replayed_note, write_report
    from fleetnas.host.run.controller import SearchController, SearchSettings, parse_objectives
    from fleetnas.host.run.fleet_loop import check_fleet_mode
    from fleetnas.host.run.preflight import preflight
    from fleetnas.host.run.progress import search_progress
    from fleetnas.host.store.caches import open_accuracy_cache, open_measurement_cache
    from fleetnas.host.supernets.base import check_weights, get_supernet

    quiet_predictor_warnings()
    objectives = parse_objectives(args.objectives)
    fleet_mode = getattr(args, "fleet_mode", "independent")
    settings = SearchSettings(supernet=args.supernet, objectives=objectives, budget=args.budget, seed=args.seed,
                              tactic=args.tactic, runtime=runtime_from_args(args, "energy" in objectives),
                              tactic_options=parse_tactic_options(
                                  args.tactic_option, args.tactic if fleet_mode == "independent" else ""),
                              data=getattr(args, "data", None) or "", fleet_mode=fleet_mode,
                              validations=validation_cap(args),
                              precision=getattr(args, "precision", "fp32"))
    check_fleet_mode(settings)   # before the super-network loads and the fleet starts
    host_work = None
    if getattr(args, "ray", None):
        from fleetnas.host.scale.ray_executor import RayHostWork, check_ray
        check_ray()              # the install hint before any work

        def host_work(spec):
            return RayHostWork(spec, args.ray)
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    supernet = get_supernet(args.supernet, weights=args.weights)
    check_weights(supernet, getattr(args, "allow_random_weights", False))
    if args.budget > supernet.space.size:
        print(f"warning: --budget {args.budget} is more than the {supernet.space.size} sub-networks of "
              f"{args.supernet}: each class's search ends once it has measured every one", file=sys.stderr)
    cache = accuracy_cache = None
    if not args.no_measurement_cache:
        cache = open_measurement_cache(args.measurement_cache)
        if getattr(args, "accuracy_cache", None):
            try:
                accuracy_cache = open_accuracy_cache(args.accuracy_cache)
            except BaseException:
                cache.close()
                raise
    try:
        with open_fleet(args.devices, args.out, args) as registry:
            preflight(registry, objectives, settings.runtime.runtime, precision=settings.precision)
            # the run folder is made here, once every setting checked out; a start that fails removes it again
            controller = SearchController(settings, supernet, registry, args.out, cache, resume=args.resume,
                                          export_dir=getattr(args, "export_dir", None),
                                          accuracy_cache=accuracy_cache, host_work=host_work)
            if args.resume:
                print(controller.resume_summary(), file=sys.stderr)
            try:
                with search_progress(args.no_progress, quiet=args.json) as progress:
                    controller.on_update = progress
                    if progress is not None:
                        progress(controller)   # shown from the start: the first exports can take a while
                    controller.run()
            except KeyboardInterrupt:
                how = ("nothing had been sent to the fleet, so nothing was kept; run the same command again"
                       if controller.discarded else f"continue with {resume_command(args)}")
                raise SearchInterrupted(f"interrupted: {how}") from None
            finally:
                controller.close()
    finally:
        if cache is not None:
            cache.close()
        if accuracy_cache is not None:
            accuracy_cache.close()
    data = write_report(args.out)
    if print_tables and not args.json:
        for table in data["tables"].values():
            print(table)
        print(f"{data['candidates_evaluated']} candidates evaluated, {data['measurements']} measured on boards, "
              f"{data['cache_hits']} from the measurement cache{replayed_note(data)}; results in {args.out}")
        for c, errors in data["errors"].items():
            print(f"{c}: {data['failed'][c]} candidate(s) failed, e.g. {errors[0]}")
        for line in fleet_lines(data):
            print(line)
    return data


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the message says how to continue it."""


def run(args: argparse.Namespace) -> int:
    try:
        data = run_search(args)
    except SearchInterrupted as exc:
        print(exc, file=sys.stderr)
        return 130
    if args.json:
        data.pop("tables", None)
        print(json.dumps(data, indent=2, sort_keys=True))
    return 0
