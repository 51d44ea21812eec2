"""The cross-run measurement cache (SQLite) and the ``Measurement`` record the dispatcher hands back.

The cache database (default ``~/.cache/fleetnas/measurements.sqlite``, or ``$FLEETNAS_CACHE_DIR``) keeps usable results
keyed by (device fingerprint, model sha256, runtime configuration), so no run measures the same model the same way on
the same kind of board twice; the same file holds the accuracy cache (fleetnas.host.store.accuracy_cache). The
dispatcher can also log every result to a second store as it arrives (``journal=``); search runs keep theirs in their
run store (fleetnas.host.store.run_store).
Thread-safe: one connection guarded by a lock (writes are rare and small). Rows are immutable once written.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from fleetnas.host.errors import FleetnasError
from fleetnas.host.store.sqlite_errors import database_error, database_errors_as

SCHEMA_VERSION = 1
# UNSTABLE results carry their numbers (block-median CV > 10 %): a search uses them, flagged, and the cache keeps them
# (nothing is measured twice; `--no-measurement-cache` measures again). Failures are never cached.
USABLE_OUTCOMES = ("OK", "UNSTABLE")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS fleet_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_fingerprint TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    runtime_key TEXT NOT NULL,
    device_class TEXT NOT NULL,
    device_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    config_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    latency_ms REAL,
    energy_mj REAL,
    emulated INTEGER NOT NULL,
    source TEXT NOT NULL,
    recorded_unix_ns INTEGER NOT NULL,
    response_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_measurements_key
    ON fleet_measurements (device_fingerprint, model_sha256, runtime_key);
CREATE INDEX IF NOT EXISTS fleet_measurements_config ON fleet_measurements (device_class, config_key);
"""


# what to do with a damaged cache file (the accuracy cache shares the file)
CACHE_DAMAGED_ADVICE = ("it only keeps results to reuse: delete it (or give another --measurement-cache), or pass "
                        "--no-measurement-cache")


class CacheError(FleetnasError):
    """The measurement (or accuracy) cache file cannot be used; the message names it and says what to do."""


def default_cache_path() -> Path:
    base = os.environ.get("FLEETNAS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fleetnas")
    return Path(base) / "measurements.sqlite"


@dataclass(frozen=True)
class Measurement:
    device_fingerprint: str
    model_sha256: str
    runtime_key: str
    device_class: str
    device_name: str
    device_id: str
    config_key: str
    outcome: str                  # "OK", "LOAD_FAILED", ..., or "ERROR" (the fleet could not measure it)
    latency_ms: Optional[float]   # median; None unless usable (OK or UNSTABLE)
    energy_mj: Optional[float]    # None when not measured
    emulated: bool
    source: str                   # "measured" | "cache"
    recorded_unix_ns: int
    response: dict                # the whole MeasureResponse as JSON data (every statistic and its provenance)
    # answered from the agent's memory of this run's request (a retry, or a resumed host), not measured for this call;
    # a default, so journals written before it existed stay readable
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "OK" and self.latency_ms is not None

    @property
    def usable(self) -> bool:
        return self.outcome in USABLE_OUTCOMES and self.latency_ms is not None


_COLUMNS = ("device_fingerprint", "model_sha256", "runtime_key", "device_class", "device_name", "device_id",
            "config_key", "outcome", "latency_ms", "energy_mj", "emulated", "source", "recorded_unix_ns",
            "response_json")


def _row_to_measurement(row: Sequence) -> Measurement:
    values = dict(zip(_COLUMNS, row))
    values["emulated"] = bool(values["emulated"])
    values["response"] = json.loads(values.pop("response_json"))
    return Measurement(**values)


@database_errors_as(CacheError, CACHE_DAMAGED_ADVICE)
class MeasurementStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._lock:
                self._db.executescript(_SCHEMA)
                row = self._db.execute("SELECT version FROM fleet_schema WHERE component='measurements'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO fleet_schema VALUES ('measurements', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as exc:
            raise CacheError(database_error(self.path, exc, CACHE_DAMAGED_ADVICE)) from exc
        if row is not None and row[0] > SCHEMA_VERSION:
            raise CacheError(f"{self.path} was written by a newer fleetnas (measurements schema {row[0]}); "
                             f"upgrade fleetnas to read it")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, m: Measurement) -> None:
        values = [getattr(m, c) for c in _COLUMNS[:-1]] + [json.dumps(m.response, sort_keys=True)]
        values[_COLUMNS.index("emulated")] = int(m.emulated)
        with self._lock:
            self._db.execute(f"INSERT INTO fleet_measurements ({', '.join(_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(_COLUMNS))})", values)

    def _select(self, where: str, params: Iterable) -> List[Measurement]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM fleet_measurements WHERE {where} ORDER BY id",
                                    tuple(params)).fetchall()
        return [_row_to_measurement(r) for r in rows]

    def lookup(self, fingerprints: Sequence[str], model_sha256: str, runtime_key: str) -> Optional[Measurement]:
        """The first usable measurement of this model with this runtime configuration on any of ``fingerprints``."""
        if not fingerprints:
            return None
        marks = ", ".join("?" * len(fingerprints))
        found = self._select(f"device_fingerprint IN ({marks}) AND model_sha256=? AND runtime_key=? AND outcome IN "
                             f"({', '.join('?' * len(USABLE_OUTCOMES))})",
                             [*fingerprints, model_sha256, runtime_key, *USABLE_OUTCOMES])
        return found[0] if found else None

    def all(self) -> List[Measurement]:
        return self._select("1=1", ())

    def for_class(self, device_class: str) -> List[Measurement]:
        return self._select("device_class=?", (device_class,))

    def count(self, source: Optional[str] = None) -> int:
        with self._lock:
            if source is None:
                return self._db.execute("SELECT COUNT(*) FROM fleet_measurements").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM fleet_measurements WHERE source=?", (source,)).fetchone()[0]
