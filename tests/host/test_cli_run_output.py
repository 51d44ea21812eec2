"""What a user sees from a real short `fleetnas demo` (local agent, tiny) run with stdout piped: plain progress
lines while it runs, a front table with each member's stability, `fleetnas report` (table, JSON keys old and new,
plots), and `fleetnas report` on a board install without matplotlib. One demo run serves the module."""
from __future__ import annotations

import json
import re

import pytest
from cli_subprocess import assert_no_traceback, run_cli

PROGRESS = re.compile(r"^\[\s*\d+ s\] local: (\d+)/4 evaluated(, \d+ failed)?, front \d+; (ETA (\d+ s|unknown)|done)$")
STABILITY = re.compile(r"\s(STABLE|NOISY|UNSTABLE) \d+\.\d%\s")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "demo"
    r = run_cli(["demo", "--out", out, "--budget", "4"], timeout_s=900,
                env={"FLEETNAS_CACHE_DIR": str(tmp / "cache"), "FLEETNAS_PROGRESS_INTERVAL_S": "0.5"})
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_piped_demo_prints_plain_progress_lines(demo):
    _, r = demo
    lines = [line for line in r.stdout.splitlines() if line.startswith("[")]
    assert len(lines) >= 2, r.stdout
    assert all(PROGRESS.match(line) for line in lines), lines
    counts = [int(PROGRESS.match(line).group(1)) for line in lines]
    assert counts == sorted(counts) and counts[-1] == 4 and lines[-1].endswith("; done")
    assert "\x1b[" not in r.stdout   # no terminal escape codes in a pipe


def test_front_table_shows_each_members_stability(demo):
    _, r = demo
    table = r.stdout[r.stdout.index("local: front of"):]
    header, *rows = table.splitlines()[1:]
    assert "stability (CV)" in header
    members = [row for row in rows if re.match(r"^\s*\d+\s+\d+\.\d+%", row)]
    assert members and all(STABILITY.search(row) for row in members), members


def test_report_table_and_json_keep_old_keys_and_add_stability(demo):
    out, _ = demo
    r = run_cli(["report", out])
    assert_no_traceback(r)
    assert r.returncode == 0 and "stability (CV)" in r.stdout
    r = run_cli(["report", out, "--json"])
    data = json.loads(r.stdout)
    for key in ("candidates_evaluated", "measurements", "fronts", "hypervolume", "failed", "unstable_front_members"):
        assert key in data
    member = data["fronts"]["local"][0]
    for key in ("config", "accuracy", "latency_ms", "energy_mj", "device", "model_sha256"):
        assert key in member   # unchanged
    assert member["stability"] in ("STABLE", "NOISY", "UNSTABLE") and 0 <= member["block_median_cv"] < 5
    unstable = sum(1 for m in data["fronts"]["local"] if m["stability"] == "UNSTABLE")
    assert data["unstable_front_members"] == {"local": unstable}
    reference = data["hypervolume_reference"]["local"]
    assert len(reference) == 2 and reference[0] == 1.0 and reference[1] > 0
    from PIL import Image   # matplotlib's own dependency
    with Image.open(out / "local" / "hypervolume.png") as png:
        caption = png.text["Description"]
    assert "hypervolume (ms)" in caption
    assert f"reference point (1 - accuracy 1, latency ms {reference[1]:.4g})" in caption


def test_report_without_matplotlib_names_the_extra(demo):
    out, _ = demo
    r = run_cli(["report", out], block=("matplotlib",))
    assert_no_traceback(r)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: fleetnas report needs the host extra (No module named 'matplotlib'): "
                                "pip install 'fleetnas[host]'")
