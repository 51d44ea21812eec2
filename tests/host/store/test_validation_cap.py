"""A joint run's cap on validations may change on resume: the journal records each change where it happened (so a
replay applies it there), before run.json says so; schema-4 journals take such calls after migrating."""
from __future__ import annotations

import sqlite3

from fleetnas.host.store.journal import SCHEMA_VERSION, Journal
from fleetnas.host.store.run_store import RunStore

SETTINGS = {"supernet": "toy", "weights": "w1", "objectives": ["accuracy", "latency"], "seed": 0, "tactic": "linas",
            "tactic_options": {}, "runtime": {"runtime": "onnxruntime"}, "budget": 3, "classes": ["cpu"],
            "devices": {"dev0": "cpu"}, "fleet_mode": "joint", "validations": 20}


def test_a_resume_journals_each_change_of_the_cap_and_the_first_cap_stays_known(tmp_path):
    run = tmp_path / "run"
    with RunStore.create(run, SETTINGS) as store:
        store.add_fleet_call("add_class", {"class": "cpu", "budget": 3})
        assert store.validation_caps() == (20, 20)
    with RunStore.resume(run, SETTINGS, ["cpu"]) as store:          # the same cap: nothing journaled
        assert store.validation_cap_change is None and [c.call for c in store.fleet_calls()] == ["add_class"]
    with RunStore.resume(run, {**SETTINGS, "validations": 30}, ["cpu"]) as store:
        assert store.validation_cap_change == (20, 30) and store.validation_caps() == (20, 30)
        store.add_fleet_call("ask", {"n": 1, "proposals": []})
    with RunStore.resume(run, {**SETTINGS, "validations": None}, ["cpu"]) as store:   # the cap lifted
        assert store.validation_cap_change == (30, None) and store.validation_caps() == (20, None)
        calls = [(c.call, c.payload) for c in store.fleet_calls()]
    assert calls == [("add_class", {"class": "cpu", "budget": 3}), ("validations", {"from": 20, "to": 30}),
                     ("ask", {"n": 1, "proposals": []}), ("validations", {"from": 30, "to": None})]
    assert RunStore.read_settings(run)["validations"] is None


def test_the_journal_not_run_json_says_which_cap_is_in_force(tmp_path):
    """A host killed between journaling a new cap and writing run.json: the next resume reads the journal."""
    run = tmp_path / "run"
    RunStore.create(run, SETTINGS).close()
    with RunStore.resume(run, {**SETTINGS, "validations": 30}, ["cpu"]):
        pass
    (run / "run.json").write_text((run / "run.json").read_text().replace('"validations": 30', '"validations": 20'))
    with RunStore.resume(run, {**SETTINGS, "validations": 30}, ["cpu"]) as store:
        assert store.validation_cap_change is None and store.validation_caps() == (20, 30)


def test_an_independent_run_journals_no_cap(tmp_path):
    run = tmp_path / "run"
    settings = {**SETTINGS, "fleet_mode": "independent", "validations": None}
    RunStore.create(run, settings).close()
    with RunStore.resume(run, settings, ["cpu"]) as store:
        assert store.fleet_calls() == [] and store.validation_cap_change is None


def test_a_schema_4_journal_keeps_its_calls_and_takes_a_change_of_cap(tmp_path):
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as db:        # back to what schema 4 wrote: the calls table without the new call
        db.execute("DROP TABLE fleet_calls")
        db.execute("CREATE TABLE fleet_calls (seq INTEGER PRIMARY KEY AUTOINCREMENT, call TEXT NOT NULL CHECK (call "
                   "IN ('add_class', 'budget', 'ask', 'accuracy', 'cost', 'fail')), payload_json TEXT NOT NULL, "
                   "created_s REAL NOT NULL)")
        db.executemany("INSERT INTO fleet_calls (call, payload_json, created_s) VALUES (?, ?, ?)",
                       [("add_class", '{"class": "a"}', 1), ("accuracy", '{"key": "k"}', 2)])
        db.execute("UPDATE schema_version SET version = 4")
    journal = Journal(path)
    assert journal.schema_version == SCHEMA_VERSION == 5
    journal.record_fleet_call("validations", {"from": 20, "to": 30})
    assert [(c.seq, c.call) for c in journal.fleet_calls()] == [(1, "add_class"), (2, "accuracy"), (3, "validations")]
    journal.close()
