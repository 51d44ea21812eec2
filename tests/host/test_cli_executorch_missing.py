"""Without executorch on the host, `fleetnas export --format pte` and `fleetnas search --runtime executorch` say how
to install it before any work (the real CLI in a subprocess with executorch made unimportable)."""
from __future__ import annotations

import time

from cli_subprocess import assert_no_traceback, run_cli

HINT = "pip install 'fleetnas[executorch]'"


def test_export_pte_names_the_extra_before_building_anything(tmp_path):
    out = tmp_path / "x.pte"
    r = run_cli(["export", "--supernet", "tiny", "--config", "random", "--format", "pte", "--out", out],
                block=("executorch",), timeout_s=120)
    assert r.returncode == 2, r.stderr
    assert HINT in r.stderr and not out.exists()
    assert_no_traceback(r)


def test_search_on_executorch_names_the_extra_before_the_first_candidate(tmp_path):
    started = time.monotonic()
    r = run_cli(["search", "--supernet", "tiny", "--devices", "local", "--runtime", "executorch", "--budget", "2",
                 "--out", tmp_path / "run", "--no-progress"], block=("executorch",), timeout_s=300)
    assert r.returncode == 2, r.stderr + r.stdout
    assert HINT in r.stderr, r.stderr
    assert "evaluated" not in r.stdout and not list((tmp_path / "run").glob("models/*.pte"))
    assert_no_traceback(r)
    assert time.monotonic() - started < 280
