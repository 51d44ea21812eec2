"""Two hosts, one PostgreSQL store: what the second host measures that the first already did.

Starts two real agents (``fleetnas-agent serve`` on 127.0.0.1, port 0) and, unless ``--database-url`` names one, a
throwaway PostgreSQL server (the tests' helper, tests/pg_server.py: initdb with trust auth on a free loopback port).
Then three `fleetnas search` runs on the built-in tiny super-network, each a separate "host" (its own run folder,
exports and local cache folder), all with ``--measurement-cache URL`` (the accuracy cache goes with it):

1. host 1: ``--budget B --seed 0``
2. host 2: the same search: every measurement and accuracy should come from the shared store
3. host 2 again with ``--budget 2B``: only the candidates host 1 did not propose are measured

and prints, per run, the candidates evaluated, measurements taken on the boards, answers from the shared cache, the
accuracy values the store held before and after, and the wall time.

    nice python benchmarks/shared_cache_two_hosts.py [--budget 6] [--database-url postgresql://...] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List

REPO = Path(__file__).resolve().parents[1]
TIMING = ["--warmup-runs=2", "--warmup-s=0.02", "--blocks=3", "--min-runs=5", "--min-block-s=0.03"]


@contextlib.contextmanager
def agents(tmp: Path, n: int) -> Iterator[List[str]]:
    procs, addresses = [], []
    try:
        for k in range(n):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0", "--port-file",
                 str(tmp / f"port{k}"), "--cache-dir", str(tmp / f"agent{k}"), "--log-level", "WARNING"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for k, proc in enumerate(procs):
            port_file, deadline = tmp / f"port{k}", time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"agent {k} did not start")
                time.sleep(0.05)
            addresses.append(f"127.0.0.1:{int(port_file.read_text())}")
        yield addresses
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@contextlib.contextmanager
def database(url: str) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(REPO / "tests"))   # the throwaway server the tests use
    from pg_server import throwaway_server
    with throwaway_server() as server:
        yield server.create_database("two_hosts")


def accuracy_rows(url: str) -> int:
    from fleetnas.host.store.caches import open_accuracy_cache   # creates the tables when the store is new
    open_accuracy_cache(url).close()
    import psycopg   # the benchmark reads the store directly to count what it holds
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT COUNT(*) FROM fleet_accuracy").fetchone()[0]


def search(tmp: Path, host: str, url: str, budget: int, devices: Path) -> Dict[str, object]:
    env = dict(os.environ, FLEETNAS_CACHE_DIR=str(tmp / host / "local-cache"))
    out = tmp / host / f"run-{budget}"
    before = accuracy_rows(url)
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices",
                           str(devices), "--budget", str(budget), "--seed", "0", "--tactic", "random", "--out",
                           str(out), "--threads", "1", "--no-progress", "--json", "--measurement-cache", url, *TIMING],
                          capture_output=True, text=True, env=env)
    wall_s = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{host}: fleetnas search failed: {done.stderr.strip()[-2000:]}")
    data = json.loads(done.stdout)
    return {"host": host, "budget": budget, "evaluated": data["candidates_evaluated"],
            "measured_on_boards": data["measurements"], "from_shared_cache": data["cache_hits"],
            "accuracy_rows_before": before, "accuracy_rows_after": accuracy_rows(url), "wall_s": round(wall_s, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=6, help="candidates of the first two runs (the third: 2x)")
    parser.add_argument("--database-url", default="", help="an existing PostgreSQL database (default: a throwaway "
                                                           "server on loopback)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetnas-two-hosts-") as tmp_name, database(args.database_url) as url:
        tmp = Path(tmp_name)
        with agents(tmp, 2) as addresses:
            devices = tmp / "devices.toml"
            devices.write_text("".join(f'[[device]]\nname = "dev{i}"\naddress = "{a}"\nclass = "cpu"\n\n'
                                       for i, a in enumerate(addresses)))
            runs = [search(tmp, "host1", url, args.budget, devices),
                    search(tmp, "host2", url, args.budget, devices),
                    search(tmp, "host2", url, 2 * args.budget, devices)]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print(f"{'run':<18} {'evaluated':>9} {'measured':>9} {'cache hits':>10} {'accuracy rows':>14} {'wall s':>7}")
    for r in runs:
        rows = f"{r['accuracy_rows_before']} -> {r['accuracy_rows_after']}"
        print(f"{r['host'] + ' budget ' + str(r['budget']):<18} {r['evaluated']:>9} {r['measured_on_boards']:>9} "
              f"{r['from_shared_cache']:>10} {rows:>14} {r['wall_s']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
