"""A --budget larger than the space is said up front (the search then ends when the space is exhausted)."""
from __future__ import annotations

from cli_subprocess import assert_no_traceback, run_cli


def test_a_budget_beyond_the_space_is_warned_about_before_the_fleet_is_asked(tmp_path):
    devices = tmp_path / "devices.toml"
    devices.write_text('[[device]]\nname = "no-address"\nclass = "x"\n')   # refused right after the warning
    r = run_cli(["search", "--supernet", "tiny", "--devices", devices, "--budget", "100000", "--out", tmp_path / "run"],
                env={"FLEETNAS_CACHE_DIR": str(tmp_path / "cache")})
    assert_no_traceback(r)
    lines = r.stderr.strip().splitlines()
    assert lines[0] == ("warning: --budget 100000 is more than the 6912 sub-networks of tiny: each class's search "
                        "ends once it has measured every one"), r.stderr
    assert r.returncode == 2 and "missing address" in r.stderr
    assert not (tmp_path / "run").exists()
