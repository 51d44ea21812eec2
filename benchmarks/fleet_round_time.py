"""Host time per round of the joint fleet search with five device classes, on NAS-Bench-201 and on the OFA space.

A round is one ``ask``: fit the accuracy and cost predictors, build the candidate pool, pick the batch. Timed in CPU
seconds of the search process (the machine may be shared), per round; printed: median and maximum over the model
rounds (the initial design and reference sets are not model rounds) and seeds. Targets: <= 2 s on NB201, <= 3 s on OFA.

- NB201: the shipped table (benchmarks/data), its five device columns; ``--energy``: each class measures two columns
  (the device's and the next one's, as latency and energy).
- OFA MobileNetV3 (46 genes, ~1e19 sub-networks): seeded synthetic objectives (the predictors' and the pool's cost is
  what is timed, not the values): accuracy saturating in a per-option score, per class a latency additive over the
  active genes (a shared cost times a class factor), and with ``--energy`` an energy correlated with it.

    nice python benchmarks/fleet_round_time.py                      # both spaces, 5 seeds, with and without energy
    nice python benchmarks/fleet_round_time.py --spaces ofa --seeds 2 --budget 100
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np

TABLE = Path(__file__).resolve().parent / "data" / "nb201_devices.csv.gz"   # shipped; see data/README.md
NB201_DEVICES = ("hwnb_raspi4_lat_ms", "hwnb_pixel3_lat_ms", "help_titanrtx_bs1_ms", "help_xeon_gold6226_ms",
                 "hwnb_fpga_lat_ms")
TARGET_S = {"nb201": 2.0, "ofa": 3.0}
N_CLASSES = 5


class OfaProblem:
    """Five classes on the OFA MobileNetV3 space with seeded synthetic objectives."""

    def __init__(self, energy: bool, seed: int = 0) -> None:
        from fleetnas.host.search.fleet import DeviceClass
        from fleetnas.host.search.pareto import Objective
        from fleetnas.host.supernets.ofa_mbv3 import mbv3_space   # lazy: super-network modules import torch

        self.space = mbv3_space()
        rng = np.random.default_rng(seed)
        params = self.space.params
        self.gain = [rng.normal(0.0, 1.0, p.n_options) for p in params]
        base = [rng.uniform(0.1, 1.0, p.n_options) for p in params]
        self.cost = {f"c{i}": [b * rng.uniform(0.7, 1.3, len(b)) for b in base] for i in range(N_CLASSES)}
        self.power = {c: [rng.uniform(0.8, 1.2, p.n_options) for p in params] for c in self.cost}
        self.accuracy = Objective("acc", True)
        costs = (Objective("latency_ms"), Objective("energy_mj")) if energy else (Objective("latency_ms"),)
        self.classes = [DeviceClass(c, costs) for c in self.cost]

    def accuracy_of(self, key: str) -> float:
        genes, active = self._genes(key)
        score = sum(v[g] for v, g, a in zip(self.gain, genes, active) if a)
        return float(np.tanh(0.05 * score))

    def costs_of(self, cls: str, key: str) -> Dict[str, float]:
        genes, active = self._genes(key)
        latency = sum(c[g] for c, g, a in zip(self.cost[cls], genes, active) if a)
        energy = latency * float(np.mean([p[g] for p, g in zip(self.power[cls], genes)]))
        return {"latency_ms": float(latency), "energy_mj": energy}

    def _genes(self, key: str):
        config = self.space.config_from_key(key)
        return self.space.to_genes(config), ~np.isin(self.space.names, self.space.inactive_names(config))


class Nb201Problem:
    def __init__(self, energy: bool) -> None:
        from fleetnas.host.search.cells import CellEdges
        from fleetnas.host.search.fleet_bench import FleetTable, parse_device
        from fleetnas.host.search.pareto import Objective

        n = len(NB201_DEVICES)
        names = [f"{d}+{NB201_DEVICES[(i + 1) % n]}" if energy else d for i, d in enumerate(NB201_DEVICES)]
        self.table = FleetTable.from_csv(str(TABLE), [f"e{i}" for i in range(6)], Objective("acc_cifar10", True),
                                         [parse_device(d) for d in names],
                                         cell=CellEdges.parse("0-1,0-2,1-2,0-3,1-3,2-3"))
        self.space, self.accuracy, self.classes = self.table.space, self.table.accuracy, self.table.devices

    def accuracy_of(self, key: str) -> float:
        return self.table.value(self.accuracy.name, key)

    def costs_of(self, cls: str, key: str) -> Dict[str, float]:
        return self.table.costs(cls, key)


def round_times(problem, seed: int, budget: int, batch: int) -> List[float]:
    """CPU seconds of each model round of one search (every class measures ``budget``)."""
    from fleetnas.host.search.fleet import FleetSearch

    search = FleetSearch(problem.space, problem.accuracy, problem.classes, seed=seed, budget=budget)
    times = []
    while not search.finished:
        model_rounds = len(search.round_reports)
        t0 = time.process_time()
        proposals = search.ask(batch)
        if len(search.round_reports) > model_rounds:
            times.append(time.process_time() - t0)
        if not proposals:
            break
        for p in proposals:
            if p.validate:
                search.tell_accuracy(p.key, problem.accuracy_of(p.key))
            for c in p.classes:
                search.tell_cost(p.key, c, problem.costs_of(c, p.key))
    return times


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", default="nb201,ofa")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300, help="measurements per class")
    parser.add_argument("--batch", type=int, default=20, help="measurements per class per round")
    parser.add_argument("--energy", default="no,yes", help="no: latency only; yes: latency and energy per class")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # GP hyper-parameter bounds: noise, not news
    rows = []
    for space in [s for s in args.spaces.split(",") if s]:
        if space == "nb201" and not TABLE.is_file():
            print(f"nb201 skipped: {TABLE} not found (it ships with the repository: restore it with git checkout)")
            continue
        for energy in [e == "yes" for e in args.energy.split(",") if e]:
            problem = OfaProblem(energy) if space == "ofa" else Nb201Problem(energy)
            with threadpool_limits(1):
                times = [t for seed in range(args.seeds) for t in round_times(problem, seed, args.budget, args.batch)]
            rows.append({"space": space, "energy": energy, "classes": len(problem.classes), "rounds": len(times),
                         "median_s": float(np.median(times)), "max_s": float(np.max(times)),
                         "target_s": TARGET_S[space]})
    print(f"joint fleet search, {N_CLASSES} classes, budget {args.budget} per class, batch {args.batch}, "
          f"{args.seeds} seeds: host CPU s per model round")
    print(f"{'space':<6} {'costs':<16} {'rounds':>6} {'median s':>9} {'max s':>7}  target")
    for r in rows:
        met = "met" if r["max_s"] <= r["target_s"] else "NOT met"
        print(f"{r['space']:<6} {'latency+energy' if r['energy'] else 'latency':<16} {r['rounds']:>6} "
              f"{r['median_s']:>9.2f} {r['max_s']:>7.2f}  max <= {r['target_s']:.0f} s: {met}")
    if args.json:
        json.dump(rows, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
