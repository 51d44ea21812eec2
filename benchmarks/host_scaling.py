"""Sub-networks validated per minute on the host, in-process against a Ray cluster of 1, 2 and 4 workers; and the
same search's fronts with and without Ray.

Everything runs in a loopback-only network namespace (the script re-runs itself under ``unshare``; root, util-linux
and iproute2 needed), so Ray sends nothing past loopback. For each worker count a local cluster is started with
``ray start --head --num-cpus=W`` and `RayHostWork` connects to it; the in-process rows are `InProcessHostWork`
with torch's default threads and with one thread (as each Ray worker, which holds one CPU, runs).
Each row first warms every worker up (one sub-network each: the super-network and its data are loaded), then times
``--subnets`` distinct sub-networks of the built-in tiny super-network (accuracy + ONNX export + verification).
Then two `fleetnas search --tactic random` runs with the same seed, one with ``--ray``, sharing a measurement cache
(each with its own accuracy cache): the fronts must be identical and the Ray run's measurements all cache hits.

    nice python benchmarks/host_scaling.py [--subnets 12] [--workers 1,2,4] [--budget 4] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
TIMING = ["--warmup-runs=1", "--warmup-s=0.01", "--blocks=2", "--min-runs=3", "--min-block-s=0.02"]
INSIDE = "FLEETNAS_BENCH_LOOPBACK"
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def configs(n: int) -> List[dict]:
    import numpy as np
    from fleetnas.host.supernets.base import get_supernet
    space, rng, out = get_supernet("tiny").space, np.random.default_rng(0), {}
    while len(out) < n:
        c = space.sample(rng)
        out[json.dumps(c, sort_keys=True)] = c
    return list(out.values())


def timed_rate(work, todo: List[dict], warm: List[dict]) -> Dict[str, float]:
    """Warm-up round (not timed), then the timed one: sub-networks per minute."""
    from fleetnas.host.run.host_work import SubnetTask
    from fleetnas.host.supernets.base import get_supernet
    key = get_supernet("tiny").key
    rates = {}
    for label, batch in (("warmup_s", warm), ("timed_s", todo)):
        t0 = time.monotonic()
        for c in batch:
            work.submit(SubnetTask(key(c), c))
        done = 0
        while done < len(batch):
            done += len(work.results(0.5))
        rates[label] = time.monotonic() - t0
    rates["per_minute"] = 60.0 * len(todo) / rates["timed_s"]
    return rates


def host_work_rates(n: int, worker_counts: List[int], tmp: Path) -> List[dict]:
    from fleetnas.host.run.host_work import InProcessHostWork, SubnetWorkSpec
    from fleetnas.host.scale.ray_executor import RayHostWork
    from fleetnas.host.supernets.base import get_supernet
    weights_id = get_supernet("tiny").weights_id
    # every row times the same sub-networks, from a fresh super-network and its own export cache (no cache hits)
    all_configs = configs(n + max(worker_counts))
    todo, warm = all_configs[:n], all_configs[n:]
    rows = []

    def spec(tag: str) -> SubnetWorkSpec:
        return SubnetWorkSpec("tiny", weights_id, None, "", "onnx", export_dir=str(tmp / tag))
    rows.append({"workers": "in-process", **timed_rate(InProcessHostWork(spec("in-process")), todo, warm[:1])})
    # as a Ray worker runs (one CPU each: one torch thread), to tell Ray's cost from the thread count's
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows.append({"workers": "in-proc 1t", **timed_rate(InProcessHostWork(spec("in-process-1t")), todo, warm[:1])})
    torch.set_num_threads(threads)
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    for w in worker_counts:
        subprocess.run(ray + ["start", "--head", "--port=6390", f"--num-cpus={w}", "--include-dashboard=false",
                              "--disable-usage-stats", "--object-store-memory=100000000"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.monotonic()
            work = RayHostWork(spec(f"ray{w}"), "127.0.0.1:6390", workers=w)
            connect_s = time.monotonic() - t0
            rows.append({"workers": w, "connect_s": connect_s, **timed_rate(work, todo, warm[:w])})
            work.close()
        finally:
            subprocess.run(ray + ["stop", "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return rows


def search(tmp: Path, tag: str, budget: int, extra: List[str]) -> dict:
    args = [sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices", "local",
            "--budget", str(budget), "--tactic", "random", "--seed", "5", "--out", str(tmp / tag),
            "--measurement-cache", str(tmp / "measurements.sqlite"), "--accuracy-cache",
            str(tmp / f"accuracy-{tag}.sqlite"), "--no-progress", "--json", *TIMING, *extra]
    t0 = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    data = json.loads(out[out.index("{"):])
    data["wall_s"] = time.monotonic() - t0
    return data


def fronts(data: dict) -> dict:
    return {c: sorted((json.dumps(p["config"], sort_keys=True), p["accuracy"], p["latency_ms"]) for p in points)
            for c, points in data["fronts"].items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnets", type=int, default=12, help="sub-networks timed per row")
    parser.add_argument("--workers", default="1,2,4", help="Ray worker counts")
    parser.add_argument("--budget", type=int, default=4, help="candidates of the front comparison's searches")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.environ.get(INSIDE) != "1":
        inner = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
        env = dict(os.environ, **RAY_ENV, **{INSIDE: "1"}, RAY_TMPDIR=tempfile.mkdtemp(prefix="fb", dir="/tmp"))
        return subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                               f"ip link set lo up && exec {inner}"], env=env).returncode
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = host_work_rates(args.subnets, [int(w) for w in args.workers.split(",")], tmp)
        plain = search(tmp, "in-process", args.budget, [])
        with_ray = search(tmp, "ray", args.budget, ["--ray"])
    same = fronts(plain) == fronts(with_ray)
    result = {"rows": rows, "fronts_identical": same, "ray_cache_hits": with_ray["cache_hits"],
              "search_wall_s": {"in-process": plain["wall_s"], "ray": with_ray["wall_s"]}, "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if same else 1
    print(f"{'workers':>10} {'sub-networks/min':>17} {'timed s':>8} {'warm-up s':>10} {'connect s':>10}")
    for r in rows:
        connect = f"{r['connect_s']:10.1f}" if "connect_s" in r else f"{'-':>10}"
        print(f"{r['workers']:>10} {r['per_minute']:17.1f} {r['timed_s']:8.1f} {r['warmup_s']:10.1f} {connect}")
    print(f"search --budget {args.budget} --tactic random: fronts {'identical' if same else 'DIFFER'} with and "
          f"without --ray ({with_ray['cache_hits']} of the Ray run's measurements from the shared cache); wall "
          f"{plain['wall_s']:.0f} s in-process, {with_ray['wall_s']:.0f} s with --ray ({os.cpu_count()} cores)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
