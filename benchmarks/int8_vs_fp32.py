"""int8 vs fp32 sub-networks on this machine: latency ratio, accuracy drop, and how much the front changes.

    nice python benchmarks/int8_vs_fp32.py --tiny 12 --ofa 2 [--seed 0] [--threads 1] [--json]

For each sampled sub-network: the float ONNX export and the QDQ int8 one (fleetnas.host.export), both timed in
onnxruntime in this process with the agent's settings (``--threads`` intra-op threads, one inter-op thread,
sequential), fp32 and int8 alternating block by block so a neighbour's load hits both alike; the latency is the
median of the block medians. Accuracy: ``tiny``'s held-out digits, the float network in torch and the int8 file in
onnxruntime (fleetnas.host.accuracy.deployed). Fronts: the fp32 front over (float accuracy, fp32 latency) and the
int8 front over (int8 accuracy, int8 latency); "kept" is how many fp32 front members are on the int8 front.
``ofa-mbv3`` has no published weights here (random initialisation): its accuracy is not measured, only latency, and
its activation ranges are calibrated on noise.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

BLOCKS = 7
MIN_BLOCK_S = 0.05


def session(path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3   # errors only: the quantized graph's unused-initializer notices are noise
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def block_median_ms(sess, feed) -> float:
    times: List[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < MIN_BLOCK_S or len(times) < 5:
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def latencies_ms(fp32_path, int8_path, example, threads: int) -> Dict[str, float]:
    """Median of block medians for each model, blocks alternating fp32 / int8 after a warm-up of each."""
    sessions = {"fp32": session(fp32_path, threads), "int8": session(int8_path, threads)}
    feed = {sessions["fp32"].get_inputs()[0].name: example}
    blocks: Dict[str, List[float]] = {"fp32": [], "int8": []}
    for s in sessions.values():
        block_median_ms(s, feed)   # warm-up
    for _ in range(BLOCKS):
        for name, s in sessions.items():
            blocks[name].append(block_median_ms(s, feed))
    return {name: statistics.median(v) for name, v in blocks.items()}


def front_keys(points: List[Dict[str, Any]], accuracy: str, latency: str) -> List[str]:
    from fleetnas.host.search.pareto import non_dominated_mask

    F = np.array([[1.0 - p[accuracy], p[latency]] for p in points], dtype=float)
    return [p["config"] for p, keep in zip(points, non_dominated_mask(F)) if keep]


def figures(name: str, n: int, seed: int, threads: int) -> Dict[str, Any]:
    from fleetnas.host.accuracy.deployed import DeployedEvaluator
    from fleetnas.host.export.registry import get_exporter
    from fleetnas.host.supernets import get_supernet

    supernet = get_supernet(name)
    has_accuracy = not supernet.random_weights
    rng = np.random.default_rng(seed)
    configs, seen = [], set()
    while len(configs) < n:
        c = supernet.space.sample(rng)
        if supernet.key(c) not in seen:
            seen.add(supernet.key(c))
            configs.append(c)
    fp32_exporter, int8_exporter = get_exporter("onnx"), get_exporter("onnx", "int8")
    deployed = DeployedEvaluator(supernet, "int8")
    rows: List[Dict[str, Any]] = []
    failed: List[str] = []
    with tempfile.TemporaryDirectory() as cache:
        for config in configs:
            key = supernet.key(config)
            fp32 = fp32_exporter.export(supernet, config, cache)
            t0 = time.perf_counter()
            try:
                int8 = int8_exporter.export(supernet, config, cache)
            except Exception as exc:   # a sub-network the quantizer loses: counted, and the benchmark goes on
                failed.append(f"{key}: {exc}")
                continue
            row: Dict[str, Any] = {"config": key, "int8_export_s": time.perf_counter() - t0,
                                   "fp32_bytes": fp32.size_bytes, "int8_bytes": int8.size_bytes,
                                   "int8_relative_error": int8.max_abs_error}
            example = supernet.example_input(config).numpy()
            lat = latencies_ms(fp32.path, int8.path, example, threads)
            row.update(fp32_latency_ms=lat["fp32"], int8_latency_ms=lat["int8"], ratio=lat["int8"] / lat["fp32"])
            if has_accuracy:
                acc = deployed.evaluate(config, supernet.accuracy(config), int8, int8_exporter)
                row.update(float_accuracy=acc.float_accuracy, int8_accuracy=acc.int8_accuracy, drop=acc.drop)
            rows.append(row)
            print(f"  {name} {len(rows)}/{n}: ratio {row['ratio']:.2f}"
                  + (f", drop {100 * row['drop']:+.2f} points" if has_accuracy else ""), file=sys.stderr)
    ratios = [r["ratio"] for r in rows]
    out: Dict[str, Any] = {"supernet": name, "subnets": len(rows), "quantization_failed": failed,
                           "threads": threads, "rows": rows,
                           "ratio_median": statistics.median(ratios) if ratios else None,
                           "ratio_min": min(ratios, default=None), "ratio_max": max(ratios, default=None),
                           "int8_faster": sum(1 for r in ratios if r < 1.0)}
    if has_accuracy and rows:
        drops = [r["drop"] for r in rows]
        fp32_front = front_keys(rows, "float_accuracy", "fp32_latency_ms")
        int8_front = set(front_keys(rows, "int8_accuracy", "int8_latency_ms"))
        out.update(drop_mean=statistics.mean(drops), drop_max=max(drops), drop_min=min(drops),
                   fp32_front=len(fp32_front), int8_front=len(int8_front),
                   fp32_front_kept=sum(1 for k in fp32_front if k in int8_front))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", type=int, default=12, help="tiny sub-networks (0: none)")
    parser.add_argument("--ofa", type=int, default=2, help="ofa-mbv3 sub-networks (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (as the agent's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [figures(name, n, args.seed, args.threads)
               for name, n in (("tiny", args.tiny), ("ofa-mbv3", args.ofa)) if n > 0]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        if not r["subnets"]:
            print(f"{r['supernet']}: no sub-network quantized ({len(r['quantization_failed'])} failed)")
            continue
        line = (f"{r['supernet']}: {r['subnets']} sub-networks, int8/fp32 latency ratio median {r['ratio_median']:.2f} "
                f"(min {r['ratio_min']:.2f}, max {r['ratio_max']:.2f}; int8 faster for {r['int8_faster']}) at "
                f"{r['threads']} thread(s)")
        if "drop_mean" in r:
            line += (f"; accuracy drop mean {100 * r['drop_mean']:+.2f} points (min {100 * r['drop_min']:+.2f}, max "
                     f"{100 * r['drop_max']:+.2f}); {r['fp32_front_kept']} of {r['fp32_front']} fp32 front members "
                     f"on the int8 front (of {r['int8_front']})")
        if r["quantization_failed"]:
            line += f"; {len(r['quantization_failed'])} failed to quantize"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
