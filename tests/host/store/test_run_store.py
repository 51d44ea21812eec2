"""The run store: a run folder's settings, sub-networks, trials and measurements; old journals migrate on open."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import Measurement
from fleetnas.host.store.journal import SCHEMA_VERSION, Journal, JournalError
from fleetnas.host.store.run_store import RunStore, Subnet
from old_runs import old_run_folder

SETTINGS = {"supernet": "toy", "weights": "w1", "objectives": ["accuracy", "latency"], "seed": 0, "tactic": "random",
            "tactic_options": {}, "runtime": {"runtime": "onnxruntime"}, "budget": 3, "classes": ["cpu"],
            "devices": {"dev0": "cpu"}}


def host_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM measurements WHERE device = 'host'").fetchone()[0]


def measurement(key: str, latency_ms: float, energy_mj=None) -> Measurement:
    return Measurement("fp", "sha", "{}", "cpu", "dev0", "id0", key, "OK", latency_ms, energy_mj, False, "measured",
                       time.time_ns(), {"overall": {"median_ms": latency_ms}})


def test_old_journal_migrates_on_open_and_keeps_every_figure(tmp_path):
    run = old_run_folder(tmp_path / "old-run")
    with sqlite3.connect(run / "journal.sqlite") as db:
        old = {json.loads(p)["config_key"]: json.loads(p) for (p,) in db.execute(
            "SELECT payload_json FROM measurements WHERE device = 'host' AND metric = 'accuracy'")}
    assert host_rows(run / "journal.sqlite") == 4
    with RunStore.open(run) as store:
        assert store.journal.schema_version == SCHEMA_VERSION
        subnets = store.subnets()
        # every field of every sub-network; what later schemas added says these were float accuracies
        assert {k: {f: s.__dict__[f] for f in old[k]} for k, s in subnets.items()} == old
        assert all(s.float_accuracy == s.accuracy and s.int8_accuracy is None and s.accuracy_model == "torch-fp32"
                   for s in subnets.values())
        trials = store.class_trials("cpu")
        assert [t.state for t in trials] == ["done", "done", "done", "pending"]
        assert all(t.subnet == subnets[t.config_key] for t in trials)
        (pending,) = store.pending("cpu").values()
        assert pending.dispatched and pending.measurement is not None      # measured, never told
        assert pending.measurement.config_key == pending.config_key
        assert len(store.measurements()) == 4 and all(m.device_name == "dev0" for m in store.measurements())
    assert host_rows(run / "journal.sqlite") == 0
    with RunStore.open(run) as store:   # a second open changes nothing
        assert store.subnets() == subnets


def test_a_failed_migration_leaves_the_old_journal_as_it_was(tmp_path):
    run = old_run_folder(tmp_path / "old-run")
    with sqlite3.connect(run / "journal.sqlite") as db:   # makes the migration's CREATE TABLE fail half-way
        db.execute("CREATE TABLE subnets (x)")
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(run / "journal.sqlite")
    with sqlite3.connect(run / "journal.sqlite") as db:
        assert db.execute("SELECT version FROM schema_version").fetchone()[0] == 1
        assert "dispatched_s" not in [r[1] for r in db.execute("PRAGMA table_info(trials)")]
    assert host_rows(run / "journal.sqlite") == 4


def test_create_resume_and_what_resume_refuses(tmp_path):
    run = tmp_path / "run"
    store = RunStore.create(run, SETTINGS)
    store.close()
    with pytest.raises(UsageError, match="already holds a run: add --resume"):
        RunStore.create(run, SETTINGS)
    changed = {**SETTINGS, "seed": 1, "tactic": "nsga2", "budget": 9, "classes": ["gpu"]}
    with pytest.raises(UsageError) as exc:
        RunStore.resume(run, changed, ["gpu"])
    message = str(exc.value)   # one error listing everything that changed; the budget may change
    assert 'seed: 0 -> 1' in message and 'tactic: "random" -> "nsga2"' in message
    assert "device class cpu is gone" in message and "budget" not in message
    with RunStore.resume(run, {**SETTINGS, "budget": 9}, ["cpu"]) as store:
        assert store.settings["budget"] == 9
    assert json.loads((run / "run.json").read_text())["budget"] == 9
    with pytest.raises(UsageError, match="holds no run to continue"):
        RunStore.resume(tmp_path / "other", SETTINGS, ["cpu"])
    with pytest.raises(UsageError, match="not a fleetnas run folder"):
        RunStore.open(tmp_path / "other")


def test_discard_removes_only_what_create_made(tmp_path):
    fresh = tmp_path / "fresh" / "run"
    store = RunStore.create(fresh, SETTINGS)
    (fresh / "models").mkdir()
    (fresh / "models" / "a.onnx").write_bytes(b"x")
    store.discard()
    assert not fresh.exists() and (tmp_path / "fresh").is_dir()
    given = tmp_path / "given"        # a folder the user made, with something of theirs in it
    given.mkdir()
    (given / "notes.txt").write_text("mine")
    RunStore.create(given, SETTINGS).discard()
    assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]


def test_subnets_once_per_configuration_and_trials_in_result_order(tmp_path):
    from fleetnas.host.search.engine import Search
    from fleetnas.host.search.pareto import Objective
    from fleetnas.host.search.space import Integer, SearchSpace

    store = RunStore.create(tmp_path / "run", SETTINGS)
    search = Search(SearchSpace([Integer("w", 1, 5)]), [Objective("accuracy", True), Objective("latency_ms")],
                    tactic="random", seed=0, budget=3, journal=store.journal, run="cpu")
    a, b, c = search.ask(3)
    for p in (a, b, c):
        store.add_subnet(Subnet(p.key, 0.5, "sha", f"/m/{p.trial_id}", 10, None, None, 0.1, 0.2))
        store.add_subnet(Subnet(p.key, 0.9, "other", "/x", 1, 1, 1, 0.0, 0.0))   # ignored: computed once
    store.mark_dispatched(b.trial_id)
    store.mark_dispatched(c.trial_id)
    store.add_measurement(c.trial_id, measurement(c.key, 2.0, energy_mj=1.5))
    search.tell(c.trial_id, {"accuracy": 0.5, "latency_ms": 2.0})
    store.add_measurement(b.trial_id, measurement(b.key, 3.0))     # the host died before telling it
    assert {k: s.accuracy for k, s in store.subnets().items()} == {a.key: 0.5, b.key: 0.5, c.key: 0.5}
    pending = store.pending("cpu")
    assert set(pending) == {a.trial_id, b.trial_id}
    assert not pending[a.trial_id].dispatched and pending[a.trial_id].measurement is None
    assert pending[b.trial_id].dispatched and pending[b.trial_id].measurement.latency_ms == 3.0
    views = store.class_trials("cpu")
    assert [v.trial_id for v in views] == [c.trial_id, a.trial_id, b.trial_id]   # told first, then by proposal
    assert views[0].measurement.energy_mj == 1.5 and views[2].measurement is None   # only told trials show one
    metrics = [r.metric for r in store.journal.run_measurements(search.run_id)]
    assert metrics == ["latency_ms", "energy_mj", "latency_ms"]
    store.close()


def test_resume_checks_the_search_space_with_the_other_settings_in_one_error(tmp_path):
    from fleetnas.host.search.engine import Search
    from fleetnas.host.search.pareto import Objective
    from fleetnas.host.search.space import Integer, SearchSpace

    space, wider = SearchSpace([Integer("w", 1, 5)]), SearchSpace([Integer("w", 1, 9)])
    with RunStore.create(tmp_path / "run", SETTINGS) as store:
        Search(space, [Objective("accuracy", True), Objective("latency_ms")], tactic="random", seed=0, budget=3,
               journal=store.journal, run="cpu").ask(2)
    with pytest.raises(UsageError) as exc:
        RunStore.resume(tmp_path / "run", {**SETTINGS, "seed": 1}, ["cpu"], {"space": wider.describe()})
    assert "(seed: 0 -> 1, space changed)" in str(exc.value)
    RunStore.resume(tmp_path / "run", SETTINGS, ["cpu"], {"space": space.describe()}).close()
