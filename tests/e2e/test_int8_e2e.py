"""int8 end to end: the quantized model is what a real agent measures and what the front's accuracy is of."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from conftest import E2E_TIMING

from fleetnas.host.cli import main
from fleetnas.host.export.registry import get_exporter
from fleetnas.host.store.run_store import RunStore
from fleetnas.host.supernets.tiny import prepare_images

MEASURED = (0, 3)  # OK, or UNSTABLE (numbers flagged): a loaded machine may produce either
FAST = ["--warmup-runs", "2", "--warmup-s", "0.02", "--blocks", "3", "--min-runs", "5", "--min-block-s", "0.03"]
CONFIG = {"res": 12, "w_0": 16, "d_0": 1, "k_0": 3, "w_1": 32, "d_1": 1, "k_1": 3, "w_2": 48, "d_2": 1, "k_2": 3}


def test_an_int8_model_is_measured_by_a_real_agent_and_a_corrupt_one_refused(agent, tiny, export_dir, tmp_path,
                                                                               capsys):
    exported = get_exporter("onnx", "int8").export(tiny, CONFIG, export_dir)
    assert main(["measure", str(exported.path), "--agent", agent.address, "--threads", "1", "--json",
                 *FAST]) in MEASURED
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] in ("OUTCOME_OK", "OUTCOME_UNSTABLE") and result["overall"]["median_ms"] > 0
    assert result["config"]["runtime"] == "onnxruntime"
    corrupt = tmp_path / "cut.onnx"
    corrupt.write_bytes(exported.path.read_bytes()[: exported.size_bytes // 2])   # a half-copied file
    assert main(["measure", str(corrupt), "--agent", agent.address, *FAST]) in (1, 2)
    captured = capsys.readouterr()
    assert "error" in (captured.out + captured.err).lower() and "median" not in captured.out


def held_out_accuracy(tiny, model_path, config) -> float:
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    _, _, test_x, test_y = tiny.split()
    images = prepare_images(test_x, config["res"]).numpy()
    return float(np.mean([session.run(None, {"input": images[i:i + 1]})[0].argmax() == test_y[i]
                          for i in range(len(images))]))


def search_int8(tmp_path, budget, extra=()):
    timing = [f"--warmup-runs={E2E_TIMING['warmup_runs']}", f"--warmup-s={E2E_TIMING['warmup_s']}",
              f"--blocks={E2E_TIMING['blocks']}", f"--min-runs={E2E_TIMING['min_runs_per_block']}",
              f"--min-block-s={E2E_TIMING['min_block_s']}"]
    out = tmp_path / "run"
    code = main(["search", "--supernet", "tiny", "--devices", "local", "--precision", "int8", "--budget", str(budget),
                 "--out", str(out), "--threads", "1", "--no-progress", "--no-measurement-cache", "--json",
                 *timing, *extra])
    assert code == 0
    return out


def check_front_is_of_int8_models(tiny, run_dir, capsys):
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "int8"
    with RunStore.open(run_dir) as store:
        subnets = {s.model_sha256: s for s in store.subnets().values()}
    front = report["fronts"]["local"]
    assert front
    for p in front:
        s = subnets[p["model_sha256"]]
        assert s.accuracy_model == "onnx-int8" and p["accuracy_model"] == "onnx-int8"
        assert p["accuracy"] == p["int8_accuracy"] == s.int8_accuracy == held_out_accuracy(tiny, s.model_path,
                                                                                          p["config"])
        assert p["float_accuracy"] == s.float_accuracy == tiny.evaluate(p["config"])
        assert p["accuracy_drop"] == pytest.approx(p["float_accuracy"] - p["int8_accuracy"])
    return report


def test_int8_search_short(tmp_path, tiny, isolated_cache, capsys):
    run_dir = search_int8(tmp_path, 3, ["--tactic", "random"])
    report = check_front_is_of_int8_models(tiny, run_dir, capsys)
    # exporting a front member of the run gives the int8 file that was measured, byte for byte
    out = tmp_path / "picked.onnx"
    assert main(["export", str(run_dir), "--device", "local", "--pick", "0", "--out", str(out), "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    assert picked["precision"] == "int8" and picked["sha256"] == report["fronts"]["local"][0]["model_sha256"]
    header = (run_dir / "local" / "front.csv").read_text().splitlines()[0].split(",")
    assert {"accuracy", "float_accuracy", "int8_accuracy", "accuracy_drop", "accuracy_model"} <= set(header)
    # the same folder at fp32 is refused: its accuracies and models are int8
    code = main(["search", "--supernet", "tiny", "--devices", "local", "--budget", "3", "--out", str(run_dir),
                 "--resume", "--tactic", "random", "--no-progress"])
    assert code == 2
    assert 'precision: "int8" -> "fp32"' in capsys.readouterr().err


@pytest.mark.slow
def test_int8_search_budget_12(tmp_path, tiny, isolated_cache, capsys):
    run_dir = search_int8(tmp_path, 12)
    report = check_front_is_of_int8_models(tiny, run_dir, capsys)
    assert report["candidates_evaluated"] == 12
    table = (run_dir / "summary.md").read_text()
    assert "float" in table and "drop" in table
