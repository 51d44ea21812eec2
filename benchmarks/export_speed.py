"""Export speed per sub-network: cold ONNX export (extract + export + verify), cache-hit time,
TFLite export when litert-torch is installed; plus, for `tiny`, the accuracy evaluation time per config and the
onnxruntime latency spread of its sub-networks (the reason the tiny space is worth searching).

    nice python benchmarks/export_speed.py [--supernets tiny,ofa-mbv3] [--configs 3] [--seed 0] [--json]

Configs are sampled with the seed; each export goes to a fresh temporary cache. On a shared machine every figure
carries the neighbours' load (say so when quoting them).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def export_figures(name: str, n_configs: int, seed: int, tflite: bool) -> Dict[str, Any]:
    from fleetnas.host.export.onnx import export_onnx
    from fleetnas.host.supernets import get_supernet

    start = time.perf_counter()
    supernet = get_supernet(name)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    configs = [supernet.space.sample(rng) for _ in range(n_configs)]
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as cache:
        for config in configs:
            row: Dict[str, Any] = {"macs": supernet.macs(config)}
            start = time.perf_counter()
            exported = export_onnx(supernet, config, cache)
            row["onnx_export_s"] = time.perf_counter() - start
            row["onnx_size_bytes"] = exported.size_bytes
            row["onnx_max_abs_error"] = exported.max_abs_error
            row["onnx_cache_hit_ms"] = 1000 * timed(lambda: export_onnx(supernet, config, cache))
            if tflite:
                from fleetnas.host.export.tflite import export_tflite

                row["tflite_export_s"] = timed(lambda: export_tflite(supernet, config, cache))
                row["tflite_cache_hit_ms"] = 1000 * timed(lambda: export_tflite(supernet, config, cache))
            rows.append(row)
    return {"supernet": name, "build_s": build_s, "rows": rows}


def ort_latency_ms(path: str, inputs, runs: int = 200) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    for _ in range(20):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def tiny_figures(seed: int) -> Dict[str, Any]:
    from fleetnas.host.export.onnx import export_onnx
    from fleetnas.host.supernets import get_supernet

    tiny = get_supernet("tiny")
    tiny.split()  # load digits once (sklearn import), not per config
    rng = np.random.default_rng(seed)
    configs = [{p.name: min(p.options) for p in tiny.space.params}]
    configs += [tiny.space.sample(rng) for _ in range(3)]
    configs += [{p.name: max(p.options) for p in tiny.space.params}]
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for config in configs:
            accuracy_s = timed(lambda: tiny.accuracy(config))
            exported = export_onnx(tiny, config, cache)
            rows.append({"config": tiny.key(config), "macs": tiny.macs(config), "top1": tiny.accuracy(config),
                         "accuracy_eval_s": accuracy_s,
                         "ort_latency_ms": ort_latency_ms(str(exported.path), (tiny.example_input(config),))})
    return {"rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernets", default="tiny,ofa-mbv3")
    parser.add_argument("--configs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    tflite = importlib.util.find_spec("litert_torch") is not None
    report = {"tflite": tflite, "exports": [export_figures(n, args.configs, args.seed, tflite)
                                            for n in args.supernets.split(",")], "tiny": tiny_figures(args.seed)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"TFLite export: {'litert-torch installed' if tflite else 'not installed (pip install fleetnas[tflite-export])'}")
    for block in report["exports"]:
        rows = block["rows"]
        print(f"\n{block['supernet']}: super-network built in {block['build_s']:.2f} s; {len(rows)} sub-networks")
        for r in rows:
            line = (f"  {r['macs'] / 1e6:9.2f} MMACs  onnx export {r['onnx_export_s']:6.2f} s "
                    f"({r['onnx_size_bytes'] / 1e6:6.2f} MB, err {r['onnx_max_abs_error']:.1e})  "
                    f"cache hit {r['onnx_cache_hit_ms']:6.2f} ms")
            if "tflite_export_s" in r:
                line += f"  tflite export {r['tflite_export_s']:6.2f} s  cache hit {r['tflite_cache_hit_ms']:6.2f} ms"
            print(line)
        print(f"  median onnx export {statistics.median(r['onnx_export_s'] for r in rows):.2f} s, "
              f"median cache hit {statistics.median(r['onnx_cache_hit_ms'] for r in rows):.2f} ms")
    print("\ntiny: accuracy evaluation and onnxruntime latency (1 thread) from smallest to largest")
    for r in report["tiny"]["rows"]:
        print(f"  {r['macs'] / 1e6:6.2f} MMACs  top-1 {r['top1']:.3f}  accuracy eval {r['accuracy_eval_s']:.3f} s  "
              f"latency {r['ort_latency_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
