"""The run-folder report from a journal written through the real store (SQLite), without torch or agents."""
from __future__ import annotations

import json
import time

import pytest

from fleetnas.host.cli import main
from fleetnas.host.fleet.measurements import Measurement
from fleetnas.host.store.run_store import RunStore, Subnet
from old_runs import FIXTURE, old_run_folder, only_old_keys

# (config, accuracy, latency_ms, energy_mj or None, outcome)
TRIALS = [
    ({"w": 1}, 0.80, 1.0, 2.0, "OK"),
    ({"w": 2}, 0.85, 2.0, 3.0, "OK"),
    ({"w": 3}, 0.84, 3.0, 1.0, "UNSTABLE"),   # dominated in accuracy/latency, best energy
    ({"w": 4}, 0.90, 4.0, 5.0, "OK"),
    ({"w": 5}, 0.70, None, None, "LOAD_FAILED"),
]


def make_run(run_dir, objectives=("accuracy", "latency")):
    from fleetnas.host.search.pareto import Objective
    from fleetnas.host.search.space import Integer, SearchSpace
    from fleetnas.host.search.engine import Search

    names = {"accuracy": ("accuracy", True), "latency": ("latency_ms", False), "energy": ("energy_mj", False)}
    store = RunStore.create(run_dir, {"supernet": "toy", "objectives": list(objectives), "seed": 0, "budget": 5,
                                      "tactic": "random", "classes": ["cpu"], "devices": {"dev0": "cpu"}})
    search = Search(SearchSpace([Integer("w", 1, 5)]), [Objective(*names[o]) for o in objectives], tactic="random",
                    seed=0, budget=5, journal=store.journal, run="cpu")
    proposals = {json.loads(p.key)["w"]: p for p in search.ask(5)}
    for config, acc, lat, energy, outcome in TRIALS:
        p = proposals[config["w"]]
        key = p.key
        store.add_subnet(Subnet(key, acc, f"sha{config['w']}", f"/m/{config['w']}.onnx", 100, 10, 5, 0.1, 0.2))
        store.mark_dispatched(p.trial_id)
        m = Measurement("fp", f"sha{config['w']}", "{}", "cpu", "dev0", "id0", key, outcome, lat, energy, False,
                        "measured" if config["w"] != 2 else "cache", time.time_ns(),
                        {"overall": {"median_ms": lat, "n": "30"}, "stability": "STABILITY_STABLE", "message": "x"})
        values = {"accuracy": acc, "latency_ms": lat, "energy_mj": energy}
        if m.usable:
            store.add_measurement(p.trial_id, m)
            search.tell(p.trial_id, {names[o][0]: values[names[o][0]] for o in objectives})
        else:
            search.fail(p.trial_id, f"{outcome} on dev0")
    store.close()
    return run_dir


def test_report_json_fronts_files(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["report", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["candidates_evaluated"] == 5 and data["failed"] == {"cpu": 1}
    assert data["errors"] == {"cpu": ["LOAD_FAILED on dev0"]}
    assert data["measurements"] == 3 and data["cache_hits"] == 1 and data["measurements_per_device"] == {"dev0": 3}
    assert [p["config"] for p in data["fronts"]["cpu"]] == [{"w": 1}, {"w": 2}, {"w": 4}]
    assert (run / "cpu" / "front.png").stat().st_size and (run / "cpu" / "hypervolume.png").stat().st_size
    rows = (run / "cpu" / "points.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("w,accuracy,latency_ms")
    assert "STABLE" in rows[1] and "STABILITY_" not in rows[1]
    front = json.loads((run / "cpu" / "front.json").read_text())
    assert front["front"][0]["measurement"]["overall"]["median_ms"] == 1.0     # provenance kept whole
    summary = json.loads((run / "summary.json").read_text())
    assert summary["fronts"] == data["fronts"]
    assert main(["report", str(run)]) == 0
    text = capsys.readouterr().out
    assert "cpu: front of 3 (of 4 evaluated)" in text and " 0    80.00%" in text


def test_three_objectives_and_hypervolume_never_drops(tmp_path):
    from fleetnas.host.report.fronts import run_fronts
    run = make_run(tmp_path / "run", ("accuracy", "latency", "energy"))
    (front,) = run_fronts(run).values()
    assert {p.config["w"] for p in front.front} == {1, 2, 3, 4}    # w=3 has the best energy
    assert all(b >= a for a, b in zip(front.hv_curve, front.hv_curve[1:])) and front.hv_curve[-1] > 0


def test_not_a_run_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a fleetnas run folder" in capsys.readouterr().err


def test_search_flag_errors_before_any_work(tmp_path, capsys):
    assert main(["search", "--supernet", "tiny", "--devices", "local", "--budget", "3", "--out", str(tmp_path / "r"),
                 "--objectives", "latency,accuracy"]) == 2
    assert "use accuracy,latency or accuracy,latency,energy" in capsys.readouterr().err
    assert main(["search", "--supernet", "tiny", "--devices", "local", "--budget", "3", "--out", str(tmp_path / "r"),
                 "--blocks", "0"]) == 2
    assert "blocks must be >= 1" in capsys.readouterr().err
    try:
        import litert_torch  # noqa: F401
    except ImportError:   # without the TFLite exporter, --runtime litert says how to get it, before any work
        assert main(["search", "--supernet", "tiny", "--devices", "local", "--budget", "3", "--out",
                     str(tmp_path / "r"), "--runtime", "litert"]) == 2
        assert "pip install" in capsys.readouterr().err


@pytest.mark.parametrize("device, pick, message", [("gpu", 0, "device classes: cpu"), ("cpu", 3, "pick 0..2")])
def test_pick_errors(tmp_path, device, pick, message):
    from fleetnas.host.errors import UsageError
    from fleetnas.host.report.pick import pick_from_run
    run = make_run(tmp_path / "run")
    with pytest.raises(UsageError, match=message):
        pick_from_run(run, device, pick)
    assert pick_from_run(run, "dev0", 2).config == {"w": 4}


def test_a_run_written_before_the_run_store_reports_the_same(tmp_path, capsys):
    """tests/fixtures/run_v1: written by the previous code; its report then is the expected output now."""
    run = old_run_folder(tmp_path / "run")
    assert main(["report", str(run), "--json", "--no-plots"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data.pop("run_dir") == str(run)
    assert only_old_keys(data, old := json.loads((FIXTURE / "report_interrupted.json").read_text())) == old
