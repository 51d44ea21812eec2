"""`fleetnas measure MODEL --agent HOST[:PORT]`: upload a model if the agent lacks it, measure it, print the result."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fleetnas.host.commands.connection import add_agent_arguments, client_from_args

HELP = ("measure one model file (.onnx, .tflite, .pte, ...) on one agent "
        "(exit 0: OK; 3: UNSTABLE, numbers flagged; 1: the model failed on the device; 2: usage or agent error)")
EXIT_UNSTABLE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="model file, e.g. .onnx, .tflite or .pte")
    add_agent_arguments(parser)
    parser.add_argument("--runtime", help="a runtime the agent offers (see `fleetnas devices check`); default: the "
                                          "first the agent lists that loads the model's format")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: the agent picks its big cluster)")
    parser.add_argument("--execution-provider", default="", help="onnxruntime EP or LiteRT delegate (default CPU)")
    parser.add_argument("--energy", action="store_true", help="also measure energy per inference (needs a sensor)")
    timing = parser.add_argument_group("timing (0 = the agent's default)")
    timing.add_argument("--warmup-runs", type=int, default=0)
    timing.add_argument("--warmup-s", type=float, default=0.0)
    timing.add_argument("--blocks", type=int, default=0)
    timing.add_argument("--min-runs", type=int, default=0, help="minimum inferences per block")
    timing.add_argument("--min-block-s", type=float, default=0.0)
    timing.add_argument("--timeout-s", type=float, default=0.0, help="worker timeout")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")


def pick_runtime(info, model_format: str, wanted, agent: str) -> str:
    """``wanted`` if the agent offers it for ``model_format``, else the first of its runtimes that loads it."""
    from fleetnas.host.errors import UsageError
    offers = ", ".join(r.describe() for r in info.available_runtimes) or "no runtime"
    loads = [r.name for r in info.available_runtimes if model_format in r.formats]
    if wanted is None and loads:
        return loads[0]
    if wanted in loads:
        return wanted
    what = f"runtime {wanted!r} for {model_format} models" if wanted else f"a runtime for {model_format} models"
    raise UsageError(f"agent {agent} (device {info.device_id[:12]}) offers no {what}; it offers {offers}")


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.errors import UsageError
    from fleetnas.host.export.registry import format_of_file
    from fleetnas.host.fleet.contract import RuntimeConfig, TimingConfig

    if not args.model.is_file():
        raise UsageError(f"model file {args.model} does not exist")
    model_format = format_of_file(args.model)
    timing = TimingConfig(warmup_runs=args.warmup_runs or None, warmup_s=args.warmup_s or None,
                          blocks=args.blocks or None, min_runs_per_block=args.min_runs or None,
                          min_block_s=args.min_block_s or None, timeout_s=args.timeout_s or None)
    with client_from_args(args) as client:
        runtime = pick_runtime(client.device_info(), model_format, args.runtime, client.address)
        config = RuntimeConfig(runtime=runtime, threads=args.threads, execution_provider=args.execution_provider,
                               energy=args.energy, timing=timing)
        sha, uploaded = client.ensure_model(args.model)
        result = client.measure(sha, config)
    if args.json:
        print(json.dumps(dict(result.response, uploaded=uploaded), indent=2, sort_keys=True))
    else:
        print(format_result(args.model, result, uploaded))
    if result.outcome == "UNSTABLE":
        if not args.json:
            print(f"warning: UNSTABLE: {result.message}")
        return EXIT_UNSTABLE
    if result.outcome != "OK":
        if not args.json:
            print(f"error: {result.outcome}: {result.message}")
        return 1
    return 0


def format_result(model: Path, r, uploaded: bool) -> str:
    """Human-readable lines for a MeasureResult. The CV shown is the blocks' (what the stability verdict uses);
    single inferences spread far more (cold caches, scheduler), shown as the mean's ± only."""
    lines = [f"{model.name} ({r.model_sha256[:12]}, {'uploaded' if uploaded else 'already on the agent'}) "
             f"on device {r.device_id[:12]}: {r.outcome}"]
    if r.overall is not None:
        o, c, p = r.overall, r.config, r.phases
        lines += [
            f"  latency   median {o.median_ms:.4f} ms  min {o.min_ms:.4f}  p90 {o.p90_ms:.4f}  p99 {o.p99_ms:.4f}"
            f"  mean {o.mean_ms:.4f} ± {o.std_ms:.4f}  (n={o.n})",
            f"  CV        {100 * r.block_median_cv:.2f} % (CV of block medians, {len(r.blocks)} blocks) -> "
            f"{r.stability}{' (measured twice)' if r.attempts > 1 else ''}",
            f"  phases    load {p.load_ms:.1f} ms, first inference {p.first_inference_ms:.2f} ms, "
            f"warm-up {p.warmup_runs} runs in {p.warmup_ms:.0f} ms",
            f"  runtime   {c.runtime} {c.runtime_version}, {c.execution_provider or 'CPU'}, "
            f"{c.intra_op_threads} thread(s), cpus {list(c.cpu_affinity)}, spinning {'on' if c.allow_spinning else 'off'}",
            f"  memory    peak RSS {r.peak_rss_bytes / 2**20:.1f} MiB; queue wait {r.queue_wait_ms:.0f} ms, "
            f"worker wall {r.run_wall_ms:.0f} ms",
        ]
    if r.energy is not None:
        e = r.energy
        lines.append(f"  energy    {e.energy_mj:.4f} mJ/inference (dynamic {e.dynamic_energy_mj:.4f}), mean "
                     f"{e.mean_power_w:.2f} W over {e.window_s:.1f} s, {e.sensor}")
    elif r.energy_unavailable_reason:
        lines.append(f"  energy    not measured: {r.energy_unavailable_reason}")
    if r.message and r.outcome == "OK":
        lines.append(f"  note      {r.message}")
    return "\n".join(lines)
