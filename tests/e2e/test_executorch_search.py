"""`fleetnas search --runtime executorch`: candidates exported as .pte on the host, measured by a local agent's
ExecuTorch runtime, a front at the end (a subprocess, as a user runs it)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("executorch", reason="executorch not installed: pip install 'fleetnas[executorch]'")

QUICK = ["--threads", "1", "--warmup-runs", "2", "--warmup-s", "0.02", "--blocks", "3", "--min-runs", "5",
         "--min-block-s", "0.03"]


def search(tmp_path, budget: int) -> dict:
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "search", "--supernet", "tiny", "--devices", "local",
                        "--runtime", "executorch", "--budget", str(budget), "--out", str(out), "--json", *QUICK],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    data = json.loads(r.stdout)
    assert data["candidates_evaluated"] == budget and data["measurements"] == budget
    front = data["fronts"]["local"]
    assert front and all(0 < p["accuracy"] <= 1 and p["latency_ms"] > 0 for p in front)
    models = sorted((out / "models").glob("*.pte"))
    assert len(models) == budget and all(m.read_bytes()[4:8] == b"ET12" for m in models)
    return data


def test_a_small_search_measures_pte_programs_on_the_executorch_runtime(tmp_path, isolated_cache):
    search(tmp_path, 1)


@pytest.mark.slow
def test_search_budget_6_on_executorch(tmp_path, isolated_cache):
    data = search(tmp_path, 6)
    assert len(data["fronts"]["local"]) >= 1
