"""Does the agent report what the runtime really does?

Starts a real ``fleetnas-agent serve`` on 127.0.0.1 (port 0), then for MLP models from ~0.1 ms to ~50 ms, in both
formats, measures each model through the agent (gRPC -> queue -> fresh worker) and *directly in this process* with
the raw runtime API and the same options (threads, inter-op 1, sequential, no spinning, the same CPU affinity the
agent used, the same warm-up and blocks). Rounds run in ABBA order (direct, agent, agent, direct) so linear drift
cancels; ratio = mean agent median / mean direct median, target 0.97-1.03. "direct spread" (the direct runs against
each other) is the noise floor of that comparison on this machine at that moment; "min ratio" (fastest agent run vs
fastest direct run) is a cross-check that neighbours' load barely moves.

Also printed: per-call overhead outside the timed regions ("start+load": worker wall time minus its timed phases,
i.e. process start or spare hand-over, runtime import, session creation, exit; "rpc extra": the client's whole call
minus the timed phases, so it adds gRPC, upload checks, queueing and anything the service runs around a
measurement such as a drift-canary reference run), the agent's idle RSS (target < 100 MB) and serve-to-ready time (target < 2 s).

    nice python benchmarks/agent_fidelity.py [--quick] [--rounds N] [--json] [--threads 1] [--formats onnx,tflite]
    nice python benchmarks/agent_fidelity.py --quick --formats pte --models mlp~0.1ms,mlp~1ms   # ExecuTorch

pte (ExecuTorch, the [executorch] extra): the same MLPs built in torch and lowered to XNNPACK here; the direct run
uses ExecuTorch's runtime in this process with its thread pool reset to --threads, as the agent's worker does.

On a shared machine every figure carries the neighbours' noise: run it under ``nice`` on an otherwise idle board
for numbers worth quoting.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from fleetnas.agent.measure.reference_model import build_onnx_bytes, build_tflite_bytes

# name -> (rows, width, depth) of the reference MLP; single-thread medians measured on a 2-core x86 VM.
MODELS: Dict[str, Tuple[int, int, int]] = {
    "mlp~0.1ms": (4, 512, 3),
    "mlp~1ms": (16, 512, 5),
    "mlp~5ms": (64, 1024, 1),
    "mlp~50ms": (64, 1024, 11),
}
FULL = dict(warmup_runs=10, warmup_s=2.0, blocks=5, min_runs_per_block=20, min_block_s=1.0)
QUICK = dict(warmup_runs=10, warmup_s=0.5, blocks=3, min_runs_per_block=20, min_block_s=0.3)


def start_agent(workdir: Path) -> Tuple[subprocess.Popen, int, float]:
    """(process, port, seconds from spawn until the health check answers SERVING)."""
    from fleetnas.host.fleet.client import AgentClient

    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0",
                             "--port-file", str(port_file), "--cache-dir", str(workdir / "cache"),
                             "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None:
            raise SystemExit(f"agent exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() - t0 > 60:
            proc.kill()
            raise SystemExit("agent did not write its port file within 60 s")
        time.sleep(0.005)
    port = int(port_file.read_text())
    client = AgentClient(f"127.0.0.1:{port}")
    while not client.health(timeout_s=1.0):
        time.sleep(0.005)
    ready_s = time.monotonic() - t0
    client.close()
    return proc, port, ready_s


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


RUNTIME_OF = {"onnx": "onnxruntime", "tflite": "litert", "pte": "executorch"}


def model_bytes(fmt: str, rows: int, width: int, depth: int) -> bytes:
    if fmt == "onnx":
        return build_onnx_bytes(rows, width, depth)
    if fmt == "tflite":
        return build_tflite_bytes(rows, width, depth)
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)   # the reference MLP's shape: depth x (Linear width->width, ReLU)
    layers = [m for _ in range(depth) for m in (torch.nn.Linear(width, width), torch.nn.ReLU())]
    program = torch.export.export(torch.nn.Sequential(*layers).eval(), (torch.zeros(rows, width),))
    return bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)


# ---------------------------------------------------------------------------------- direct, in-process baseline
def direct_runner(path: Path, fmt: str, threads: int, shape: Tuple[int, int]):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if fmt == "pte":
        import functools

        import executorch.extension.pybindings.portable_lib as portable
        import torch
        from executorch.runtime import Runtime
        portable._unsafe_reset_threadpool(threads)
        method = Runtime.get().load_program(path).load_method("forward")
        return functools.partial(method.execute, [torch.from_numpy(x)]), method
    if fmt == "onnx":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        feeds = {"x": x}
        return lambda: session.run(names, feeds), session
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    return interp.invoke, interp


def time_directly(path: Path, fmt: str, threads: int, affinity: Tuple[int, ...], shape,
                  timing: dict) -> Tuple[float, float]:
    """(median, min) ms over all timed runs, with the agent's warm-up and block rules, pinned like the agent's worker."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, affinity)
    try:
        run, _keep = direct_runner(path, fmt, threads, shape)
        run()
        clock = time.perf_counter_ns
        start, n = clock(), 0
        while n < timing["warmup_runs"] or clock() - start < timing["warmup_s"] * 1e9:
            run()
            n += 1
        gc.collect()
        gc.disable()
        times: List[int] = []
        for _ in range(timing["blocks"]):
            block_start, count = clock(), 0
            while True:
                t0 = clock()
                run()
                t1 = clock()
                times.append(t1 - t0)
                count += 1
                if count >= timing["min_runs_per_block"] and t1 - block_start >= timing["min_block_s"] * 1e9:
                    break
        gc.enable()
        return float(np.median(times)) / 1e6, min(times) / 1e6
    finally:
        os.sched_setaffinity(0, previous)


# ---------------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter warm-up and blocks (noisier)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--formats", default="onnx,tflite", help="onnx, tflite, pte (comma-separated)")
    parser.add_argument("--models", default=",".join(MODELS), help="which reference MLPs (comma-separated)")
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds per model (more: less noise)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    timing = QUICK if args.quick else FULL

    from fleetnas.agent.v1 import agent_pb2 as pb
    from fleetnas.host.fleet.client import WireClient as AgentClient, outcome_name

    work = Path(tempfile.mkdtemp(prefix="fleetnas-fidelity-"))
    ready = []
    for _ in range(2):  # a cold start (first import from disk) and a warm one
        proc, port, ready_s = start_agent(work)
        ready.append(ready_s)
        if len(ready) < 2:
            proc.terminate()
            proc.wait(timeout=30)
    time.sleep(1.0)
    idle_before = rss_mb(proc.pid)
    client = AgentClient(f"127.0.0.1:{port}")
    rows: List[dict] = []
    try:
        for fmt in args.formats.split(","):
            runtime = RUNTIME_OF[fmt]
            for name, (r, w, d) in MODELS.items():
                if name not in args.models.split(","):
                    continue
                path = work / f"{name}.{fmt}"
                path.write_bytes(model_bytes(fmt, r, w, d))
                sha, _ = client.ensure_model(path)
                agent_ms, direct_ms, agent_min, direct_min, overheads, affinity = [], [], [], [], [], None
                for order in ("direct", "agent", "agent", "direct") * args.rounds:
                    if order == "agent":
                        t_call = time.monotonic()
                        res = client.measure(sha, runtime=runtime, options=pb.RuntimeOptions(threads=args.threads),
                                             timing=pb.TimingConfig(timeout_s=600, **timing))
                        call_ms = (time.monotonic() - t_call) * 1e3
                        if outcome_name(res) not in ("OK", "UNSTABLE"):
                            raise SystemExit(f"{name} {fmt}: {outcome_name(res)} {res.message}")
                        agent_ms.append(res.overall.median_ms)
                        agent_min.append(res.overall.min_ms)
                        affinity = tuple(res.config.cpu_affinity)
                        ph = res.phases
                        timed = ph.first_inference_ms + ph.warmup_ms + ph.steady_ms
                        overheads.append({"start_plus_load_ms": res.run_wall_ms - timed,
                                          "load_ms": ph.load_ms, "rpc_total_extra_ms": call_ms - timed})
                    else:
                        cpus = affinity or tuple(sorted(os.sched_getaffinity(0)))
                        median_ms, min_ms = time_directly(path, fmt, args.threads, cpus, (r, w), timing)
                        direct_ms.append(median_ms)
                        direct_min.append(min_ms)
                ratio = statistics.mean(agent_ms) / statistics.mean(direct_ms)
                rows.append({"model": name, "format": fmt, "runtime": runtime, "dims": [r, w, d],
                             "agent_median_ms": statistics.mean(agent_ms), "direct_median_ms": statistics.mean(direct_ms),
                             "ratio": ratio, "within_target": 0.97 <= ratio <= 1.03,
                             # direct vs direct: the noise floor; a ratio cannot be judged more finely than this
                             "direct_spread": max(direct_ms) / min(direct_ms) - 1,
                             # minimums shrug off neighbours' load: a cross-check when the medians are noisy
                             "min_ratio": min(agent_min) / min(direct_min),
                             "start_plus_load_ms": statistics.mean(o["start_plus_load_ms"] for o in overheads),
                             "load_ms": statistics.mean(o["load_ms"] for o in overheads),
                             "rpc_extra_ms": statistics.mean(o["rpc_total_extra_ms"] for o in overheads)})
                if not args.json:
                    print_row(rows[-1])
        time.sleep(1.0)
        idle_after = rss_mb(proc.pid)
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)
    summary = {"serve_to_ready_s": {"cold": ready[0], "warm": ready[1]}, "idle_rss_mb": {
        "before": idle_before, "after_measuring": idle_after}, "threads": args.threads, "timing": timing,
        "load_average": os.getloadavg(), "rows": rows,
        "all_within_target": all(r["within_target"] for r in rows)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"serve -> ready: cold {ready[0]:.2f} s, warm {ready[1]:.2f} s (target < 2 s)")
        print(f"agent idle RSS: {idle_before:.1f} MB before, {idle_after:.1f} MB after measuring (target < 100 MB)")
        print(f"ratios within 0.97-1.03: {sum(r['within_target'] for r in rows)}/{len(rows)}; "
              f"load average {os.getloadavg()[0]:.1f} (noise from other processes shows up here)")
    return 0


def print_row(row: dict) -> None:
    if not getattr(print_row, "header", False):
        print(f"{'model':11s} {'fmt':6s} {'agent ms':>10s} {'direct ms':>10s} {'ratio':>6s}  "
              f"{'start+load ms':>13s} {'load ms':>8s} {'rpc extra ms':>12s} {'direct spread':>13s} {'min ratio':>9s}")
        print_row.header = True
    print(f"{row['model']:11s} {row['format']:6s} {row['agent_median_ms']:10.4f} {row['direct_median_ms']:10.4f} "
          f"{row['ratio']:6.3f}{' ' if row['within_target'] else '*'} {row['start_plus_load_ms']:13.0f} "
          f"{row['load_ms']:8.1f} {row['rpc_extra_ms']:12.0f} {row['direct_spread']:12.1%} {row['min_ratio']:9.3f}",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
