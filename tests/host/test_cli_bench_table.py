"""The README's `fleetnas bench` runs as written on a clean clone: the shipped NAS-Bench-201 table
(benchmarks/data/nb201_devices.csv.gz, read compressed), with its licence notices beside it, and no library
warnings in the output."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from cli_subprocess import assert_no_traceback, run_cli

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "benchmarks" / "data" / "nb201_devices.csv.gz"


def readme_bench_commands():
    """Every `fleetnas bench ...` command of the README (with its continuation lines), as arguments."""
    text = (REPO / "README.md").read_text()
    found = re.findall(r"^fleetnas bench (.*?(?:\\\n.*?)*)$", text, flags=re.M)
    assert found, "README has no fleetnas bench command"
    return [shlex.split(re.sub(r"\s+#.*$", "", f.replace("\\\n", " "), flags=re.M)) for f in found]


def readme_bench_command():
    """The README's first `fleetnas bench` command: one device."""
    return readme_bench_commands()[0]


def test_the_table_and_its_notices_are_shipped():
    assert TABLE.is_file() and TABLE.stat().st_size < 2 * 2**20
    notice = (REPO / "benchmarks" / "data" / "NOTICE").read_text()
    for project in ("NATS-Bench", "HW-NAS-Bench", "HELP"):
        assert project in notice
    assert notice.count("\nMIT License\n") == 3 and "Permission is hereby granted" in notice


def test_readme_bench_command_runs_on_the_shipped_table_without_warnings():
    args = readme_bench_command()
    assert args[args.index("--table") + 1] == "benchmarks/data/nb201_devices.csv.gz"
    # the README's budget and seeds, made small; enough linas rounds that GP fits would warn
    args[args.index("--budget") + 1] = "100"
    args[args.index("--seeds") + 1] = "1"
    r = run_cli(["bench", *args, "--option", "n_init=20"], cwd=REPO, timeout_s=600)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Warning" not in r.stderr, r.stderr[-2000:]
    data = json.loads(r.stdout)
    assert data["true_front_size"] == 43 and abs(data["hv_true"] - 1.175022) < 1e-6
    assert data["budgets"][-1] == 100


def test_readme_fleet_bench_command_runs_on_the_shipped_table():
    args = next(a for a in readme_bench_commands() if "--devices" in a)
    assert args[args.index("--table") + 1] == "benchmarks/data/nb201_devices.csv.gz"
    args[args.index("--budget") + 1] = "30"   # the README's budget and seeds, made small
    args[args.index("--seeds") + 1] = "1"
    r = run_cli(["bench", *args], cwd=REPO, timeout_s=600)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(r.stdout)
    assert len(data["devices"]) == 4 and data["validations_median"] <= 350
    assert "hwnb_fpga_lat_ms" in json.dumps(data)   # the joining device is reported
