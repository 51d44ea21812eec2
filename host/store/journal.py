"""The search journal: an embedded SQLite file holding every proposal and every result as it happens.

Contract (what `fleetnas.host.search.engine.Search` and the fleet controller rely on):

- Each ``record_*`` call is one committed transaction: after it returns, a crash loses nothing it wrote.
- A trial is one distinct configuration of a run: ``UNIQUE(run_id, key)`` makes a second proposal of the same
  configuration impossible at the storage level. Its state goes ``pending -> done | failed`` once; finished trials are
  immutable (``record_result`` on a finished trial raises).
- ``events`` is the replay log, in commit order: ``ask`` (how many were requested, which trials came back) and
  ``result``. Replaying it through a fresh tactic with the same seed reproduces the run (that is what resume does).
- ``measurements`` holds raw per-device figures (device, metric, value, unit) for a trial, for the fleet controller;
  a trial's objective values stay in ``trials.values_json``. ``round_reports`` keeps the tactics' per-round reports.
- ``schema_version`` has one row; opening a journal written by a newer schema fails with a clear message. Add tables or
  columns in a new version with a migration in ``_MIGRATIONS``; never change the meaning of existing ones.

One thread owns a `Journal` (SQLite connections are not shared between threads).
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from fleetnas.host.errors import FleetnasError

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    settings_json TEXT NOT NULL,
    created_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    key TEXT NOT NULL,
    config_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    values_json TEXT,
    error TEXT,
    proposed_s REAL NOT NULL,
    finished_s REAL,
    UNIQUE (run_id, key)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    kind TEXT NOT NULL CHECK (kind IN ('ask', 'result')),
    payload_json TEXT NOT NULL,
    created_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    measurement_id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    unit TEXT NOT NULL,
    payload_json TEXT,
    created_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS round_reports (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    round INTEGER NOT NULL,
    report_json TEXT NOT NULL,
    PRIMARY KEY (run_id, round)
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);
CREATE INDEX IF NOT EXISTS measurements_by_trial ON measurements (trial_id);
"""

# version reached -> SQL that migrates from the previous version.
_MIGRATIONS: Dict[int, str] = {}


class JournalError(FleetnasError):
    """The journal cannot be used as asked (wrong schema, unknown trial, trial already finished...)."""


@dataclass(frozen=True)
class TrialRecord:
    trial_id: int
    key: str
    config: Dict[str, Any]
    state: str
    values: Optional[Dict[str, float]]
    error: Optional[str]


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    payload: Dict[str, Any]


@dataclass(frozen=True)
class MeasurementRecord:
    trial_id: int
    device: str
    metric: str
    value: float
    unit: str
    payload: Optional[Dict[str, Any]]


class Journal:
    """SQLite-backed journal; ``path`` may be ``":memory:"`` (benchmarks, tests)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}; is it a fleetnas journal?") from exc

    def _init_schema(self) -> None:
        with self._tx():
            for statement in _SCHEMA_V1.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                return
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise JournalError(f"journal {self.path} has schema version {version}, newer than this fleetnas "
                                   f"({SCHEMA_VERSION}); upgrade fleetnas to read it")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target].strip().split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("UPDATE schema_version SET version = ?", (target,))

    def _tx(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                db.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    # --- runs -----------------------------------------------------------------------------------------------------
    def create_run(self, name: str, settings: Dict[str, Any]) -> int:
        with self._tx():
            if self._db.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone():
                raise JournalError(f"run {name!r} already exists in {self.path}; resume it or choose another name")
            cur = self._db.execute("INSERT INTO runs (name, settings_json, created_s) VALUES (?, ?, ?)",
                                   (name, json.dumps(settings, sort_keys=True), time.time()))
            return int(cur.lastrowid)

    def find_run(self, name: str) -> Optional[Tuple[int, Dict[str, Any]]]:
        row = self._db.execute("SELECT run_id, settings_json FROM runs WHERE name = ?", (name,)).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def update_settings(self, run_id: int, settings: Dict[str, Any]) -> None:
        with self._tx():
            self._db.execute("UPDATE runs SET settings_json = ? WHERE run_id = ?",
                             (json.dumps(settings, sort_keys=True), run_id))

    # --- proposals and results ------------------------------------------------------------------------------------
    def record_ask(self, run_id: int, n_requested: int, proposals: Sequence[Tuple[str, Dict[str, Any]]]) -> List[int]:
        """Store proposals (key, config) as pending trials and the ask event; returns their trial ids."""
        now = time.time()
        with self._tx():
            ids = []
            for key, config in proposals:
                try:
                    cur = self._db.execute(
                        "INSERT INTO trials (run_id, key, config_json, state, proposed_s) VALUES (?, ?, ?, 'pending', ?)",
                        (run_id, key, json.dumps(config, sort_keys=True), now))
                except sqlite3.IntegrityError as exc:
                    raise JournalError(f"configuration {key} was already proposed in this run") from exc
                ids.append(int(cur.lastrowid))
            self._db.execute("INSERT INTO events (run_id, kind, payload_json, created_s) VALUES (?, 'ask', ?, ?)",
                             (run_id, json.dumps({"n": n_requested, "trial_ids": ids}), now))
        return ids

    def record_result(self, run_id: int, trial_id: int, values: Optional[Dict[str, float]],
                      error: Optional[str] = None) -> None:
        """Finish a pending trial: ``values`` (objective name -> value), or ``values=None`` and an ``error``."""
        now = time.time()
        with self._tx():
            row = self._db.execute("SELECT state FROM trials WHERE trial_id = ? AND run_id = ?",
                                   (trial_id, run_id)).fetchone()
            if row is None:
                raise JournalError(f"trial {trial_id} is not part of this run")
            if row[0] != "pending":
                raise JournalError(f"trial {trial_id} is already {row[0]}; results are recorded once")
            state = "done" if values is not None else "failed"
            self._db.execute("UPDATE trials SET state = ?, values_json = ?, error = ?, finished_s = ? WHERE trial_id = ?",
                             (state, None if values is None else json.dumps(values), error, now, trial_id))
            payload = {"trial_id": trial_id, "values": values, "error": error}
            self._db.execute("INSERT INTO events (run_id, kind, payload_json, created_s) VALUES (?, 'result', ?, ?)",
                             (run_id, json.dumps(payload), now))

    def record_measurement(self, trial_id: int, device: str, metric: str, value: float, unit: str,
                           payload: Optional[Dict[str, Any]] = None) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO measurements (trial_id, device, metric, value, unit, payload_json, created_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (trial_id, device, metric, float(value), unit, None if payload is None else json.dumps(payload),
                 time.time()))

    def record_round(self, run_id: int, round_index: int, report: Dict[str, Any]) -> None:
        with self._tx():
            self._db.execute("INSERT OR IGNORE INTO round_reports (run_id, round, report_json) VALUES (?, ?, ?)",
                             (run_id, round_index, json.dumps(report)))

    # --- reading --------------------------------------------------------------------------------------------------
    def events(self, run_id: int) -> Iterator[Event]:
        rows = self._db.execute("SELECT seq, kind, payload_json FROM events WHERE run_id = ? ORDER BY seq",
                                (run_id,)).fetchall()
        for seq, kind, payload in rows:
            yield Event(int(seq), kind, json.loads(payload))

    def trials(self, run_id: int) -> List[TrialRecord]:
        rows = self._db.execute("SELECT trial_id, key, config_json, state, values_json, error FROM trials "
                                "WHERE run_id = ? ORDER BY trial_id", (run_id,)).fetchall()
        return [TrialRecord(int(t), k, json.loads(c), s, None if v is None else json.loads(v), e)
                for t, k, c, s, v, e in rows]

    def measurements(self, trial_id: int) -> List[MeasurementRecord]:
        rows = self._db.execute("SELECT trial_id, device, metric, value, unit, payload_json FROM measurements "
                                "WHERE trial_id = ? ORDER BY measurement_id", (trial_id,)).fetchall()
        return [MeasurementRecord(int(t), d, m, float(v), u, None if p is None else json.loads(p))
                for t, d, m, v, u, p in rows]

    def round_reports(self, run_id: int) -> List[Dict[str, Any]]:
        rows = self._db.execute("SELECT report_json FROM round_reports WHERE run_id = ? ORDER BY round",
                                (run_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]
