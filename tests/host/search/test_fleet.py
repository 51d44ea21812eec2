"""Fleet search on a small synthetic table: 3 parameters, a known accuracy, 3 correlated device latencies.

Validations are shared between device classes, the validation cap holds, a device added later reuses every validation,
a seed fixes the run, and `fleetnas bench --devices ... --json` has the documented shape."""
from __future__ import annotations

import csv
import itertools
import json
import re

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from fleetnas.host.cli import main
from fleetnas.host.search.fleet import FleetOptions, FleetSearch
from fleetnas.host.search.fleet_bench import FleetTable, bench_fleet, drive_fleet, run_independent, run_joint
from fleetnas.host.search.options import OptionError
from fleetnas.host.search.pareto import Objective, non_dominated_mask

WIDTHS = (16, 24, 32, 48, 64, 96, 128, 160)
KERNELS = (1, 3, 5, 7)
DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8)
DEVICES = ("lat_cpu_ms", "lat_gpu_ms", "lat_npu_ms")
FAST = {"n_init": 10, "n_reference": 5, "acc_families": ["ridge"], "n_random_pool": 150, "pool_steps": 1,
        "n_draws": 16}
FAST_LINAS = {"n_init": 10, "inner_generations": 3, "inner_pop": 16, "n_random_pool": 40, "families": ["ridge"]}


def _row(width, kernel, depth):
    """Accuracy saturates in capacity with a kernel sweet spot; latencies share the MACs but weigh them differently."""
    capacity = (width / 160) * (depth / 8) * (1.0 + 0.2 * (kernel > 1))
    acc = 60.0 + 35.0 * (1.0 - 2.7 ** (-4.0 * capacity)) - 0.8 * (kernel == 7)
    macs = width * width * kernel * kernel * depth / 1e4
    return {"width": width, "kernel": kernel, "depth": depth, "acc": round(acc, 4),
            "lat_cpu_ms": round(1.0 + 0.9 * macs + 0.05 * depth, 4),
            "lat_gpu_ms": round(0.5 + 0.2 * macs + 0.4 * depth, 4),
            "lat_npu_ms": round(0.8 + 0.5 * macs + 0.1 * width / 16 + 0.3 * (kernel == 7), 4)}


@pytest.fixture
def fleet_csv(tmp_path):
    path = tmp_path / "fleet.csv"
    rows = [_row(w, k, d) for w, k, d in itertools.product(WIDTHS, KERNELS, DEPTHS)]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def table(fleet_csv):
    return FleetTable.from_csv(str(fleet_csv), ["width", "kernel", "depth"], Objective("acc", True),
                               [Objective(d) for d in DEVICES])


def test_joint_search_shares_validations(table):
    joint = run_joint(table, DEVICES, seed=0, budget=40, batch=10, max_validations=None, options=FAST)
    independent = run_independent(table, DEVICES, seed=0, budget=40, batch=10, options=FAST_LINAS)
    for d in DEVICES:
        assert len(joint["measured"][d]) == 40 == len(set(joint["measured"][d]))
        assert len(independent["measured"][d]) == 40
    assert joint["validations"] < independent["validations"]
    assert 40 <= joint["validations"] < 3 * 40


def test_validation_cap_is_respected_and_every_measurement_is_validated(table):
    search = FleetSearch(table.space, table.accuracy, table.devices, seed=1, budget=40, max_validations=45, **FAST)
    drive_fleet(table, search, batch=10)
    assert search.n_validations <= 45
    validated = set(search._acc)
    for d in DEVICES:
        measured = search.measurements(d)
        assert 0 < len(measured) <= 40 and set(measured) <= validated


def test_new_device_reuses_every_validation(table):
    search = FleetSearch(table.space, table.accuracy, table.devices[:2], seed=2, budget=30, **FAST)
    drive_fleet(table, search, batch=10)
    before = set(search._acc)
    search.max_validations = len(before)  # nothing new may be validated: the new class must live on what is known
    search.add_class(table.devices[2], 25)
    drive_fleet(table, search, batch=10)
    new = search.measurements(DEVICES[2])
    assert len(new) == 25 and set(new) <= before and search.n_validations == len(before)
    assert search.measurements(DEVICES[0]) == search.measurements(DEVICES[0])[:30]  # the others were not re-measured


def test_a_joining_class_starts_from_the_ends_and_members_of_the_other_fronts(table):
    search = FleetSearch(table.space, table.accuracy, table.devices[:2], seed=4, budget=30, **FAST)
    drive_fleet(table, search, batch=10)
    search.add_class(table.devices[2], 20)
    first = [p.key for p in search.ask(5)]
    assert len(first) == FAST["n_reference"] and all(search._acc.get(k) is not None for k in first)
    accuracy = {k: table.value("acc", k) for k in search._acc}
    ends = {max(accuracy, key=accuracy.get)}
    fronts = set()
    for d in DEVICES[:2]:
        measured = [k for k in search.measurements(d) if k in accuracy]
        ends.add(min(measured, key=lambda k: table.value(d, k)))
        F = np.array([[-accuracy[k], table.value(d, k)] for k in measured])
        fronts |= {k for k, on in zip(measured, non_dominated_mask(F)) if on}
    assert ends <= set(first) and set(first) - ends <= fronts


def test_a_cap_lowered_below_what_is_spent_only_stops_new_validations(table):
    search = FleetSearch(table.space, table.accuracy, table.devices[:2], seed=2, budget=20, **FAST)
    drive_fleet(table, search, batch=10)
    before = set(search._acc)
    search.max_validations = len(before) // 2          # as a resume with a smaller --validations sets it
    search.add_class(table.devices[2], 15)
    drive_fleet(table, search, batch=5)
    new = search.measurements(DEVICES[2])
    assert len(new) == 15 and set(new) <= before and search.n_validations == len(before)


def test_new_device_known_gap_bounds_what_it_reaches_without_new_validations(table):
    # the others spend the cap, so the new device measures only known configs: it cannot beat measuring all of them
    result = bench_fleet(table, list(DEVICES[:2]), "joint", 30, [1], batch=10, max_validations=30, options=FAST,
                         new_device=DEVICES[2])
    nd = result["per_seed"][0]["new_device"]
    assert nd["new_validations"] == 0 and result["validations_median"] == 30
    assert 0 <= nd["known_gap"] <= min(nd["hv_gap"])
    assert result["new_device"]["known_gap_median"] == nd["known_gap"]


def test_a_joining_device_given_validations_first_searches_what_is_validated(table):
    """The cap grows by 12 when the device joins: its first 30 % are measured among validated configs, then it
    validates new ones, never past the cap."""
    run = run_joint(table, list(DEVICES[:2]), 1, 30, 10, 30, FAST, new_device=DEVICES[2], new_budget=40,
                    new_device_validations=12)
    nd = run["new_device"]
    assert len(nd["measured"]) == 40 and set(nd["measured"][:12]) <= set(nd["known"])
    assert 0 < nd["new_validations"] <= 12 and run["validations"] <= 42
    assert set(nd["measured"]) - set(nd["known"])      # it did measure new configs


def test_same_seed_same_run(table):
    a = run_joint(table, DEVICES, seed=3, budget=30, batch=10, max_validations=40, options=FAST)
    b = run_joint(table, DEVICES, seed=3, budget=30, batch=10, max_validations=40, options=FAST)
    assert a["measured"] == b["measured"] and a["validations"] == b["validations"]


def test_bench_fleet_json_shape(fleet_csv, capsys):
    options = [x for k, v in FAST.items() for x in ("--option", f"{k}={json.dumps(v)}")]
    assert main(["bench", "--table", str(fleet_csv), "--params", "width,kernel,depth", "--objectives", "acc:max",
                 "--devices", "lat_cpu_ms,lat_gpu_ms", "--new-device", "lat_npu_ms", "--budget", "30",
                 "--validations", "60", "--seeds", "1", "--batch", "10", "--json", *options]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "joint" and out["budgets"] == [30] and out["validations_median"] <= 60
    assert set(out["devices"]) == {"lat_cpu_ms", "lat_gpu_ms"}
    for d in out["devices"].values():
        assert len(d["hv_gap_median"]) == len(d["recall_median"]) == 1 and 0 <= d["hv_gap_median"][0] <= 1
    nd = out["new_device"]
    assert nd["name"] == "lat_npu_ms" and nd["budgets"] == [10, 20, 30, 50, 100]
    assert nd["hv_gap_median"] == sorted(nd["hv_gap_median"], reverse=True)
    assert 0 <= nd["known_gap_median"] <= 1
    quality = out["quality_median"]
    assert set(quality["classes"]) == {"lat_cpu_ms", "lat_gpu_ms", "lat_npu_ms"}
    assert all(-1 <= q["loo_tau"] <= 1 and q["loo_mape"] >= 0 for q in quality["classes"].values())
    assert -1 <= quality["accuracy"]["cv_tau"] <= 1


@pytest.mark.parametrize("args,message", [
    (["--objectives", "acc:max", "--new-device", "lat_npu_ms"], "need --devices"),
    (["--objectives", "acc:max,lat_cpu_ms:min", "--devices", "lat_gpu_ms"], "names the accuracy only"),
    (["--objectives", "acc:max", "--devices", "lat_cpu_ms,nope"], "column(s) ['nope'] not in"),
    (["--objectives", "acc:max", "--devices", "lat_cpu_ms", "--fleet-mode", "independent", "--validations", "9"],
     "caps a joint search"),
    (["--objectives", "acc:max", "--devices", "lat_cpu_ms", "--new-device", "lat_npu_ms",
      "--new-device-validations", "5"], "give --fleet-mode joint, --validations N and --new-device COL"),
])
def test_bench_fleet_errors_are_one_line(fleet_csv, capsys, args, message):
    assert main(["bench", "--table", str(fleet_csv), "--params", "width,kernel,depth", *args, "--budget", "10",
                 "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_fleet_on_published_table_small_budget(shared_data):
    table = FleetTable.from_csv(str(shared_data / "nb201" / "nb201_devices.csv"), [f"e{i}" for i in range(6)],
                                Objective("acc_cifar10", True),
                                [Objective("hwnb_raspi4_lat_ms"), Objective("hwnb_pixel3_lat_ms")])
    run = run_joint(table, ["hwnb_raspi4_lat_ms", "hwnb_pixel3_lat_ms"], seed=0, budget=40, batch=20,
                    max_validations=50, options=FAST)
    assert run["validations"] <= 50 and all(len(v) == 40 for v in run["measured"].values())


def test_fleet_efficiency_explains_a_missing_table(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "fleet_efficiency.py"
    spec = importlib.util.spec_from_file_location("fleet_efficiency", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TABLE", tmp_path / "absent.csv")
    assert module.main(["--seeds", "1"]) == 0
    assert "skipped:" in capsys.readouterr().out


def test_failed_measurement_counts_and_is_not_asked_again(table):
    search = FleetSearch(table.space, table.accuracy, table.devices[:2], seed=4, budget=20, **FAST)
    first = search.ask(10)
    failed = first[0]
    search.tell_accuracy(failed.key, table.value("acc", failed.key))
    search.fail(failed.key, DEVICES[0])
    search.tell_cost(failed.key, DEVICES[1], table.value(DEVICES[1], failed.key))
    for p in first[1:]:
        search.tell_accuracy(p.key, table.value("acc", p.key))
        for c in p.classes:
            search.tell_cost(p.key, c, table.value(c, p.key))
    drive_fleet(table, search, batch=5)
    assert failed.key not in search.measurements(DEVICES[0])
    assert len(search.measurements(DEVICES[0])) == 19 and len(search.measurements(DEVICES[1])) == 20


def test_options_are_typed_and_checked(table):
    search = FleetSearch(table.space, table.accuracy, table.devices, **dict(FAST, n_init="12", class_share=0.5))
    assert isinstance(search.options, FleetOptions) and search.options.n_init == 12
    assert search.options.acc_families == ("ridge",)  # a JSON list becomes the field's tuple
    for bad, message in [({"n_inits": 3}, "no option(s) n_inits"), ({"transfer": "both"}, "transfer='both'"),
                         ({"class_share": 1.5}, "class_share=1.5"), ({"exploit_share": 2}, "exploit_share=2.0"), ({"acc_families": ["nope"]}, "nope"),
                         ({"n_draws": "many"}, "n_draws: expected an integer")]:
        with pytest.raises(OptionError, match=re.escape(message)) as info:
            FleetSearch(table.space, table.accuracy, table.devices, **bad)
        assert info.value.args[0].startswith("fleet search ") and "\n" not in info.value.args[0]


def test_class_share_keeps_budgets_and_cap(table):
    run = run_joint(table, DEVICES, seed=5, budget=30, batch=10, max_validations=40,
                    options=dict(FAST, class_share=0.5))
    assert run["validations"] <= 40
    for d in DEVICES:
        assert len(run["measured"][d]) == 30 == len(set(run["measured"][d]))


def test_round_reports_give_predictor_quality_per_class(table):
    search = FleetSearch(table.space, table.accuracy, table.devices, seed=6, budget=40, **FAST)
    drive_fleet(table, search, batch=10)
    assert search.round_reports
    last = search.round_reports[-1]["quality"]
    acc = last["accuracy"]
    assert acc["model"] == "ridge" and -1 <= acc["cv_tau"] <= 1 and acc["n_recent"] >= 3
    assert acc["recent_tau"] is not None and -1 <= acc["recent_tau"] <= 1
    assert set(last["classes"]) == set(DEVICES)
    for d, q in last["classes"].items():
        # the report is written when the round is asked: the class's measurements told by then
        assert 3 <= q["n"] <= len(search.measurements(d)) and q["n_recent"] >= 3
        # costs on this table are smooth in the encoding: the held-out predictions must rank them well
        assert q["loo_tau"] > 0.5 and q["loo_mape"] >= 0
        assert -1 <= q["recent_tau"] <= 1 and q["recent_mape"] >= 0


def test_leave_one_out_predictions_match_refitting():
    from fleetnas.host.search.fleet import _Ridge

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(25, 4)), rng.normal(size=25)
    model = _Ridge(X, y)
    loo = model.loo_predictions()
    for i in (0, 7, 24):
        keep = np.arange(25) != i
        refit = Ridge(alpha=model.model.alpha_).fit(model._X[keep], y[keep])
        assert loo[i] == pytest.approx(refit.predict(model._X[i:i + 1])[0], rel=1e-6, abs=1e-9)


def test_exploit_tail_changes_only_the_last_picks(table):
    plain = run_joint(table, DEVICES, seed=8, budget=40, batch=10, max_validations=60,
                      options=dict(FAST, exploit_share=0))
    tail = run_joint(table, DEVICES, seed=8, budget=40, batch=10, max_validations=60,
                     options=dict(FAST, exploit_share=0.25))
    for d in DEVICES:
        assert len(tail["measured"][d]) == 40 == len(set(tail["measured"][d]))
        assert tail["measured"][d][:30] == plain["measured"][d][:30]  # same random stream until the tail
    assert any(tail["measured"][d][30:] != plain["measured"][d][30:] for d in DEVICES)


def test_a_gzip_table_reads_as_the_csv_it_holds(fleet_csv, table, tmp_path):
    """The shipped benchmark tables are .csv.gz: the fleet benchmark reads them as the single-device one does."""
    import gzip
    packed = tmp_path / "fleet.csv.gz"
    packed.write_bytes(gzip.compress(fleet_csv.read_bytes()))
    again = FleetTable.from_csv(str(packed), ["width", "kernel", "depth"], table.accuracy, table.devices)
    assert again.row_of_key == table.row_of_key
    assert all(np.array_equal(again.raw[c], table.raw[c]) for c in table.raw)
