"""`fleetnas bench`: --json shape on a table and on a Python problem, readable table, clear errors."""
from __future__ import annotations

import json
import textwrap

import pytest

from fleetnas.host.cli import main

TABLE_ARGS = ["--params", "e0,e1,e2,e3", "--objectives", "acc:max,latency_ms:min", "--seeds", "2", "--batch", "10"]


def test_bench_table_json_shape(toy_table, capsys):
    assert main(["bench", "--table", str(toy_table), *TABLE_ARGS, "--tactic", "random", "--budget", "120",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"tactic", "budgets", "hv_gap_median", "recall_median", "evals_to_gap_1e-3_median"} <= set(out)
    assert out["tactic"] == "random" and out["budgets"] == [50, 100, 120]
    assert len(out["hv_gap_median"]) == len(out["recall_median"]) == 3
    assert all(0.0 <= g <= 1.0 for g in out["hv_gap_median"]) and all(0.0 <= r <= 1.0 for r in out["recall_median"])
    assert out["hv_gap_median"] == sorted(out["hv_gap_median"], reverse=True)  # more evaluations, smaller gap


def test_bench_table_linas_three_objectives_readable(toy_table, capsys):
    options = ["--option", "inner_generations=5", "--option", "n_init=12", "--option", 'families=["ridge","svr"]']
    code = main(["bench", "--table", str(toy_table), "--params", "e0,e1,e2,e3", "--objectives",
                 "acc:max,latency_ms:min,energy_mj:min", "--tactic", "linas", "--budget", "40", "--seeds", "1",
                 "--batch", "10", *options])
    assert code == 0
    text = capsys.readouterr().out
    assert "HV gap" in text and "recall" in text and "evaluations to HV gap" in text


def test_bench_python_problem(tmp_path, monkeypatch, capsys):
    (tmp_path / "toy_bench_problem.py").write_text(textwrap.dedent("""
        from conftest import make_toy_problem

        def make():
            return make_toy_problem(2)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["bench", "--problem", "toy_bench_problem:make", "--tactic", "nsga2", "--budget", "60",
                 "--seeds", "2", "--batch", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["budgets"] == [50, 60] and len(out["hv_median"]) == 2 and out["hv_median"][1] >= out["hv_median"][0]


@pytest.mark.parametrize("args,message", [
    (["--params", "e0,nope", "--objectives", "acc:max,latency_ms:min"], "column(s) ['nope'] not in"),
    (["--params", "e0,e1,e2,e3", "--objectives", "acc:best,latency_ms:min"], "NAME:max or NAME:min"),
    (["--params", "e0,e1", "--objectives", "acc:max,latency_ms:min"], "have the same parameters"),
    (["--objectives", "acc:max,latency_ms:min"], "--table needs --params"),
    ([*TABLE_ARGS[:4], "--option", "n_inti=3"], "tactic 'linas' has no option(s) n_inti; its options: n_init=20"),
    ([*TABLE_ARGS[:4], "--tactic-option", "n_init=lots"], "option n_init: expected an integer, got 'lots'"),
    ([*TABLE_ARGS[:4], "--option", "=3"], "--option '=3': write NAME=VALUE"),
])
def test_bench_errors_are_one_line(toy_table, capsys, args, message):
    assert main(["bench", "--table", str(toy_table), *args, "--budget", "10", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_bench_on_published_table_small_budget(shared_data, capsys):
    table = shared_data / "nb201" / "nb201_devices.csv"
    assert main(["bench", "--table", str(table), "--params", "e0,e1,e2,e3,e4,e5", "--objectives",
                 "acc_cifar10:max,hwnb_raspi4_lat_ms:min", "--tactic", "random", "--budget", "60", "--seeds", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["true_front_size"] == 43 and out["hv_true"] == pytest.approx(1.175022, abs=1e-6)
