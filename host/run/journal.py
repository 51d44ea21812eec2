"""A search run's journal: one SQLite file in the run folder, written as things happen, read to resume and to report.

Tables (the measurement table comes from fleetnas.host.fleet.measurements, in the same file):
- ``run_meta``: the run's settings (super-network, objectives, seed, budget, tactic, runtime, classes); a resume must
  match them.
- ``candidates``: every proposal, per device class, in proposal order (``seq``).
- ``subnets``: per configuration, shared by every device class: accuracy, model sha256 and path, MACs, params, and
  the seconds spent evaluating and exporting it.
Replaying the journal (``fleetnas report``) recomputes every front from these rows alone.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import Measurement, MeasurementStore

JOURNAL_NAME = "journal.sqlite"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_class TEXT NOT NULL,
    config_key TEXT NOT NULL,
    proposed_unix_ns INTEGER NOT NULL,
    UNIQUE (device_class, config_key)
);
CREATE TABLE IF NOT EXISTS subnets (
    config_key TEXT PRIMARY KEY,
    accuracy REAL NOT NULL,
    model_sha256 TEXT NOT NULL,
    model_path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    macs INTEGER,
    params INTEGER,
    accuracy_s REAL NOT NULL,
    export_s REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Subnet:
    config_key: str
    accuracy: float
    model_sha256: str
    model_path: str
    size_bytes: int
    macs: Optional[int]
    params: Optional[int]
    accuracy_s: float
    export_s: float

    @property
    def config(self) -> Dict[str, Any]:
        return json.loads(self.config_key)


@dataclass(frozen=True)
class Candidate:
    seq: int
    device_class: str
    config_key: str


class RunJournal:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / JOURNAL_NAME
        self.measurements = MeasurementStore(self.path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0, isolation_level=None)
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO fleet_schema VALUES ('run', ?)", (SCHEMA_VERSION,))

    @classmethod
    def open_existing(cls, run_dir: Path) -> "RunJournal":
        if not (Path(run_dir) / JOURNAL_NAME).is_file():
            raise UsageError(f"{run_dir} holds no {JOURNAL_NAME}: not a fleetnas run folder (see `fleetnas search --out`)")
        return cls(run_dir)

    def close(self) -> None:
        self.measurements.close()
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ meta
    def meta(self) -> Dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM run_meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, values: Dict[str, Any]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO run_meta VALUES (?, ?)",
                                 [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()])

    # ------------------------------------------------------------------ candidates and sub-networks
    def add_candidate(self, device_class: str, config_key: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO candidates (device_class, config_key, proposed_unix_ns) "
                             "VALUES (?, ?, ?)", (device_class, config_key, time.time_ns()))

    def candidates(self, device_class: Optional[str] = None) -> List[Candidate]:
        sql, params = "SELECT seq, device_class, config_key FROM candidates", ()
        if device_class is not None:
            sql, params = sql + " WHERE device_class=?", (device_class,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", params).fetchall()
        return [Candidate(*r) for r in rows]

    def add_subnet(self, s: Subnet) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO subnets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (s.config_key, s.accuracy, s.model_sha256, s.model_path, s.size_bytes, s.macs, s.params,
                              s.accuracy_s, s.export_s))

    def subnets(self) -> Dict[str, Subnet]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM subnets").fetchall()
        return {r[0]: Subnet(*r) for r in rows}

    def measurements_for(self, device_class: str) -> List[Measurement]:
        return self.measurements.for_class(device_class)
