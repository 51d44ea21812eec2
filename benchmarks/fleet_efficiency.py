"""Fleet search vs one search per device, on published measurements (medians over seeds).

Runs the code of `fleetnas bench --devices` on the shipped benchmarks/data/nb201_devices.csv.gz: accuracy `acc_cifar10`, five
device latency columns, the NB201 cell declared (``--cell 0-1,0-2,1-2,0-3,1-3,2-3``). Prints, side by side for the
joint fleet search and independent linas searches: each device's HV gap at 50/100/200/300 of its own measurements and
its recall at 300, the validations (distinct accuracy evaluations) of the whole run, host seconds per round; then a
device joining a finished run (the other four searched first): its gap after 10/20/30/50/100 of its own measurements,
living on what the others validated, and (joint, ``+N val``) with the cap raised by ``--new-device-validations`` when
it joins, as a resume with a larger ``--validations`` does.
Devices the search was tuned on and held-out devices are listed separately. Every target is printed, met or not.

    nice python benchmarks/fleet_efficiency.py                                # 5 seeds, joint and independent (long)
    nice python benchmarks/fleet_efficiency.py --seeds 2 --modes joint --new-devices hwnb_pixel3_lat_ms
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import warnings
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().parent / "data" / "nb201_devices.csv.gz"   # shipped; see data/README.md
PARAMS = [f"e{i}" for i in range(6)]
CELL = "0-1,0-2,1-2,0-3,1-3,2-3"
ACCURACY = "acc_cifar10"
TUNED = ("hwnb_raspi4_lat_ms", "hwnb_pixel3_lat_ms", "help_titanrtx_bs1_ms")
HELD_OUT = ("help_xeon_gold6226_ms", "hwnb_fpga_lat_ms")  # never used while tuning the fleet search
DEVICES = TUNED + HELD_OUT
GAP_AT_BUDGET, MAX_VALIDATIONS = 1e-3, 350
NEW_GAP_30, NEW_GAP_100, ROUND_S = 5e-3, 1e-3, 2.0
NEW_DEVICE_VALIDATIONS = 50


def _table():
    from fleetnas.host.search.cells import CellEdges
    from fleetnas.host.search.fleet_bench import FleetTable
    from fleetnas.host.search.pareto import Objective

    return FleetTable.from_csv(str(TABLE), PARAMS, Objective(ACCURACY, True), [Objective(d) for d in DEVICES],
                               cell=CellEdges.parse(CELL))


def _one(job):
    from threadpoolctl import threadpool_limits

    from fleetnas.host.search.fleet_bench import bench_fleet

    mode, devices, new_device, seed, budget, batch, validations, extra = job
    warnings.filterwarnings("ignore")  # GP hyper-parameter bounds: noise, not news
    with threadpool_limits(1):
        result = bench_fleet(_table(), devices, mode, budget, [seed], batch,
                             validations if mode == "joint" else None, {}, new_device, new_device_validations=extra)
    return job, result


def _median(values):
    return float(np.median(values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300, help="measurements per device")
    parser.add_argument("--batch", type=int, default=20, help="measurements per device per round")
    parser.add_argument("--validations", type=int, default=MAX_VALIDATIONS, help="cap of the joint search")
    parser.add_argument("--modes", default="joint,independent")
    parser.add_argument("--new-devices", default=",".join(DEVICES),
                        help="devices to add to a finished run of the other four ('' for none)")
    parser.add_argument("--new-device-validations", type=int, default=NEW_DEVICE_VALIDATIONS,
                        help="joint: also run each joining device with the cap raised by N when it joins (0: only "
                             "without)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    parser.add_argument("--json", action="store_true", help="also print the per-seed figures as JSON")
    args = parser.parse_args(argv)
    if not TABLE.is_file():
        print(f"skipped: {TABLE} not found (it ships with the repository: restore it with git checkout)")
        return 0
    modes = [m for m in args.modes.split(",") if m]
    new_devices = [d for d in args.new_devices.split(",") if d]
    jobs = [(m, DEVICES, None, s, args.budget, args.batch, args.validations, 0) for m in modes
            for s in range(args.seeds)]
    # Independent searches do not share: a joining device is a linas search of its own (the others need no rerun).
    joining = [(m, 0) for m in modes]
    if "joint" in modes and args.new_device_validations > 0:
        joining.append(("joint", args.new_device_validations))
    jobs += [(m, tuple(d for d in DEVICES if d != nd) if m == "joint" else (), nd, s, args.budget, args.batch,
              args.validations, extra) for m, extra in joining for nd in new_devices for s in range(args.seeds)]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_one, jobs)
    else:
        results = [_one(j) for j in jobs]

    fleet = {m: [r for j, r in results if j[0] == m and j[2] is None] for m in modes}
    joined = {(m, extra, nd): [r for j, r in results if j[0] == m and j[2] == nd and j[7] == extra]
              for m, extra in joining for nd in new_devices}
    print(f"NB201 {ACCURACY}, {len(DEVICES)} devices, budget {args.budget} measurements per device, "
          f"{args.seeds} seeds (medians); joint search capped at {args.validations} validations")
    budgets = fleet[modes[0]][0]["budgets"] if modes else []
    header = " ".join(f"{'gap@' + str(b):>9}" for b in budgets)
    for group, names in (("tuned on", TUNED), ("held out", HELD_OUT)):
        print(f"\n-- devices {group}")
        print(f"{'device':<24} {'mode':<12} {header} {'recall@' + str(args.budget):>10}")
        for d in names:
            for m in modes:
                gaps = [_median([r["per_seed"][0]["devices"][d]["hv_gap"][i] for r in fleet[m]])
                        for i in range(len(budgets))]
                recall = _median([r["per_seed"][0]["devices"][d]["recall"][-1] for r in fleet[m]])
                print(f"{d:<24} {m:<12} " + " ".join(f"{g:>9.2e}" for g in gaps) + f" {recall:>10.1%}")
    print()
    for m in modes:
        print(f"{m:<12} validations {_median([r['validations_median'] for r in fleet[m]]):.0f} (median), "
              f"host CPU s per round: median {_median([r['round_s_median'] for r in fleet[m]]):.2f}, "
              f"max {max(r['round_s_max'] for r in fleet[m]):.2f}")
    if new_devices:
        print("\n-- a device joining a finished run of the other four: its gap after N own measurements")
        nb = fleet[modes[0]][0].get("new_device", {}).get("budgets") or [10, 20, 30, 50, 100]
        print(f"{'device':<24} {'mode':<12} " + " ".join(f"{'@' + str(b):>9}" for b in nb)
              + f" {'new val.':>9} {'@known':>9}")
        for nd in new_devices:
            for m, extra in joining:
                rs = joined[(m, extra, nd)]
                gaps = [_median([r["new_device"]["hv_gap_median"][i] for r in rs]) for i in range(len(nb))]
                new_val = _median([r["new_device"]["new_validations_median"] for r in rs])
                known = _median([r["new_device"]["known_gap_median"] for r in rs])
                tag = " (held out)" if nd in HELD_OUT else ""
                label = f"{m} +{extra} val" if extra else m
                print(f"{nd:<24} {label:<12} " + " ".join(f"{g:>9.2e}" for g in gaps)
                      + f" {new_val:>9.0f} {known:>9.2e}{tag}")
        print("@known: its gap if it measured every config the others had measured (all it can reach without new "
              "validations)")

    if "joint" in modes:
        print("\n-- targets (joint fleet search, medians)")
        runs = fleet["joint"]
        at = len(budgets) - 1
        for d in DEVICES:
            g = _median([r["per_seed"][0]["devices"][d]["hv_gap"][at] for r in runs])
            tag = "held out" if d in HELD_OUT else "tuned"
            print(f"  {d} ({tag}): gap@{budgets[at]} {g:.2e} <= {GAP_AT_BUDGET:.0e}: "
                  f"{'met' if g <= GAP_AT_BUDGET else 'NOT met'}")
        v = _median([r["validations_median"] for r in runs])
        print(f"  validations {v:.0f} <= {MAX_VALIDATIONS}: {'met' if v <= MAX_VALIDATIONS else 'NOT met'}")
        for nd in new_devices:
            for m, extra in joining:
                if m != "joint":
                    continue
                rs = joined[("joint", extra, nd)]
                g30 = _median([r["new_device"]["hv_gap_median"][2] for r in rs])
                g100 = _median([r["new_device"]["hv_gap_median"][4] for r in rs])
                how = f"with {extra} validations of its own" if extra else "on the others' validations"
                print(f"  new device {nd} ({how}): gap@30 {g30:.2e} <= {NEW_GAP_30:.0e}: "
                      f"{'met' if g30 <= NEW_GAP_30 else 'NOT met'}"
                      f"; gap@100 {g100:.2e} <= {NEW_GAP_100:.0e}: {'met' if g100 <= NEW_GAP_100 else 'NOT met'}")
        worst = max(r["round_s_max"] for r in runs)
        print(f"  host s per round (max over rounds and seeds) {worst:.2f} <= {ROUND_S}: "
              f"{'met' if worst <= ROUND_S else 'NOT met'} (CPU seconds of the search process; the first round "
              "includes imports)")
    if args.json:
        json.dump([{"job": list(j[:4]) + [j[7]], "result": {k: v for k, v in r.items()}} for j, r in results], sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
