"""The measurement and accuracy caches in a PostgreSQL database, shared by every host that names the same URL.

Same keys and the same answers as the SQLite caches (fleetnas.host.fleet.measurements, fleetnas.host.store.
accuracy_cache): a measurement is keyed by (device fingerprint, model sha256, runtime configuration) and the first
usable one written wins (``INSERT ... ON CONFLICT DO NOTHING`` on a unique index over the usable rows); an accuracy is
keyed by (super-network, weights and data, configuration) and a later write replaces it, as SQLite's
``INSERT OR REPLACE`` does. The only module that imports psycopg (pip install 'fleetnas[postgresql]').

- Schema: ``fleetnas_schema`` holds one version per component; missing migrations are applied in one transaction
  under an advisory lock, so hosts starting together never race to create the tables.
- A lost connection or a serialization failure is retried with backoff for ``retry_s``; past that the cache steps
  aside (a lookup misses, a write is kept in memory and written when the server answers again, or reported unsaved
  at close): the measurements themselves are in the run's own journal, so a run never stops for its cache.
- Opening fails with one line for a bad URL, an unreachable server or a missing psycopg. Messages and logs show the
  URL with its password masked.
Thread-safe: one connection guarded by a lock, as the SQLite store.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import USABLE_OUTCOMES, CacheError, Measurement

log = logging.getLogger("fleetnas.host.store")
T = TypeVar("T")

URL_SCHEMES = ("postgresql", "postgres")
INSTALL_HINT = "pip install 'fleetnas[postgresql]'"
SCHEMA_LOCK_ID = 0x666C6565746E6173   # "fleetnas": the advisory lock held while migrating
CONNECT_TIMEOUT_S = 10

# component -> its migrations, in order; version N is the state after the N-th. Append, never edit.
MIGRATIONS = {
    "measurements": (
        # v1: the SQLite cache's columns; the unique index over usable rows makes the first usable write win
        """CREATE TABLE fleet_measurements (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            device_fingerprint TEXT NOT NULL, model_sha256 TEXT NOT NULL, runtime_key TEXT NOT NULL,
            device_class TEXT NOT NULL, device_name TEXT NOT NULL, device_id TEXT NOT NULL, config_key TEXT NOT NULL,
            outcome TEXT NOT NULL, latency_ms DOUBLE PRECISION, energy_mj DOUBLE PRECISION, emulated BOOLEAN NOT NULL,
            source TEXT NOT NULL, recorded_unix_ns BIGINT NOT NULL, response_json TEXT NOT NULL);
        CREATE UNIQUE INDEX fleet_measurements_usable_key ON fleet_measurements
            (device_fingerprint, model_sha256, runtime_key) WHERE outcome IN ('OK', 'UNSTABLE');
        CREATE INDEX fleet_measurements_config ON fleet_measurements (device_class, config_key);""",
    ),
    "accuracy": (
        """CREATE TABLE fleet_accuracy (
            supernet TEXT NOT NULL, weights_id TEXT NOT NULL, config_key TEXT NOT NULL,
            accuracy DOUBLE PRECISION NOT NULL, PRIMARY KEY (supernet, weights_id, config_key));""",
    ),
}
assert USABLE_OUTCOMES == ("OK", "UNSTABLE"), "the unique index above names the usable outcomes"

_COLUMNS = ("device_fingerprint", "model_sha256", "runtime_key", "device_class", "device_name", "device_id",
            "config_key", "outcome", "latency_ms", "energy_mj", "emulated", "source", "recorded_unix_ns",
            "response_json")
_USABLE = "outcome IN ('OK', 'UNSTABLE')"


def is_database_url(spec: object) -> bool:
    return isinstance(spec, str) and "://" in spec and spec.split("://", 1)[0].lower() in URL_SCHEMES


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) shown as ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            if ":" in user:
                user = user.split(":", 1)[0] + ":***"
            netloc = f"{user}@{host}"
        query = urlencode([(k, "***" if k.lower() == "password" else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return url.split("://", 1)[0] + "://***"


def _secrets(url: str) -> List[str]:
    found = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    except ValueError:
        pass
    return found


def _psycopg():
    # lazy: only a run given a postgresql:// cache needs psycopg, and it is an optional extra
    try:
        import psycopg
    except ImportError as exc:
        raise UsageError(f"a postgresql:// cache needs psycopg ({exc}): {INSTALL_HINT}") from None
    return psycopg


class _Database:
    """One connection to the cache database: connect, migrate, and run statements with retries."""

    def __init__(self, url: str, component: str, *, retry_s: float = 30.0,
                 backoff_s: Tuple[float, float] = (0.1, 5.0)) -> None:
        if not is_database_url(url):
            raise UsageError(f"{redact_url(str(url))}: not a database URL; give postgresql://USER@HOST[:PORT]/DB")
        self.psycopg = _psycopg()
        self.url = url
        self.location = redact_url(url)
        self.component = component
        self.retry_s = retry_s
        self.backoff_s = backoff_s
        self._lock = threading.Lock()
        self._conn = None
        self._down_until = 0.0      # after giving up: until then calls step aside at once
        try:
            options = self.psycopg.conninfo.conninfo_to_dict(url)
            bad_ports = [p for p in str(options.get("port", "")).split(",") if p and not p.isdigit()]
            if bad_ports:
                raise self.psycopg.ProgrammingError(f"port {bad_ports[0]!r} is not a number")
        except self.psycopg.Error as exc:
            raise UsageError(f"{self.location} is not a valid database URL ({self._text(exc)}); give "
                             f"postgresql://USER@HOST[:PORT]/DB") from None
        self._kwargs = {} if "connect_timeout" in options else {"connect_timeout": CONNECT_TIMEOUT_S}
        with self._lock:
            try:
                self._migrate(self._connection())
            except CacheError:
                self._drop()
                raise
            except self.psycopg.OperationalError as exc:
                self._drop()
                raise CacheError(f"cannot reach the {component} cache at {self.location} ({self._text(exc)}): check "
                                 f"that the server runs and the URL, or pass --no-measurement-cache") from None
            except self.psycopg.Error as exc:
                self._drop()
                raise CacheError(f"cannot use the {component} cache at {self.location} ({self._text(exc)})") from None

    def _text(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        for secret in _secrets(self.url):
            text = text.replace(secret, "***")
        return text

    def _connection(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.psycopg.connect(self.url, autocommit=True, **self._kwargs)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except self.psycopg.Error:
                pass
        self._conn = None

    def _migrate(self, conn) -> None:
        migrations = MIGRATIONS[self.component]
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            conn.execute("CREATE TABLE IF NOT EXISTS fleetnas_schema (component TEXT PRIMARY KEY, "
                         "version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM fleetnas_schema WHERE component = %s",
                               (self.component,)).fetchone()
            version = row[0] if row else 0
            if version > len(migrations):
                raise CacheError(f"the {self.component} cache at {self.location} was written by a newer fleetnas "
                                 f"(schema {version}); upgrade fleetnas to use it")
            for sql in migrations[version:]:
                conn.execute(sql)
            if version < len(migrations):
                conn.execute("INSERT INTO fleetnas_schema VALUES (%s, %s) ON CONFLICT (component) DO UPDATE SET "
                             "version = EXCLUDED.version", (self.component, len(migrations)))

    def run(self, what: str, work: Callable[[object], T], on_give_up: Callable[[], T]) -> T:
        """``work(connection)``, retried with backoff on a lost connection or a serialization failure; after
        ``retry_s`` (or while the server was found down recently) ``on_give_up()`` instead."""
        psycopg = self.psycopg
        delay, deadline = self.backoff_s[0], time.monotonic() + self.retry_s
        while True:
            with self._lock:
                if time.monotonic() < self._down_until:
                    return on_give_up()
                try:
                    return work(self._connection())
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    # connection lost, server restarting, serialization failure or deadlock: all worth another try
                    if self._conn is None or self._conn.closed or self._conn.broken:
                        self._drop()
                    error = self._text(exc)
                except psycopg.Error as exc:
                    raise CacheError(f"the {self.component} cache at {self.location} failed to {what} "
                                     f"({self._text(exc)})") from None
                if time.monotonic() + delay > deadline:
                    self._down_until = time.monotonic() + self.retry_s
                    log.warning("the %s cache at %s did not answer for %.0f s (%s): going on without it",
                                self.component, self.location, self.retry_s, error)
                    return on_give_up()
            time.sleep(delay)
            delay = min(delay * 2, self.backoff_s[1])

    def close(self) -> None:
        with self._lock:
            self._drop()


def _row_to_measurement(row: Sequence) -> Measurement:
    values = dict(zip(_COLUMNS, row))
    values["emulated"] = bool(values["emulated"])
    values["response"] = json.loads(values.pop("response_json"))
    return Measurement(**values)


class _Unsaved:
    """Writes the cache could not take yet: written first when the server answers again."""

    def __init__(self) -> None:
        self.items: list = []
        self.lock = threading.Lock()

    def push(self, item) -> None:
        with self.lock:
            self.items.append(item)

    def take(self) -> list:
        with self.lock:
            items, self.items = self.items, []
            return items


class PostgresMeasurementCache:
    """The measurement cache (same methods as fleetnas.host.fleet.measurements.MeasurementStore) in PostgreSQL."""

    def __init__(self, url: str, **retry) -> None:
        self._db = _Database(url, "measurements", **retry)
        self.url = url
        self.location = self._db.location
        self._unsaved = _Unsaved()

    def open_accuracy_cache(self) -> "PostgresAccuracyCache":
        """The accuracy cache in the same database (what the SQLite store does with its file)."""
        return PostgresAccuracyCache(self.url, retry_s=self._db.retry_s, backoff_s=self._db.backoff_s)

    def close(self) -> None:
        self._flush(final=True)
        self._db.close()

    def _insert(self, conn, rows: List[Measurement]) -> None:
        sql = (f"INSERT INTO fleet_measurements ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
               f"ON CONFLICT (device_fingerprint, model_sha256, runtime_key) WHERE {_USABLE} DO NOTHING")
        with conn.cursor() as cur:
            cur.executemany(sql, [[getattr(m, c) for c in _COLUMNS[:-1]] + [json.dumps(m.response, sort_keys=True)]
                                  for m in rows])

    def _flush(self, final: bool = False) -> None:
        rows = self._unsaved.take()
        if not rows:
            return

        def kept() -> None:
            if final:
                log.warning("%d measurement(s) could not be written to the measurement cache at %s (they are in the "
                            "run's journal)", len(rows), self.location)
            else:
                for m in rows:
                    self._unsaved.push(m)
        self._db.run("write", lambda conn: self._insert(conn, rows), kept)

    def add(self, m: Measurement) -> None:
        self._flush()
        self._db.run("write", lambda conn: self._insert(conn, [m]), lambda: self._unsaved.push(m))

    def _select(self, where: str, params: Iterable) -> List[Measurement]:
        self._flush()
        rows = self._db.run("read", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM fleet_measurements WHERE {where} ORDER BY id", tuple(params)
        ).fetchall(), list)
        return [_row_to_measurement(r) for r in rows]

    def lookup(self, fingerprints: Sequence[str], model_sha256: str, runtime_key: str) -> Optional[Measurement]:
        """The first usable measurement of this model with this runtime configuration on any of ``fingerprints``."""
        if not fingerprints:
            return None
        found = self._select(f"device_fingerprint = ANY(%s) AND model_sha256 = %s AND runtime_key = %s AND {_USABLE}",
                             (list(fingerprints), model_sha256, runtime_key))
        return found[0] if found else None

    def all(self) -> List[Measurement]:
        return self._select("TRUE", ())

    def for_class(self, device_class: str) -> List[Measurement]:
        return self._select("device_class = %s", (device_class,))

    def count(self, source: Optional[str] = None) -> int:
        where, params = ("TRUE", ()) if source is None else ("source = %s", (source,))
        return self._db.run("count", lambda conn: conn.execute(
            f"SELECT COUNT(*) FROM fleet_measurements WHERE {where}", params).fetchone()[0], lambda: 0)


class PostgresAccuracyCache:
    """The accuracy cache (same methods as fleetnas.host.store.accuracy_cache.AccuracyCache) in PostgreSQL."""

    def __init__(self, url: str, **retry) -> None:
        self._db = _Database(url, "accuracy", **retry)
        self.location = self._db.location
        self._unsaved = _Unsaved()

    def close(self) -> None:
        rows = self._unsaved.take()
        if rows:
            self._db.run("write", lambda conn: self._insert(conn, rows), lambda: log.warning(
                "%d accuracy value(s) could not be written to the accuracy cache at %s", len(rows), self.location))
        self._db.close()

    @staticmethod
    def _insert(conn, rows: List[tuple]) -> None:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO fleet_accuracy VALUES (%s, %s, %s, %s) ON CONFLICT "
                            "(supernet, weights_id, config_key) DO UPDATE SET accuracy = EXCLUDED.accuracy", rows)

    def lookup(self, supernet: str, weights_id: str, config_key: str) -> Optional[float]:
        row = self._db.run("read", lambda conn: conn.execute(
            "SELECT accuracy FROM fleet_accuracy WHERE supernet = %s AND weights_id = %s AND config_key = %s",
            (supernet, weights_id, config_key)).fetchone(), lambda: None)
        return None if row is None else float(row[0])

    def add(self, supernet: str, weights_id: str, config_key: str, accuracy: float) -> None:
        rows = self._unsaved.take() + [(supernet, weights_id, config_key, float(accuracy))]

        def kept() -> None:
            for r in rows:
                self._unsaved.push(r)
        self._db.run("write", lambda conn: self._insert(conn, rows), kept)
