"""Runs written by earlier code (tests/fixtures/run_v1, see its README): the folder, and how to compare reports.

Reports only ever gain keys, never lose or rename one, so a new report cut down to an old one's keys must equal it.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run_v1"


def old_run_folder(run: Path) -> Path:
    """The run folder written before sub-networks had their own table, at ``run`` (made here)."""
    run.mkdir()
    (run / "run.json").write_text((FIXTURE / "run.json").read_text())
    db = sqlite3.connect(run / "journal.sqlite")
    db.executescript((FIXTURE / "journal.sql").read_text())
    db.close()
    return run


def only_old_keys(new, old):
    """``new`` cut down to the keys ``old`` has (recursively), so ``only_old_keys(new, old) == old`` checks that
    every figure the earlier report had is still there, unchanged."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: only_old_keys(new[k], v) for k, v in old.items() if k in new}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [only_old_keys(n, o) for n, o in zip(new, old)]
    return new
