"""Journal schema 4: sub-networks record the float and int8 accuracies and which model was evaluated; a schema-3
journal migrates (its accuracies were the float networks'), and a run resumed at another precision is refused."""
from __future__ import annotations

import sqlite3

import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.store import journal as journal_module
from fleetnas.host.store.journal import FLOAT_MODEL, SCHEMA_VERSION, Journal, Subnet
from fleetnas.host.store.run_store import RunStore
from old_runs import old_run_folder

SETTINGS = {"supernet": "toy", "weights": "w1", "objectives": ["accuracy", "latency"], "seed": 0, "tactic": "random",
            "tactic_options": {}, "runtime": {"runtime": "onnxruntime"}, "budget": 3, "classes": ["cpu"],
            "devices": {"dev0": "cpu"}}


def schema3_journal(path) -> None:
    """A journal as schema 3 left it, with one sub-network (built by the migrations that made schema 3)."""
    db = sqlite3.connect(path)
    db.executescript(journal_module._SCHEMA_V1)
    db.execute("INSERT INTO schema_version (version) VALUES (3)")
    journal_module._migrate_to_v2(db)
    journal_module._migrate_to_v3(db)
    db.execute("INSERT INTO subnets (config_key, accuracy, model_sha256, model_path, size_bytes, macs, params, "
               "accuracy_s, export_s, created_s) VALUES ('{\"w\":1}', 0.93, 'sha', '/m/a.onnx', 10, 5, 6, 0.5, 0.25, 1)")
    db.commit()
    db.close()


def test_schema3_journal_migrates_its_subnets_as_float_accuracies(tmp_path):
    path = tmp_path / "journal.sqlite"
    schema3_journal(path)
    journal = Journal(path)
    assert journal.schema_version == SCHEMA_VERSION
    (subnet,) = journal.subnets()
    assert subnet == Subnet('{"w":1}', 0.93, "sha", "/m/a.onnx", 10, 5, 6, 0.5, 0.25, 0.93, None, FLOAT_MODEL)
    int8 = Subnet('{"w":2}', 0.88, "sha8", "/m/b.onnx", 8, 5, 6, 0.7, 0.5, 0.91, 0.88, "onnx-int8")
    journal.record_subnet(int8)
    journal.close()
    again = Journal(path)   # reopening a current journal migrates nothing
    assert again.schema_version == SCHEMA_VERSION and again.subnets()[1] == int8
    again.close()


def test_resume_keeps_the_precision(tmp_path):
    run = tmp_path / "run"
    RunStore.create(run, {**SETTINGS, "precision": "int8"}).close()
    with pytest.raises(UsageError, match='precision: "int8" -> "fp32".*start a new --out folder'):
        RunStore.resume(run, {**SETTINGS, "precision": "fp32"}, ["cpu"])
    with RunStore.resume(run, {**SETTINGS, "precision": "int8"}, ["cpu"]) as store:
        assert store.settings["precision"] == "int8"


def test_a_run_written_before_precisions_resumes_as_fp32(tmp_path):
    run = old_run_folder(tmp_path / "old-run")
    settings = RunStore.read_settings(run)
    assert "precision" not in settings
    with RunStore.resume(run, {**settings, "precision": "fp32"}, settings["classes"]) as store:
        assert store.journal.schema_version == SCHEMA_VERSION
    with pytest.raises(UsageError, match='precision: "fp32" -> "int8"'):
        RunStore.resume(run, {**settings, "precision": "int8"}, settings["classes"])
