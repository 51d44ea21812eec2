"""The host CLI: SIGKILL or Ctrl-C mid-run, `--resume` finishes; a failed start leaves nothing; an old run folder
resumes; `fleetnas report`, `fleetnas devices check`."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_harness import running_agent
from conftest import E2E_TIMING
from fleet_helpers import devices_toml
from old_runs import FIXTURE, old_run_folder, only_old_keys

from fleetnas.host.cli import main

BUDGET = 4


def fleetnas(*args, env=None, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "fleetnas.host.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


def search_args(tmp_path, export_dir):
    timing = [f"--warmup-runs={E2E_TIMING['warmup_runs']}", f"--warmup-s={E2E_TIMING['warmup_s']}",
              f"--blocks={E2E_TIMING['blocks']}", f"--min-runs={E2E_TIMING['min_runs_per_block']}",
              "--min-block-s=0.2"]
    return ["search", "--supernet", "tiny", "--devices", tmp_path / "devices.toml", "--budget", BUDGET,
            "--seed", 0, "--tactic", "random", "--out", tmp_path / "run", "--export-dir", export_dir,
            "--threads", 1, "--no-progress", *timing]


def journal_rows(run_dir):
    """(trial key, source, device) of every board measurement journaled, in order."""
    path = run_dir / "journal.sqlite"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(str(path), timeout=5) as db:
            rows = db.execute("SELECT t.key, m.payload_json FROM measurements m JOIN trials t USING (trial_id) "
                              "WHERE m.metric = 'latency_ms' ORDER BY m.measurement_id").fetchall()
    except sqlite3.OperationalError:   # tables not created yet
        return []
    return [(key, json.loads(p)["source"], json.loads(p)["device_name"]) for key, p in rows]


@pytest.mark.slow
def test_host_killed_mid_run_then_resume_measures_nothing_twice(tmp_path, tiny, export_dir, isolated_cache):
    env = dict(os.environ)
    with running_agent(tmp_path / "a0") as a0, running_agent(tmp_path / "a1") as a1:
        (tmp_path / "devices.toml").write_text(devices_toml([a0, a1]))
        args = search_args(tmp_path, export_dir)
        host = subprocess.Popen([sys.executable, "-m", "fleetnas.host.cli", *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 400
        while len(journal_rows(tmp_path / "run")) < 1 and time.monotonic() < deadline and host.poll() is None:
            time.sleep(0.02)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
        assert host.returncode == -signal.SIGKILL, host.stderr.read().decode()[-2000:]
        before = journal_rows(tmp_path / "run")
        assert 1 <= len(before) < BUDGET, before
        again = fleetnas(*args, env=env)      # same run without --resume: refused, says what to do
        assert again.returncode == 2 and "--resume" in again.stderr
        resumed = fleetnas(*args, "--resume", "--json", env=env)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        done = a0.service.queue_stats().measurements_done + a1.service.queue_stats().measurements_done
    rows = journal_rows(tmp_path / "run")
    assert rows[:len(before)] == before
    keys = [k for k, _, _ in rows]
    assert len(keys) == BUDGET and len(set(keys)) == BUDGET          # one result per candidate, none twice
    measured = sum(1 for r in rows if r[1] == "measured")
    # Every candidate was measured on a board exactly once: results of the killed run come back from the journal, or
    # from the measurement cache when the host died before journaling them; a measurement in flight at the SIGKILL
    # finishes on its agent, which remembers it by request_id, and the resumed host asks the class's agents for it.
    assert done == BUDGET, (measured, done, rows)
    data = json.loads(resumed.stdout)
    assert data["candidates_evaluated"] == BUDGET and data["fronts"]["cpu"]
    report = fleetnas("report", tmp_path / "run", "--json", "--no-plots")
    assert report.returncode == 0, report.stderr
    replay = json.loads(report.stdout)
    assert replay["fronts"] == data["fronts"] and replay["candidates_evaluated"] == BUDGET
    assert isinstance(replay["measurements"], int) and replay["measurements"] == measured
    best = tmp_path / "best.onnx"
    exported = fleetnas("export", tmp_path / "run", "--device", "cpu", "--pick", 0, "--format", "onnx", "--out", best,
                        "--cache-dir", export_dir, "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(json.loads(exported.stdout)["config_key"]) == replay["fronts"]["cpu"][0]["config"]
    assert json.loads(exported.stdout)["sha256"] == replay["fronts"]["cpu"][0]["model_sha256"]


def test_report_and_devices_cli_errors(tmp_path):
    r = fleetnas("report", tmp_path)
    assert r.returncode == 2 and "not a fleetnas run folder" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.toml").write_text('[[device]]\nname = "x"\n')
    r = fleetnas("devices", "check", "--devices", tmp_path / "bad.toml")
    assert r.returncode == 2 and "missing address" in r.stderr


def test_devices_check_reachable_and_not(tmp_path):
    with running_agent(tmp_path / "a") as agent:
        toml = devices_toml([agent]) + '[[device]]\nname = "gone"\naddress = "127.0.0.1:1"\nclass = "cpu"\n'
        (tmp_path / "devices.toml").write_text(toml)
        r = fleetnas("devices", "check", "--devices", tmp_path / "devices.toml", "--json", "--timeout-s", 3)
        r_text = fleetnas("devices", "check", "--devices", tmp_path / "devices.toml", "--timeout-s", 3)
    assert r.returncode == 1, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["dev0"]["usable"] and rows["dev0"]["fingerprint_sha256"]
    assert "onnxruntime" in rows["dev0"]["runtimes"][0]
    assert abs(rows["dev0"]["clock_offset_ms"]) < 1000
    assert not rows["gone"]["reachable"] and "unreachable" in rows["gone"]["problem"]
    assert r_text.returncode == 1 and "error: gone (127.0.0.1:1) unusable: " in r_text.stderr
    assert "dev0" in r_text.stdout and "unreachable" in r_text.stderr


# the settings tests/fixtures/run_v1 was written with (timing as E2E_TIMING then)
FIXTURE_ARGS = ["--supernet", "tiny", "--budget", 4, "--seed", 0, "--tactic", "random", "--threads", 1,
                "--warmup-runs", 2, "--warmup-s", 0.02, "--blocks", 3, "--min-runs", 5, "--min-block-s", 0.03,
                "--timeout-s", 60.0, "--no-progress"]


def cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_written_before_the_run_store_resumes(tmp_path, capsys, isolated_cache):
    """Written by the previous code: 3 trials told, a 4th measured and journaled but not told when the host stopped.
    The resumed run tells it from the journal (no board measures anything) and reports what that code reported."""
    run = old_run_folder(tmp_path / "run")
    with running_agent(tmp_path / "a0") as agent:
        (tmp_path / "devices.toml").write_text(devices_toml([agent]))
        code, out, err = cli(["search", *FIXTURE_ARGS, "--devices", tmp_path / "devices.toml", "--out", run,
                              "--resume", "--json"], capsys)
        assert code == 0, err
        assert agent.service.queue_stats().measurements_done == 0
    assert f"resuming {run}: cpu 3 done, 0 failed, 1 pending; 4 sub-network(s) reused" in err
    data = json.loads(out)
    assert data.pop("run_dir") == str(run)
    assert only_old_keys(data, old := json.loads((FIXTURE / "report_resumed.json").read_text())) == old


def test_a_start_that_fails_leaves_no_run_folder(tmp_path, capsys, isolated_cache, export_dir):
    """A wrong --tactic-option, --data or --weights: one error line, no run folder; the corrected command runs."""
    with running_agent(tmp_path / "a0") as agent:
        (tmp_path / "devices.toml").write_text(devices_toml([agent]))
        base = ["search", "--supernet", "tiny", "--devices", tmp_path / "devices.toml", "--budget", 1,
                "--out", tmp_path / "run", "--export-dir", export_dir, "--threads", 1, "--no-progress",
                "--min-block-s", 0.03, "--blocks", 3]
        for wrong, message in ((["--tactic-option", "n_init=many"], "n_init"),
                               (["--data", tmp_path / "no-such-folder"], "--data"),
                               (["--weights", tmp_path / "no-such.pt"], "no-such.pt")):
            code, _, err = cli(base + wrong, capsys)
            assert code == 2 and message in err and "Traceback" not in err, err
            assert not (tmp_path / "run").exists(), wrong
        code, out, err = cli(base + ["--tactic", "random"], capsys)
        assert code == 0, err
    assert "1 candidates evaluated" in out


@pytest.mark.slow
def test_ctrl_c_says_how_to_continue_and_that_command_finishes_the_run(tmp_path, export_dir, isolated_cache):
    env = dict(os.environ)
    with running_agent(tmp_path / "a0") as a0:
        (tmp_path / "devices.toml").write_text(devices_toml([a0]))
        args = search_args(tmp_path, export_dir)
        host = subprocess.Popen([sys.executable, "-m", "fleetnas.host.cli", *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 400
        while len(journal_rows(tmp_path / "run")) < 1 and time.monotonic() < deadline and host.poll() is None:
            time.sleep(0.02)
        host.send_signal(signal.SIGINT)
        _, err = host.communicate(timeout=60)
        assert host.returncode == 130, err[-2000:]
        assert "Traceback" not in err
        line = next(x for x in err.splitlines() if x.startswith("interrupted: continue with "))
        command = shlex.split(line[len("interrupted: continue with "):])
        assert command[:2] == ["fleetnas", "search"] and command[-3:] == ["--resume", "--out", str(tmp_path / "run")]
        resumed = fleetnas(*command[1:], env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resuming .*: cpu \d+ done, 0 failed, \d+ pending; \d+ sub-network\(s\) reused", resumed.stderr)
    keys = [k for k, _, _ in journal_rows(tmp_path / "run")]
    assert len(keys) == BUDGET and len(set(keys)) == BUDGET
