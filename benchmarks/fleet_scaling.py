"""Does the fleet scale? Measurement throughput with 1, 2, 4 and 8 emulated agents of one class.

Starts N real ``fleetnas-agent serve --emulate TABLE.csv`` subprocesses on 127.0.0.1 (port 0), builds distinct small
ONNX models that carry their configuration in ``metadata_props`` (as fleetnas export writes them), and has the
dispatcher measure ``--jobs-per-agent`` x N of them through the whole host path (queue per class, HasModel + upload
once per agent, Measure, result handling). Each emulated measurement sleeps as long as the real run would take under
the timing used (about ``--measure-s``), so the agents are the bottleneck, as boards are.

throughput = models measured per second (wall clock, from first submit to last result, uploads included);
scaling = throughput(N) / throughput(1); target >= 0.85 x N.

    nice python benchmarks/fleet_scaling.py [--agents 1,2,4,8] [--jobs-per-agent 12] [--measure-s 0.5] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List

LATENCY_MS = 20.0


def make_models(directory: Path, n: int) -> List[Path]:
    from onnx import TensorProto, helper, save
    paths = []
    for i in range(n):
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "bench",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        for key, value in (("fleetnas.supernet", "bench"), ("fleetnas.config", json.dumps({"i": i}))):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        paths.append(directory / f"m{i}.onnx")
        save(model, str(paths[-1]))
    return paths


def write_table(path: Path, n: int) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["i", "lat_ms"])
        w.writerows([i, LATENCY_MS] for i in range(n))
    return path


@contextlib.contextmanager
def emulated_agents(tmp: Path, n: int, table: Path) -> Iterator[List[str]]:
    procs, addresses = [], []
    try:
        for k in range(n):
            port_file = tmp / f"port{k}"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0", "--port-file",
                 str(port_file), "--cache-dir", str(tmp / f"agent{k}"), "--log-level", "WARNING", "--emulate",
                 str(table), "--emulate-params", "i", "--emulate-latency", "lat_ms"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for k, proc in enumerate(procs):
            port_file = tmp / f"port{k}"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"emulated agent {k} did not start")
                time.sleep(0.05)
            addresses.append(f"127.0.0.1:{int(port_file.read_text())}")
        yield addresses
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def measure_throughput(addresses: List[str], models: List[Path], measure_s: float) -> Dict[str, float]:
    from fleetnas.host.fleet.client import file_sha256
    from fleetnas.host.fleet.devices import Device, DeviceRegistry
    from fleetnas.host.fleet.dispatcher import Dispatcher, Job, RuntimeConfig

    # warm-up + blocks sized so an emulated run of a LATENCY_MS model takes ~measure_s
    block_s = measure_s / 5
    timing = dict(warmup_runs=1, warmup_s=block_s, blocks=4, min_runs_per_block=1, min_block_s=block_s,
                  timeout_s=60.0)
    registry = DeviceRegistry([Device(f"emu{k}", a, "emu") for k, a in enumerate(addresses)])
    jobs = [Job("emu", p, file_sha256(p), json.dumps({"i": i})) for i, p in enumerate(models)]
    with Dispatcher(registry, RuntimeConfig(timing=tuple(sorted(timing.items())))) as d:
        while any(s.state == "connecting" for s in d.status.values()):
            time.sleep(0.01)
        t0 = time.monotonic()
        for job in jobs:
            d.submit(job)
        done: list = []
        while len(done) < len(jobs):
            done += d.results(timeout_s=1.0)
        wall_s = time.monotonic() - t0
        failed = [r for r in done if not r.measurement.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} measurements failed: {failed[0].measurement.response}")
        busy = {n: s.measured for n, s in d.status.items()}
    return {"agents": len(addresses), "models": len(jobs), "wall_s": wall_s, "throughput_per_s": len(jobs) / wall_s,
            "per_agent_min": min(busy.values()), "per_agent_max": max(busy.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1,2,4,8")
    parser.add_argument("--jobs-per-agent", type=int, default=12)
    parser.add_argument("--measure-s", type=float, default=0.5, help="emulated time per measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = [int(x) for x in args.agents.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-scaling-") as tmp_name:
        tmp = Path(tmp_name)
        n_models = max(counts) * args.jobs_per_agent
        table = write_table(tmp / "table.csv", n_models)
        (tmp / "models").mkdir()
        models = make_models(tmp / "models", n_models)
        for n in counts:
            run_dir = tmp / f"n{n}"
            run_dir.mkdir()
            with emulated_agents(run_dir, n, table) as addresses:
                rows.append(measure_throughput(addresses, models[: n * args.jobs_per_agent], args.measure_s))
    base = rows[0]["throughput_per_s"] / rows[0]["agents"]
    for r in rows:
        r["scaling"] = r["throughput_per_s"] / base
        r["efficiency"] = r["scaling"] / r["agents"]
        r["meets_target"] = r["efficiency"] >= 0.85
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'agents':>6}  {'models':>6}  {'wall s':>7}  {'models/s':>8}  {'scaling':>7}  {'x N':>5}  "
          "target >= 0.85 x N")
    for r in rows:
        print(f"{r['agents']:>6}  {r['models']:>6}  {r['wall_s']:>7.2f}  {r['throughput_per_s']:>8.2f}  "
              f"{r['scaling']:>7.2f}  {r['efficiency']:>5.2f}  {'ok' if r['meets_target'] else 'MISSED'}"
              f"  (per agent {r['per_agent_min']}-{r['per_agent_max']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
