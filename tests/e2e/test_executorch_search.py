"""`fleetnas search --runtime executorch`: candidates exported as .pte on the host, measured by a local agent's
ExecuTorch runtime, a front at the end (a subprocess, as a user runs it)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetnas.host.store.run_store import RunStore

pytest.importorskip("executorch", reason="executorch not installed: pip install 'fleetnas[executorch]'")

QUICK = ["--threads", "1", "--warmup-runs", "2", "--warmup-s", "0.02", "--blocks", "3", "--min-runs", "5",
         "--min-block-s", "0.03"]


def search(tmp_path, budget: int, precision: str = "fp32") -> dict:
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices", "local",
                        "--runtime", "executorch", "--precision", precision, "--budget", str(budget), "--out", str(out),
                        "--json", *QUICK],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    data = json.loads(r.stdout)
    assert data["candidates_evaluated"] == budget and data["measurements"] == budget
    front = data["fronts"]["local"]
    assert front and all(0 < p["accuracy"] <= 1 and p["latency_ms"] > 0 for p in front)
    models = sorted((out / "models").glob("*.pte"))
    assert len(models) == budget and all(m.read_bytes()[4:8] == b"ET12" for m in models)
    with RunStore.open(out) as store:
        subnets = store.subnets().values()
    assert len(subnets) == budget
    for subnet in subnets:
        if precision == "int8":   # the objective is the quantized program's own accuracy, evaluated on the host
            assert subnet.accuracy_model == "pte-int8" and subnet.accuracy == subnet.int8_accuracy
            assert subnet.float_accuracy is not None
        else:
            assert subnet.accuracy == subnet.float_accuracy
    assert {p["accuracy"] for p in front} <= {s.accuracy for s in subnets}
    return data


def test_a_small_int8_search_measures_and_validates_the_quantized_pte_programs(tmp_path, isolated_cache):
    search(tmp_path, 1, "int8")


@pytest.mark.slow
def test_an_int8_search_of_budget_12_on_executorch(tmp_path, isolated_cache):
    data = search(tmp_path, 12, "int8")
    assert len(data["fronts"]["local"]) >= 1


@pytest.mark.slow
def test_search_budget_6_on_executorch(tmp_path, isolated_cache):
    data = search(tmp_path, 6)
    assert len(data["fronts"]["local"]) >= 1
