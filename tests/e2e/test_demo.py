"""`fleetnas demo`: the README's first command, as a user runs it (a subprocess, a local agent subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_prints_a_front_and_writes_a_plot(tmp_path, isolated_cache):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "demo", "--out", str(out), "--budget", "4",
                        "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(r.stdout)
    assert data["supernet"] == "tiny" and data["candidates_evaluated"] == 4 and data["measurements"] == 4
    front = data["fronts"]["local"]
    assert front and all(0 < p["accuracy"] <= 1 and p["latency_ms"] > 0 for p in front)
    assert all(p["stability"] in ("STABLE", "NOISY", "UNSTABLE") for p in front)
    # --json keeps stdout for the JSON; progress lines (stdout is a pipe) go to stderr, the last one says done
    progress = [line for line in r.stderr.splitlines() if line.startswith("[") and "local: " in line]
    assert progress and progress[-1].endswith("local: 4/4 evaluated, front %d; done" % len(front))
    assert "Traceback" not in r.stderr
    assert (out / "local" / "front.png").stat().st_size > 0 and (out / "summary.md").is_file()
    again = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "demo", "--out", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr
