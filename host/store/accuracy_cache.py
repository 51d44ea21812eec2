"""The cross-run accuracy cache: a sub-network's accuracy per (super-network, weights and data, configuration).

Accuracy does not depend on the board, so every run on the same weights and evaluation data shares it. It lives in the
measurement cache's database file (``fleetnas.host.fleet.measurements.default_cache_path()``, table
``fleet_accuracy``), so caches written before it had its own module keep their entries. Rows are replaced, never
deleted (`--no-measurement-cache` skips the cache). One thread owns an ``AccuracyCache``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Optional

from fleetnas.host.fleet.measurements import CACHE_DAMAGED_ADVICE, CacheError
from fleetnas.host.store.sqlite_errors import database_error, database_errors_as

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fleet_accuracy (
    supernet TEXT NOT NULL, weights_id TEXT NOT NULL, config_key TEXT NOT NULL, accuracy REAL NOT NULL,
    PRIMARY KEY (supernet, weights_id, config_key)
)"""


@database_errors_as(CacheError, CACHE_DAMAGED_ADVICE)
class AccuracyCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CacheError(database_error(self.path, exc, CACHE_DAMAGED_ADVICE)) from exc

    def close(self) -> None:
        self._db.close()

    def lookup(self, supernet: str, weights_id: str, config_key: str) -> Optional[float]:
        row = self._db.execute("SELECT accuracy FROM fleet_accuracy WHERE supernet=? AND weights_id=? AND "
                               "config_key=?", (supernet, weights_id, config_key)).fetchone()
        return None if row is None else float(row[0])

    def add(self, supernet: str, weights_id: str, config_key: str, accuracy: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO fleet_accuracy VALUES (?, ?, ?, ?)",
                         (supernet, weights_id, config_key, float(accuracy)))
