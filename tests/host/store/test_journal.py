"""The SQLite journal: schema version, one trial per configuration, immutable results, per-device measurements."""
from __future__ import annotations

import sqlite3

import pytest

from fleetnas.host.store.journal import SCHEMA_VERSION, Journal, JournalError


def test_schema_version_and_reopen(tmp_path):
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    assert journal.schema_version == SCHEMA_VERSION
    run_id = journal.create_run("rpi5", {"tactic": "linas", "seed": 0})
    journal.close()
    again = Journal(path)
    assert again.find_run("rpi5") == (run_id, {"tactic": "linas", "seed": 0})
    assert again.find_run("other") is None


def test_newer_schema_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer than this fleetnas.*upgrade"):
        Journal(path)


def test_not_a_journal(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(path)


def test_trials_are_unique_and_results_immutable(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    run_id = journal.create_run("r", {})
    with pytest.raises(JournalError, match="already exists"):
        journal.create_run("r", {})
    (a, b) = journal.record_ask(run_id, 2, [('{"x":1}', {"x": 1}), ('{"x":2}', {"x": 2})])
    with pytest.raises(JournalError, match="already proposed"):
        journal.record_ask(run_id, 1, [('{"x":1}', {"x": 1})])
    # The failed ask left nothing behind (one transaction).
    assert [e.kind for e in journal.events(run_id)] == ["ask"]
    journal.record_result(run_id, a, {"acc": 70.0, "latency_ms": 3.5})
    journal.record_result(run_id, b, None, error="OOM")
    with pytest.raises(JournalError, match="already done"):
        journal.record_result(run_id, a, {"acc": 1.0, "latency_ms": 1.0})
    with pytest.raises(JournalError, match="not part of this run"):
        journal.record_result(run_id, 12345, {"acc": 1.0})
    trials = journal.trials(run_id)
    assert [(t.state, t.values, t.error) for t in trials] == [
        ("done", {"acc": 70.0, "latency_ms": 3.5}, None), ("failed", None, "OOM")]
    assert [e.payload.get("trial_id") for e in journal.events(run_id)] == [None, a, b]


def test_per_device_measurements_and_round_reports(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    run_id = journal.create_run("r", {})
    (trial,) = journal.record_ask(run_id, 1, [("k", {"x": 1})])
    journal.record_measurement(trial, "rpi5-01", "latency_ms", 12.5, "ms", {"runs": 50})
    journal.record_measurement(trial, "rpi5-02", "energy_mj", 3.25, "mJ")
    got = journal.measurements(trial)
    assert [(m.device, m.metric, m.value, m.unit, m.payload) for m in got] == [
        ("rpi5-01", "latency_ms", 12.5, "ms", {"runs": 50}), ("rpi5-02", "energy_mj", 3.25, "mJ", None)]
    journal.record_round(run_id, 0, {"round": 0, "chosen": "gp"})
    journal.record_round(run_id, 0, {"round": 0, "chosen": "other"})  # replays do not duplicate reports
    assert journal.round_reports(run_id) == [{"round": 0, "chosen": "gp"}]
