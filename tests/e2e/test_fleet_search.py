"""`fleetnas search --fleet-mode joint` on agents of three classes emulated from table columns: a joint search over two
classes, then the third class joins the finished run through --resume and is measured only for its own front; a
joint run interrupted mid-way resumes by replaying its journal; and a joint search of accuracy, latency and energy."""
from __future__ import annotations

import contextlib
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from agent_harness import running_agent
from conftest import E2E_TIMING
from fleet_helpers import write_table
from rich.console import Console

from fleetnas.agent.measure.emulate import EmulationTable, make_emulated_measure_fn
from fleetnas.host.cli import main
from fleetnas.host.fleet.devices import parse_devices
from fleetnas.host.fleet.dispatcher import RuntimeConfig
from fleetnas.host.run.controller import SearchController, SearchSettings
from fleetnas.host.run.progress import render
from fleetnas.host.search.fleet import FleetSearch
from fleetnas.host.search.pareto import Objective
from fleetnas.host.store.run_store import RunStore

CLASSES = ("a", "b", "c")
BUDGET = 10
# small and quick: a short initial design and reference set, one accuracy model family, a smaller candidate pool
OPTIONS = ["n_init=6", "n_reference=4", 'acc_families=["ridge"]', "n_random_pool=300"]


def three_device_table(path, tiny, missing=()):
    """One latency column per class: differently shaped functions of the sub-network, so fronts differ. Rows whose
    configuration key is in ``missing`` are left out (an emulating agent fails those with LOAD_FAILED)."""
    names = [p.name for p in tiny.space.params]
    rows = []
    for values in itertools.product(*[p.options for p in tiny.space.params]):
        config = dict(zip(names, values))
        if tiny.space.key(config) in missing:
            continue
        macs, params = tiny.macs(config), tiny.params(config)
        row = {**config, "lat_a": round(macs / 2e6, 6), "lat_b": round(macs / 4e6 + config["res"] ** 2 / 200, 6),
               "lat_c": round(params / 2e4 + macs / 8e6, 6)}
        # energy follows latency (as on boards), plus a memory term: fronts of three objectives
        rows.append({**row, **{f"energy_{c}": round(2.0 * row[f"lat_{c}"] + params / 5e4, 6) for c in CLASSES}})
    return write_table(path, rows)


@contextlib.contextmanager
def emulated_fleet(tmp_path, tiny, missing_on_b=()):
    table_path = three_device_table(tmp_path / "three.csv", tiny)
    b_path = three_device_table(tmp_path / "b.csv", tiny, missing_on_b) if missing_on_b else table_path
    params = [p.name for p in tiny.space.params]
    with contextlib.ExitStack() as stack:
        agents = {}
        for c in CLASSES:
            table = EmulationTable.from_csv(b_path if c == "b" else table_path, params, f"lat_{c}", f"energy_{c}")
            agents[c] = stack.enter_context(running_agent(tmp_path / f"agent-{c}", measure_fn=make_emulated_measure_fn(
                table, time_scale=0), emulated=True))
        yield agents


def devices_file(path, agents, classes):
    path.write_text("".join(f'[[device]]\nname = "{c}-01"\naddress = "{agents[c].address}"\nclass = "{c}"\n\n'
                            for c in classes))
    return path


def measurement_rows(run_dir, metric="latency_ms"):
    """(class, key, source) of every latency (or ``metric``) measurement journaled, in order. (The emulating agents
    run on one machine, so they share a fingerprint: the tests measure without the cross-run cache, which would mix
    them.)"""
    with sqlite3.connect(str(run_dir / "journal.sqlite")) as db:
        rows = db.execute("SELECT r.name, t.key, m.payload_json FROM measurements m JOIN trials t USING (trial_id) "
                          "JOIN runs r USING (run_id) WHERE m.metric = ? ORDER BY m.measurement_id", (metric,))
        return [(c, k, json.loads(p).get("source")) for c, k, p in rows.fetchall()]


def subnet_keys(run_dir):
    with sqlite3.connect(str(run_dir / "journal.sqlite")) as db:
        return [k for (k,) in db.execute("SELECT config_key FROM subnets ORDER BY created_s, config_key")]


def search_args(devices, run_dir, export_dir, *extra, validations=20):
    timing = [f"--warmup-runs={E2E_TIMING['warmup_runs']}", f"--warmup-s={E2E_TIMING['warmup_s']}",
              f"--blocks={E2E_TIMING['blocks']}", f"--min-runs={E2E_TIMING['min_runs_per_block']}",
              f"--min-block-s={E2E_TIMING['min_block_s']}"]
    options = [w for o in OPTIONS for w in ("--tactic-option", o)]
    cap = [] if validations is None else ["--validations", validations]
    return ["search", "--supernet", "tiny", "--devices", devices, "--fleet-mode", "joint", "--budget", BUDGET,
            *cap, "--seed", 0, "--out", run_dir, "--export-dir", export_dir, "--threads", 1,
            "--no-progress", "--no-measurement-cache", *options, *timing, *extra]


def cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_third_class_joins_a_finished_joint_run_and_is_measured_only_for_its_front(tmp_path, tiny, export_dir,
                                                                                     capsys, isolated_cache):
    run = tmp_path / "run"
    with emulated_fleet(tmp_path, tiny) as agents:
        two = devices_file(tmp_path / "two.toml", agents, ("a", "b"))
        code, out, err = cli(search_args(two, run, export_dir), capsys)
        assert code == 0, err
        assert f"a: {BUDGET} measured, 0 from cache; validations shared by the fleet:" in out
        first_rows, first_subnets = measurement_rows(run), subnet_keys(run)
        assert sorted(c for c, _, _ in first_rows) == ["a"] * BUDGET + ["b"] * BUDGET
        # one search for both classes: at most one accuracy evaluation per distinct sub-network, under the cap
        assert len(first_subnets) == len({k for _, k, _ in first_rows}) <= 20
        assert len(first_subnets) < 2 * BUDGET    # validations were shared by the two classes

        again = cli(search_args(two, run, export_dir), capsys)          # without --resume: refused
        assert again[0] == 2 and "--resume" in again[2]

        # c joins with validations of its own: the cap is raised from 20 to 26 for the whole run
        three = devices_file(tmp_path / "three.toml", agents, CLASSES)
        code, out, err = cli(search_args(three, run, export_dir, "--resume", "--json", validations=26), capsys)
        assert code == 0, err
        assert "new class(es) join the search: c" in err and "at most 26 validation(s) in all (was 20)" in err
        done = {c: agents[c].service.queue_stats().measurements_done for c in CLASSES}
        # resumed again without --validations: the journal (with its change of cap) replays, the cap stays 26
        code, out_again, err = cli(search_args(three, run, export_dir, "--resume", "--json", validations=None),
                                   capsys)
        assert code == 0 and "Traceback" not in err and "was 20" not in err, err
        assert json.loads(out_again)["max_validations"] == 26
        assert {c: agents[c].service.queue_stats().measurements_done for c in CLASSES} == done
    rows = measurement_rows(run)
    assert rows[:len(first_rows)] == first_rows                     # nothing re-measured on the old classes
    new_rows = rows[len(first_rows):]
    assert [c for c, _, _ in new_rows] == ["c"] * BUDGET and done == {"a": BUDGET, "b": BUDGET, "c": BUDGET}
    new_keys = {k for _, k, _ in new_rows}
    assert len(new_keys) == BUDGET
    subnets = subnet_keys(run)
    assert subnets[:len(first_subnets)] == first_subnets
    added = set(subnets) - set(first_subnets)
    assert added <= new_keys                      # a new accuracy evaluation only for what c asked for
    assert new_keys & set(first_subnets)         # c started from validated sub-networks (its reference set)
    assert len(subnets) <= 26                     # --validations holds for the whole run
    data = json.loads(out)
    assert data["fleet_mode"] == "joint" and data["validations"] == len(subnets) and data["max_validations"] == 26
    assert data["per_class"] == {c: {"measured": BUDGET, "from_cache": 0, "failed": 0} for c in CLASSES}
    assert data["fronts"]["c"]
    predictors = data["predictors"]
    assert predictors["rounds"] >= 1 and predictors["accuracy_model"] == "ridge"
    assert set(predictors["cost_models"]) <= set(CLASSES) and "c" in predictors["cost_models"]
    assert {tiny.space.key(p["config"]) for p in data["fronts"]["c"]} <= new_keys
    assert RunStore.read_settings(run)["classes"] == list(CLASSES)
    code, out, err = cli(["report", run, "--no-plots"], capsys)
    assert code == 0 and f"c: {BUDGET} measured, 0 from cache; validations shared by the fleet: {len(subnets)}; " \
                         f"cost predictor (" in out


def test_a_joint_search_of_accuracy_latency_and_energy(tmp_path, tiny, export_dir, capsys, isolated_cache):
    """Each class measures latency and energy together; the search fits a predictor per cost and shares validations."""
    run = tmp_path / "run"
    with emulated_fleet(tmp_path, tiny) as agents:
        two = devices_file(tmp_path / "two.toml", agents, ("a", "b"))
        code, out, err = cli(search_args(two, run, export_dir, "--objectives", "accuracy,latency,energy", "--json"),
                             capsys)
        assert code == 0, err
    latency, energy = measurement_rows(run), measurement_rows(run, "energy_mj")
    assert sorted(c for c, _, _ in latency) == ["a"] * BUDGET + ["b"] * BUDGET
    assert [(c, k) for c, k, _ in energy] == [(c, k) for c, k, _ in latency]     # measured together
    subnets = subnet_keys(run)
    assert len(subnets) == len({k for _, k, _ in latency}) <= 20
    assert len(subnets) < 2 * BUDGET    # validations were shared by the two classes
    data = json.loads(out)
    assert data["objectives"] == ["accuracy", "latency", "energy"] and data["validations"] == len(subnets)
    assert data["per_class"] == {c: {"measured": BUDGET, "from_cache": 0, "failed": 0} for c in ("a", "b")}
    for c in ("a", "b"):
        assert data["fronts"][c] and all(p["energy_mj"] > 0 for p in data["fronts"][c])
    assert set(data["predictors"]["cost_models"]) == {"a/latency_ms", "a/energy_mj", "b/latency_ms", "b/energy_mj"}
    code, out, err = cli(["report", run, "--no-plots"], capsys)
    assert code == 0 and "energy_mj predictor (" in out


class _StopAfter:
    """on_update that interrupts the run (as Ctrl-C would) once ``n`` measurements are journaled."""

    def __init__(self, run_dir, n):
        self.run_dir, self.n = run_dir, n

    def __call__(self, controller):
        if len(measurement_rows(self.run_dir)) >= self.n:
            raise KeyboardInterrupt


def test_an_interrupted_joint_run_resumes_by_replaying_its_journal(tmp_path, tiny, export_dir, isolated_cache):
    settings = SearchSettings("tiny", budget=BUDGET, seed=1, fleet_mode="joint", validations=None,
                              tactic_options=tuple(sorted({"n_init": 6, "acc_families": ["ridge"],
                                                           "n_random_pool": 300}.items())),
                              runtime=RuntimeConfig(timing=tuple(sorted(E2E_TIMING.items()))))
    run = tmp_path / "run"
    # the joint search's first sub-network fails on b's boards: a failure is journaled, replayed and not retried
    options = dict(settings.tactic_options)
    first = FleetSearch(tiny.space, Objective("accuracy", True), [Objective("a"), Objective("b")], seed=1,
                        **options).ask(2)[0].key
    with emulated_fleet(tmp_path, tiny, missing_on_b={first}) as agents:
        registry = parse_devices(devices_file(tmp_path / "d.toml", agents, ("a", "b")).read_text(), tmp_path / "d.toml")
        controller = SearchController(settings, tiny, registry, run, None, export_dir=export_dir,
                                      on_update=_StopAfter(run, 6))
        with pytest.raises(KeyboardInterrupt):
            controller.run()
        controller.close()
        before = measurement_rows(run)
        assert 6 <= len(before) < 2 * BUDGET
        resumed = SearchController(settings, tiny, registry, run, None, export_dir=export_dir, resume=True)
        summary = resumed.resume_summary()
        resumed.run()
        views = {c: (v.n_evaluated, v.n_failed) for c, v in resumed.classes.items()}
        console = Console(width=200, record=True)
        console.print(render(resumed))        # the live display reads a joint run's classes as independent ones
        screen = console.export_text()
        resumed.close()
        done = sum(agents[c].service.queue_stats().measurements_done for c in ("a", "b"))
    assert "a " in summary and "pending" in summary
    rows = measurement_rows(run)
    assert rows[:len(before)] == before
    per_class = {c: [k for cc, k, _ in rows if cc == c] for c in ("a", "b")}
    assert len(per_class["a"]) == BUDGET and len(per_class["b"]) == BUDGET - 1
    assert all(len(keys) == len(set(keys)) for keys in per_class.values())    # none measured twice
    assert first in per_class["a"] and first not in per_class["b"]
    assert done == 2 * BUDGET and views == {"a": (BUDGET, 0), "b": (BUDGET - 1, 1)}
    # opening it again replays every call (an ask that proposed something else would fail here)
    again = SearchController(settings, tiny, registry, run, None, export_dir=export_dir, resume=True)
    assert {c: (v.n_evaluated, v.n_failed) for c, v in again.classes.items()} == {"a": (BUDGET, 0), "b": (BUDGET - 1, 1)}
    assert again.joint.finished
    again.close()
    assert f"a: {BUDGET} evaluated, 0 failed, 0 in flight" in screen and "b-01" in screen
    # the joint table: per class the measurements spent, the shared validations, the cost predictor's quality
    assert "validations shared by every class" in screen and "tau " in screen and "MAPE" in screen
    # a larger --budget on resume: the calls replay with the budgets they were made with, then the new one holds
    more = SearchController(replace(settings, budget=BUDGET + 2), tiny, registry, run, None, export_dir=export_dir,
                            resume=True)
    assert not more.joint.finished and {c: v.left for c, v in more.classes.items()} == {"a": 2, "b": 2}
    more.close()


@pytest.mark.slow
def test_a_joint_run_killed_mid_way_resumes_and_measures_nothing_twice(tmp_path, tiny, export_dir, isolated_cache):
    run = tmp_path / "run"
    with emulated_fleet(tmp_path, tiny) as agents:
        args = [str(a) for a in search_args(devices_file(tmp_path / "two.toml", agents, ("a", "b")), run, export_dir)]
        host = subprocess.Popen([sys.executable, "-m", "fleetnas.host.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 400
        while host.poll() is None and time.monotonic() < deadline and (
                not (run / "journal.sqlite").exists() or len(_rows_or_none(run)) < 3):
            time.sleep(0.02)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
        assert host.returncode == -signal.SIGKILL, host.stderr.read().decode()[-2000:]
        before = measurement_rows(run)
        assert 3 <= len(before) < 2 * BUDGET
        resumed = subprocess.run([sys.executable, "-m", "fleetnas.host.cli", *args, "--resume", "--json"],
                                 capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        done = {c: agents[c].service.queue_stats().measurements_done for c in ("a", "b")}
    rows = measurement_rows(run)
    assert rows[:len(before)] == before
    for c in ("a", "b"):
        keys = [k for cc, k, _ in rows if cc == c]
        assert len(keys) == BUDGET == len(set(keys))
    assert done == {"a": BUDGET, "b": BUDGET}          # a measurement in flight at the kill was recovered, not redone
    data = json.loads(resumed.stdout)
    assert data["per_class"] == {c: {"measured": BUDGET, "from_cache": 0, "failed": 0} for c in ("a", "b")}


def _rows_or_none(run):
    try:
        return measurement_rows(run)
    except sqlite3.OperationalError:     # tables not created yet
        return []
