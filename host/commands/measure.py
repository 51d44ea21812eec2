"""`fleetnas measure MODEL --agent HOST:PORT`: upload a model if the agent lacks it, measure it, print the result."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fleetnas.host.commands.connection import add_agent_arguments, client_from_args

HELP = ("measure one .onnx/.tflite model on one agent "
        "(exit 0: OK; 3: UNSTABLE, numbers flagged; 1: the model failed on the device; 2: usage or agent error)")
EXIT_UNSTABLE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help=".onnx or .tflite file")
    add_agent_arguments(parser)
    parser.add_argument("--runtime", choices=("onnxruntime", "litert"),
                        help="default: onnxruntime for .onnx, litert for .tflite")
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


def run(args: argparse.Namespace) -> int:
    from fleetnas.agent.v1 import agent_pb2 as pb
    from fleetnas.host.errors import UsageError
    from fleetnas.host.fleet.client import default_runtime, message_to_dict, outcome_name

    if not args.model.is_file():
        raise UsageError(f"model file {args.model} does not exist")
    runtime = args.runtime or default_runtime(args.model)
    timing = pb.TimingConfig(warmup_runs=args.warmup_runs, warmup_s=args.warmup_s, blocks=args.blocks,
                             min_runs_per_block=args.min_runs, min_block_s=args.min_block_s,
                             timeout_s=args.timeout_s)
    options = pb.RuntimeOptions(threads=args.threads, execution_provider=args.execution_provider)
    with client_from_args(args) as client:
        sha, uploaded = client.ensure_model(args.model)
        result = client.measure(sha, runtime=runtime, options=options, timing=timing, energy=args.energy)
    outcome = outcome_name(result)
    if args.json:
        data = message_to_dict(result)
        data["uploaded"] = uploaded
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(format_result(args.model, result, uploaded))
    if outcome == "UNSTABLE":
        if not args.json:
            print(f"warning: UNSTABLE: {result.message}")
        return EXIT_UNSTABLE
    if outcome != "OK":
        if not args.json:
            print(f"error: {outcome}: {result.message}")
        return 1
    return 0


def format_result(model: Path, r, uploaded: bool) -> str:
    from fleetnas.host.fleet.client import outcome_name, stability_name
    lines = [f"{model.name} ({r.model_sha256[:12]}, {'uploaded' if uploaded else 'already on the agent'}) "
             f"on device {r.device_id[:12]}: {outcome_name(r)}"]
    if r.HasField("overall"):
        o, c, p = r.overall, r.config, r.phases
        lines += [
            f"  latency   median {o.median_ms:.4f} ms  min {o.min_ms:.4f}  p90 {o.p90_ms:.4f}  p99 {o.p99_ms:.4f}"
            f"  mean {o.mean_ms:.4f} ± {o.std_ms:.4f}  (n={o.n}, CV {100 * o.cv:.1f}%)",
            f"  blocks    {len(r.blocks)}, CV of block medians {100 * r.block_median_cv:.2f}% -> {stability_name(r)}"
            f"{' (measured twice)' if r.attempts > 1 else ''}",
            f"  phases    load {p.load_ms:.1f} ms, first inference {p.first_inference_ms:.2f} ms, "
            f"warm-up {p.warmup_runs} runs in {p.warmup_ms:.0f} ms",
            f"  runtime   {c.runtime} {c.runtime_version}, {c.execution_provider or 'CPU'}, "
            f"{c.intra_op_threads} thread(s), cpus {list(c.cpu_affinity)}, spinning {'on' if c.allow_spinning else 'off'}",
            f"  memory    peak RSS {r.peak_rss_bytes / 2**20:.1f} MiB; queue wait {r.queue_wait_ms:.0f} ms, "
            f"worker wall {r.run_wall_ms:.0f} ms",
        ]
    if r.HasField("energy"):
        e = r.energy
        lines.append(f"  energy    {e.energy_mj:.4f} mJ/inference (dynamic {e.dynamic_energy_mj:.4f}), mean "
                     f"{e.mean_power_w:.2f} W over {e.window_s:.1f} s, {e.sensor}")
    elif r.energy_unavailable_reason:
        lines.append(f"  energy    not measured: {r.energy_unavailable_reason}")
    if r.message and outcome_name(r) == "OK":
        lines.append(f"  note      {r.message}")
    return "\n".join(lines)
