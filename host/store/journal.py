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
- ``subnets`` (schema 2) holds what the host computed once per configuration for a whole run (accuracy, exported model,
  MACs, params); ``trials.dispatched_s`` says when a trial was sent to the fleet (a resumed host asks the agents for
  its result). Schema 1 kept both as ``measurements`` rows with device ``host`` and metric ``accuracy``: opening such a
  journal moves them, in one transaction.
- ``fleet_calls`` (schema 3) is the order in which a joint fleet search (``--fleet-mode joint``) was called: ``add_class``
  {class, budget}, ``budget`` {class, budget}, ``ask`` {n, proposals: [{key, validate, classes, trial_ids}]},
  ``accuracy`` {key} (the value is the sub-network's in ``subnets``), ``cost`` {key, class, trial_id} (the value is in
  that trial's ``values_json``) and ``fail`` {key, class or null}. Replaying them in ``seq`` order through a fresh
  search with the same seed reproduces it. Each class keeps its trials and results in its own run, as independent
  searches do, so reports read both alike. Journals of schema 2 get an empty table.
- ``subnets`` gains (schema 4) ``float_accuracy``, ``int8_accuracy`` and ``accuracy_model``: with ``--precision int8``
  ``accuracy`` is the deployed int8 model's and these say of which model and what the float network scored. Rows of
  schema 3 were float accuracies and are migrated as such.
- ``fleet_calls`` takes (schema 5) ``validations`` {from, to}: a resume changed the run's cap on validations
  (``--validations``), at that point of the search; the first such call's ``from`` is the cap the run started with.
- ``schema_version`` has one row; opening a journal written by a newer schema fails with a clear message. Add tables or
  columns in a new version with a migration in ``_MIGRATIONS``; never change the meaning of existing ones.

- Every SQLite or stored-JSON failure of a public method is a ``JournalError`` naming the file and what to do (damaged,
  in use, unwritable); ``check_integrity`` runs SQLite's own check. ``close`` checkpoints the write-ahead log into the
  main file, so a cleanly closed journal is one ``.sqlite`` file.

One thread owns a `Journal` (SQLite connections are not shared between threads).
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from fleetnas.host.errors import FleetnasError
from fleetnas.host.store.settings import settings_changes
from fleetnas.host.store.sqlite_errors import database_error as sqlite_database_error
from fleetnas.host.store.sqlite_errors import database_errors_as

SCHEMA_VERSION = 5

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

_SUBNETS_V2 = """
CREATE TABLE subnets (
    config_key TEXT PRIMARY KEY,
    accuracy REAL NOT NULL,
    model_sha256 TEXT NOT NULL,
    model_path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    macs INTEGER,
    params INTEGER,
    accuracy_s REAL NOT NULL,
    export_s REAL NOT NULL,
    created_s REAL NOT NULL
)"""
_V2_SUBNET_COLUMNS = ("config_key", "accuracy", "model_sha256", "model_path", "size_bytes", "macs", "params",
                      "accuracy_s", "export_s")
# schema 1 stored a sub-network as a measurement of the trial that first sent it to the fleet
_V1_SUBNET_DEVICE, _V1_SUBNET_METRIC = "host", "accuracy"


def _migrate_to_v2(db: sqlite3.Connection) -> None:
    """Sub-networks get their own table, trials a dispatch time; the device-"host" accuracy rows move there."""
    db.execute(_SUBNETS_V2)
    db.execute("ALTER TABLE trials ADD COLUMN dispatched_s REAL")
    rows = db.execute("SELECT measurement_id, trial_id, payload_json, created_s FROM measurements "
                      "WHERE device = ? AND metric = ? ORDER BY measurement_id",
                      (_V1_SUBNET_DEVICE, _V1_SUBNET_METRIC)).fetchall()
    for measurement_id, trial_id, payload, created_s in rows:
        db.execute("UPDATE trials SET dispatched_s = COALESCE(dispatched_s, ?) WHERE trial_id = ?",
                   (created_s, trial_id))
        if not payload:
            continue   # not written by fleetnas' controller: keep the row as it is
        p = json.loads(payload)
        db.execute(f"INSERT OR IGNORE INTO subnets ({', '.join(_V2_SUBNET_COLUMNS)}, created_s) "
                   f"VALUES ({', '.join('?' * len(_V2_SUBNET_COLUMNS))}, ?)",
                   (*(p.get(c) for c in _V2_SUBNET_COLUMNS), created_s))
        db.execute("DELETE FROM measurements WHERE measurement_id = ?", (measurement_id,))


_FLEET_CALLS_V3 = """
CREATE TABLE fleet_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call TEXT NOT NULL CHECK (call IN ('add_class', 'budget', 'ask', 'accuracy', 'cost', 'fail')),
    payload_json TEXT NOT NULL,
    created_s REAL NOT NULL
)"""


def _migrate_to_v3(db: sqlite3.Connection) -> None:
    db.execute(_FLEET_CALLS_V3)


def _migrate_to_v4(db: sqlite3.Connection) -> None:
    """Sub-networks say which model their accuracy is of; every earlier one was the float network's."""
    for column in ("float_accuracy REAL", "int8_accuracy REAL", "accuracy_model TEXT"):
        db.execute(f"ALTER TABLE subnets ADD COLUMN {column}")
    db.execute(f"UPDATE subnets SET float_accuracy = accuracy, accuracy_model = '{FLOAT_MODEL}'")


_FLEET_CALLS_V5 = _FLEET_CALLS_V3.replace("'fail'", "'fail', 'validations'")


def _migrate_to_v5(db: sqlite3.Connection) -> None:
    """The search's calls may change the cap on validations: SQLite cannot widen a CHECK, so the table is rebuilt
    with its rows (and their ``seq``) unchanged."""
    db.execute("ALTER TABLE fleet_calls RENAME TO fleet_calls_v3")
    db.execute(_FLEET_CALLS_V5)
    db.execute("INSERT INTO fleet_calls (seq, call, payload_json, created_s) "
               "SELECT seq, call, payload_json, created_s FROM fleet_calls_v3 ORDER BY seq")
    db.execute("DROP TABLE fleet_calls_v3")


# version reached -> function that migrates from the previous version (inside the opening transaction).
_MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], None]] = {2: _migrate_to_v2, 3: _migrate_to_v3,
                                                                4: _migrate_to_v4, 5: _migrate_to_v5}


class JournalError(FleetnasError):
    """The journal cannot be used as asked (wrong schema, unknown trial, trial already finished, damaged file...)."""


_DAMAGED_ADVICE = "restore it from a backup, or start the search again in a new --out folder"


def database_error(path: str, exc: Exception) -> str:
    """One line for a failed SQLite call (or unreadable stored JSON) on the journal ``path``: what and what to do."""
    return sqlite_database_error(path, exc, _DAMAGED_ADVICE)


FLOAT_MODEL = "torch-fp32"   # accuracy_model of an accuracy evaluated on the float network


@dataclass(frozen=True)
class Subnet:
    """What the host computed once for a configuration of a run (shared by every device class)."""
    config_key: str
    accuracy: float
    model_sha256: str
    model_path: str
    size_bytes: int
    macs: Optional[int]
    params: Optional[int]
    accuracy_s: float
    export_s: float
    float_accuracy: Optional[float] = None   # of the float network in torch
    int8_accuracy: Optional[float] = None    # of the int8 model (precision int8), the one ``accuracy`` then is
    accuracy_model: Optional[str] = None     # which model ``accuracy`` was evaluated on (FLOAT_MODEL, "onnx-int8"...)


SUBNET_COLUMNS = tuple(Subnet.__dataclass_fields__)


@dataclass(frozen=True)
class TrialRecord:
    trial_id: int
    key: str
    config: Dict[str, Any]
    state: str
    values: Optional[Dict[str, float]]
    error: Optional[str]
    dispatched: bool = False      # sent to the fleet (its result may exist on an agent)


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    payload: Dict[str, Any]


@dataclass(frozen=True)
class FleetCall:
    seq: int
    call: str
    payload: Dict[str, Any]


@dataclass(frozen=True)
class MeasurementRecord:
    trial_id: int
    device: str
    metric: str
    value: float
    unit: str
    payload: Optional[Dict[str, Any]]


@database_errors_as(JournalError, _DAMAGED_ADVICE)
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
            raise JournalError(f"cannot open journal: {database_error(self.path, exc)}") from exc

    def _init_schema(self) -> None:
        with self._tx():
            for statement in _SCHEMA_V1.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:   # a new journal: the version 1 tables, then every migration
                self._db.execute("INSERT INTO schema_version (version) VALUES (1)")
                version = 1
            else:
                version = int(row[0])
            if version > SCHEMA_VERSION:
                raise JournalError(f"journal {self.path} has schema version {version}, newer than this fleetnas "
                                   f"({SCHEMA_VERSION}); upgrade fleetnas to read it")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target](self._db)
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

    def check_integrity(self) -> None:
        """SQLite's own check of every page (``PRAGMA quick_check``); JournalError naming what it found."""
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise JournalError(f"{self.path} is damaged ({problems[0]}"
                               f"{f' and {len(problems) - 1} more problem(s)' if len(problems) > 1 else ''}): "
                               f"{_DAMAGED_ADVICE}")

    def close(self) -> None:
        """Close, first moving the write-ahead log into the main file: the journal is then one file to copy."""
        try:
            if self.path != ":memory:":
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()

    # --- runs -----------------------------------------------------------------------------------------------------
    def create_run(self, name: str, settings: Dict[str, Any]) -> int:
        with self._tx():
            if self._db.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone():
                raise JournalError(f"run {name!r} already exists in {self.path}; resume it or choose another name")
            cur = self._db.execute("INSERT INTO runs (name, settings_json, created_s) VALUES (?, ?, ?)",
                                   (name, json.dumps(settings, sort_keys=True), time.time()))
            return int(cur.lastrowid)

    def open_run(self, name: str, settings: Dict[str, Any], *, resume: bool,
                 may_change: Sequence[str] = ()) -> Tuple[int, bool]:
        """The run ``name``: created with ``settings``, or (``resume``) the existing one, whose stored settings must
        equal ``settings`` except for the keys in ``may_change`` (updated). Returns (run_id, existed)."""
        found = self.find_run(name)
        if found is None:
            return self.create_run(name, settings), False
        if not resume:
            raise JournalError(f"run {name!r} already exists in {self.path}; pass resume=True (--resume) to continue "
                               "it, or use another run name / output folder")
        run_id, stored = found
        fixed = sorted((set(stored) | set(settings)) - set(may_change))
        changes = settings_changes(stored, settings, fixed)
        if changes:
            raise JournalError(f"run {name!r} was started with different settings ({', '.join(changes)}); resume it "
                               "with the same ones")
        if settings_changes(stored, settings, may_change):
            self.update_settings(run_id, settings)
        return run_id, True

    def runs(self) -> Dict[str, Dict[str, Any]]:
        """Every run of the journal: name -> the settings it was started with."""
        rows = self._db.execute("SELECT name, settings_json FROM runs ORDER BY run_id").fetchall()
        return {name: json.loads(settings) for name, settings in rows}

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
        with self._tx():
            self._finish_trial(run_id, trial_id, values, error)

    def _finish_trial(self, run_id: int, trial_id: int, values: Optional[Dict[str, float]],
                      error: Optional[str]) -> None:
        now = time.time()
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

    # --- a joint fleet search's calls -------------------------------------------------------------------------------
    def _insert_call(self, call: str, payload: Dict[str, Any]) -> None:
        self._db.execute("INSERT INTO fleet_calls (call, payload_json, created_s) VALUES (?, ?, ?)",
                         (call, json.dumps(payload, sort_keys=True), time.time()))

    def record_fleet_call(self, call: str, payload: Dict[str, Any]) -> None:
        """``add_class``, ``budget``, ``accuracy`` or a validation's ``fail`` (see the module docstring)."""
        with self._tx():
            self._insert_call(call, payload)

    def record_fleet_ask(self, n_requested: int, proposals: Sequence[Dict[str, Any]],
                         run_ids: Dict[str, int], round_report: Optional[Dict[str, Any]] = None) -> List[Dict[str, int]]:
        """One fleet ``ask``: every proposal ({key, config, validate, classes}) becomes a pending trial in each of its
        classes' runs (``run_ids``: class -> run id), and the call is logged with the search's report of the round
        (kept for reports, not replayed), in one transaction. Returns per proposal class -> trial id."""
        now = time.time()
        out: List[Dict[str, int]] = []
        with self._tx():
            for p in proposals:
                ids = {}
                for c in p["classes"]:
                    try:
                        cur = self._db.execute(
                            "INSERT INTO trials (run_id, key, config_json, state, proposed_s) "
                            "VALUES (?, ?, ?, 'pending', ?)",
                            (run_ids[c], p["key"], json.dumps(p["config"], sort_keys=True), now))
                    except sqlite3.IntegrityError as exc:
                        raise JournalError(f"configuration {p['key']} was already proposed for {c}") from exc
                    ids[c] = int(cur.lastrowid)
                    self._db.execute("INSERT INTO events (run_id, kind, payload_json, created_s) "
                                     "VALUES (?, 'ask', ?, ?)", (run_ids[c], json.dumps({"n": 1, "trial_ids": [ids[c]]}),
                                                                 now))
                out.append(ids)
            payload: Dict[str, Any] = {"n": n_requested, "proposals": [
                {"key": p["key"], "validate": bool(p["validate"]), "classes": list(p["classes"]), "trial_ids": ids}
                for p, ids in zip(proposals, out)]}
            if round_report is not None:
                payload["round_report"] = round_report
            self._insert_call("ask", payload)
        return out

    def record_fleet_result(self, run_id: int, trial_id: int, device_class: str, key: str,
                            values: Optional[Dict[str, float]], error: Optional[str] = None) -> None:
        """A class's measurement told to the fleet search: the trial finished (as ``record_result``) and the ``cost``
        (or ``fail``) call logged, in one transaction."""
        with self._tx():
            self._finish_trial(run_id, trial_id, values, error)
            if values is not None:
                self._insert_call("cost", {"key": key, "class": device_class, "trial_id": trial_id})
            else:
                self._insert_call("fail", {"key": key, "class": device_class})

    def fleet_calls(self) -> List[FleetCall]:
        rows = self._db.execute("SELECT seq, call, payload_json FROM fleet_calls ORDER BY seq").fetchall()
        return [FleetCall(int(q), c, json.loads(p)) for q, c, p in rows]

    def record_measurement(self, trial_id: int, device: str, metric: str, value: float, unit: str,
                           payload: Optional[Dict[str, Any]] = None) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO measurements (trial_id, device, metric, value, unit, payload_json, created_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (trial_id, device, metric, float(value), unit, None if payload is None else json.dumps(payload),
                 time.time()))

    def record_subnet(self, subnet: Subnet) -> None:
        """Once per configuration of the run; a second record of the same configuration is ignored."""
        with self._tx():
            self._db.execute(f"INSERT OR IGNORE INTO subnets ({', '.join(SUBNET_COLUMNS)}, created_s) "
                             f"VALUES ({', '.join('?' * len(SUBNET_COLUMNS))}, ?)",
                             (*(getattr(subnet, c) for c in SUBNET_COLUMNS), time.time()))

    def record_dispatch(self, trial_id: int) -> None:
        """The trial was sent to the fleet (kept: the first time)."""
        with self._tx():
            self._db.execute("UPDATE trials SET dispatched_s = COALESCE(dispatched_s, ?) WHERE trial_id = ?",
                             (time.time(), trial_id))

    def record_round(self, run_id: int, round_index: int, report: Dict[str, Any]) -> None:
        with self._tx():
            self._db.execute("INSERT OR IGNORE INTO round_reports (run_id, round, report_json) VALUES (?, ?, ?)",
                             (run_id, round_index, json.dumps(report)))

    # --- reading --------------------------------------------------------------------------------------------------
    def events(self, run_id: int) -> Iterator[Event]:
        rows = self._db.execute("SELECT seq, kind, payload_json FROM events WHERE run_id = ? ORDER BY seq",
                                (run_id,)).fetchall()
        # read whole here, not lazily: a damaged row then fails inside this (guarded) call
        return iter([Event(int(seq), kind, json.loads(payload)) for seq, kind, payload in rows])

    def trials(self, run_id: int) -> List[TrialRecord]:
        rows = self._db.execute("SELECT trial_id, key, config_json, state, values_json, error, dispatched_s "
                                "FROM trials WHERE run_id = ? ORDER BY trial_id", (run_id,)).fetchall()
        return [TrialRecord(int(t), k, json.loads(c), s, None if v is None else json.loads(v), e, d is not None)
                for t, k, c, s, v, e, d in rows]

    def subnets(self) -> List[Subnet]:
        rows = self._db.execute(f"SELECT {', '.join(SUBNET_COLUMNS)} FROM subnets ORDER BY created_s, config_key")
        return [Subnet(*row) for row in rows.fetchall()]

    def measurements(self, trial_id: int) -> List[MeasurementRecord]:
        rows = self._db.execute("SELECT trial_id, device, metric, value, unit, payload_json FROM measurements "
                                "WHERE trial_id = ? ORDER BY measurement_id", (trial_id,)).fetchall()
        return [MeasurementRecord(int(t), d, m, float(v), u, None if p is None else json.loads(p))
                for t, d, m, v, u, p in rows]

    def run_measurements(self, run_id: int) -> List[MeasurementRecord]:
        """Every measurement of the run's trials, in the order they were recorded."""
        rows = self._db.execute("SELECT m.trial_id, m.device, m.metric, m.value, m.unit, m.payload_json "
                                "FROM measurements m JOIN trials t USING (trial_id) WHERE t.run_id = ? "
                                "ORDER BY m.measurement_id", (run_id,)).fetchall()
        return [MeasurementRecord(int(t), d, m, float(v), u, None if p is None else json.loads(p))
                for t, d, m, v, u, p in rows]

    def round_reports(self, run_id: int) -> List[Dict[str, Any]]:
        rows = self._db.execute("SELECT report_json FROM round_reports WHERE run_id = ? ORDER BY round",
                                (run_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]
