"""Super-networks without --weights have random weights: `fleetnas search` refuses them unless
--allow-random-weights, and then warns in one line; tiny's shipped weights pass silently. Real CLI subprocesses."""
from __future__ import annotations

import pytest
from cli_subprocess import assert_no_traceback, run_cli

from fleetnas.host.supernets import get_supernet


@pytest.mark.parametrize("name", ["ofa-mbv3"])   # the transformer: below, with the flag
def test_search_refuses_random_weights_before_starting(tmp_path, name):
    out = tmp_path / "run"
    r = run_cli(["search", "--supernet", name, "--devices", "local", "--budget", "2", "--out", out],
                env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")})
    assert_no_traceback(r)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {name} has random weights (no --weights)")
    assert "--allow-random-weights" in lines[0] and "accuracies are meaningless" in lines[0]
    assert not out.exists()


def test_allowed_random_weights_warn_in_one_line(tmp_path):
    """With the flag the search goes on (here to a devices file that does not exist) after one warning line."""
    r = run_cli(["search", "--supernet", "transformer", "--allow-random-weights", "--devices", tmp_path / "none.toml",
                 "--budget", "2", "--out", tmp_path / "run"], env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")})
    assert_no_traceback(r)
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("warning: transformer has random weights (no --weights)")
    assert len(lines) == 2 and lines[1].startswith("error:") and "none.toml" in lines[1]


def test_shipped_weights_are_not_random():
    assert not get_supernet("tiny").random_weights
    assert get_supernet("ofa-mbv3").random_weights and get_supernet("transformer").random_weights
