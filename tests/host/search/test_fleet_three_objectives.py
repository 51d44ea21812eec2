"""Fleet search with three objectives: a class measures two costs (latency and energy), on the small synthetic table of
test_fleet (its cpu and npu latencies are correlated, r ~0.99: they stand in for one board's latency and energy).

Every measurement tells both costs, each cost gets its own predictor, the class is searched on its 3-D front (better
than random search on the same problem), a two-cost class and a one-cost class share validations, bad costs are one
clear error, the candidate pool stays within its bounds, and `fleetnas bench --devices LAT+ENERGY` reports it."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_fleet import FAST, fleet_csv  # noqa: F401  (fleet_csv: the fixture)

from fleetnas.host.cli import main
from fleetnas.host.search.benchmark import bench_table
from fleetnas.host.search.fleet import DeviceClass, FleetSearch
from fleetnas.host.search.fleet_bench import FleetTable, device_metrics, drive_fleet, parse_device, run_joint
from fleetnas.host.search.options import OptionError
from fleetnas.host.search.pareto import Objective

PAIR = "lat_cpu_ms+lat_npu_ms"


@pytest.fixture
def table(fleet_csv):  # noqa: F811
    return FleetTable.from_csv(str(fleet_csv), ["width", "kernel", "depth"], Objective("acc", True),
                               [parse_device(PAIR), parse_device("lat_gpu_ms")])


def test_a_two_cost_class_is_searched_on_its_three_objective_front(table):
    assert len(table.problems[PAIR].objectives) == 3 and table.correlation(PAIR) > 0.9
    budget, seeds = 40, range(3)
    fleet_gaps, random_gaps = [], []
    for seed in seeds:
        run = run_joint(table, [PAIR], seed=seed, budget=budget, batch=10, max_validations=None, options=FAST)
        keys = run["measured"][PAIR]
        assert len(keys) == budget == len(set(keys))
        fleet_gaps.append(device_metrics(table.problems[PAIR], keys, [budget])["hv_gap"][0])
    random_gaps = bench_table(table.problems[PAIR], "random", budget, list(seeds), 10)["per_seed"]
    # accuracy, latency and energy: the search finds a better 3-D front than random picks of as many configs (on a
    # table of 256 rows after 40: the NB201 figures are in benchmarks/fleet_three_objectives.py)
    assert np.median(fleet_gaps) < np.median([m["hv_gap"][0] for m in random_gaps])


@pytest.mark.parametrize("dominance", ["projections", "full"])
def test_two_cost_and_one_cost_classes_share_validations(table, dominance):
    search = FleetSearch(table.space, table.accuracy, table.devices, seed=1, budget=30, dominance=dominance, **FAST)
    drive_fleet(table, search, batch=10)
    measured = {d.name: search.measurements(d.name) for d in table.devices}
    assert all(len(keys) == 30 == len(set(keys)) for keys in measured.values())
    assert search.n_validations < 60 and set().union(*measured.values()) <= set(search._acc)
    report = search.round_reports[-1]
    assert set(report["cost_models"]) == {f"{PAIR}/lat_cpu_ms", f"{PAIR}/lat_npu_ms", "lat_gpu_ms"}
    q = report["quality"]["classes"]
    assert set(q[PAIR]["costs"]) == {"lat_cpu_ms", "lat_npu_ms"} and "costs" not in q["lat_gpu_ms"]
    for cost in q[PAIR]["costs"].values():     # both costs are smooth in the encoding: well ranked held out
        assert cost["loo_tau"] > 0.5 and cost["n"] >= 3
    assert q[PAIR]["loo_tau"] == q[PAIR]["costs"]["lat_cpu_ms"]["loo_tau"]


def test_costs_are_told_by_name(table):
    search = FleetSearch(table.space, table.accuracy, table.devices, seed=0, budget=10, **FAST)
    p = search.ask(5)[0]
    search.tell_accuracy(p.key, table.value("acc", p.key))
    with pytest.raises(ValueError, match="no value for cost.*lat_npu_ms"):
        search.tell_cost(p.key, PAIR, {"lat_cpu_ms": 1.0})
    with pytest.raises(ValueError, match="has 2 costs; give a mapping"):
        search.tell_cost(p.key, PAIR, 1.0)
    with pytest.raises(ValueError, match="no device class 'nope'"):
        search.tell_cost(p.key, "nope", 1.0)
    search.tell_cost(p.key, PAIR, table.costs(PAIR, p.key))
    search.tell_cost(p.key, "lat_gpu_ms", table.value("lat_gpu_ms", p.key))   # one cost: a number, as before
    assert search.measurements(PAIR) == [p.key] == search.measurements("lat_gpu_ms")


def test_device_classes_and_options_are_checked(table):
    with pytest.raises(ValueError, match="one or two costs"):
        DeviceClass("x", (Objective("a"), Objective("b"), Objective("c")))
    with pytest.raises(OptionError, match="ehvi"):
        FleetSearch(table.space, table.accuracy, table.devices, acquisition="ehvi", **FAST)
    with pytest.raises(OptionError, match="dominance"):
        FleetSearch(table.space, table.accuracy, table.devices, dominance="both", **FAST)
    with pytest.raises(OptionError, match="max_pool"):
        FleetSearch(table.space, table.accuracy, table.devices, max_pool=0, **FAST)


def test_the_candidate_pool_stays_within_its_bounds(table):
    """A large space (or many classes) would grow the pool without bound: at most max_pool candidates per round, and
    neighbours of at most max_neighbours configs per front."""
    loose = FleetSearch(table.space, table.accuracy, table.devices, seed=4, budget=40, **dict(FAST, n_random_pool=200))
    drive_fleet(table, loose, batch=10)
    bounded = FleetSearch(table.space, table.accuracy, table.devices, seed=4, budget=40,
                          **dict(FAST, n_random_pool=200, max_pool=60, max_neighbours=3))
    drive_fleet(table, bounded, batch=10)
    assert max(r["pool"] for r in loose.round_reports) > 60    # the bound matters on this table
    assert all(r["pool"] <= 60 for r in bounded.round_reports)
    for d in table.devices:
        assert len(bounded.measurements(d.name)) == 40 == len(set(bounded.measurements(d.name)))


def test_bench_devices_with_two_costs(fleet_csv, capsys):  # noqa: F811
    options = [x for k, v in FAST.items() for x in ("--option", f"{k}={json.dumps(v)}")]
    args = ["bench", "--table", str(fleet_csv), "--params", "width,kernel,depth", "--objectives", "acc:max",
            "--budget", "30", "--seeds", "1", "--batch", "10"]
    assert main([*args, "--devices", f"{PAIR},lat_gpu_ms", "--json", *options]) == 0
    out = json.loads(capsys.readouterr().out)
    pair, single = out["devices"][PAIR], out["devices"]["lat_gpu_ms"]
    assert pair["objectives"] == 3 and pair["correlation"] > 0.9 and pair["true_front_size"] >= 1
    assert single["objectives"] == 2 and single["correlation"] is None
    assert 0 <= pair["hv_gap_median"][0] <= 1 and set(out["quality_median"]["classes"]) == {PAIR, "lat_gpu_ms"}
    assert main([*args, "--devices", "lat_cpu_ms+lat_gpu_ms+lat_npu_ms"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "at most two cost columns" in err and "Traceback" not in err


def test_a_joint_search_takes_energy_as_a_second_cost():
    from fleetnas.host.errors import UsageError
    from fleetnas.host.run.controller import SearchSettings
    from fleetnas.host.run.fleet_loop import check_fleet_mode

    three = SearchSettings("tiny", objectives=("accuracy", "latency", "energy"), fleet_mode="joint")
    check_fleet_mode(three)    # accepted: each class then measures latency and energy
    with pytest.raises(UsageError, match="takes one cost per class"):
        check_fleet_mode(SearchSettings("tiny", objectives=("accuracy", "latency", "energy"), fleet_mode="joint",
                                        tactic_options=(("acquisition", "ehvi"),)))


@pytest.mark.parametrize("script,args", [("fleet_three_objectives.py", ["--seeds", "1"]),
                                         ("fleet_round_time.py", ["--seeds", "1", "--spaces", "nb201"])])
def test_the_benchmarks_explain_a_missing_table(tmp_path, monkeypatch, capsys, script, args):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "benchmarks" / script
    spec = importlib.util.spec_from_file_location(script[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TABLE", tmp_path / "absent.csv")
    assert module.main(args) == 0
    assert "skipped" in capsys.readouterr().out
