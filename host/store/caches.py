"""The cross-run caches behind one small interface: a SQLite file (the default) or a shared PostgreSQL database.

``--measurement-cache`` and ``--accuracy-cache`` take a file path or a ``postgresql://`` URL; ``open_measurement_cache``
and ``open_accuracy_cache`` return the implementation for it. Both implementations answer the same way for the same
keys (tests/host/store/test_cache_contract.py runs one suite against each); the run journal is always a local file.
Only fleetnas.host.store.postgres_cache imports psycopg, and only when a URL is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Protocol, Sequence, Union

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import Measurement, MeasurementStore, default_cache_path
from fleetnas.host.store.accuracy_cache import AccuracyCache
# psycopg itself is imported there only when a URL is opened
from fleetnas.host.store.postgres_cache import (PostgresAccuracyCache, PostgresMeasurementCache, is_database_url,
                                                redact_url)

CacheSpec = Union[str, Path]


class MeasurementCache(Protocol):
    """Usable measurements keyed by (device fingerprint, model sha256, runtime key); the first one written wins.
    Thread-safe."""

    def add(self, m: Measurement) -> None: ...

    def lookup(self, fingerprints: Sequence[str], model_sha256: str, runtime_key: str) -> Optional[Measurement]: ...

    def all(self) -> List[Measurement]: ...

    def for_class(self, device_class: str) -> List[Measurement]: ...

    def count(self, source: Optional[str] = None) -> int: ...

    def close(self) -> None: ...


class AccuracyStore(Protocol):
    """Accuracy keyed by (super-network, weights and data, configuration); a later write replaces. One thread."""

    def lookup(self, supernet: str, weights_id: str, config_key: str) -> Optional[float]: ...

    def add(self, supernet: str, weights_id: str, config_key: str, accuracy: float) -> None: ...

    def close(self) -> None: ...


def _check_spec(spec: CacheSpec, flag: str) -> None:
    """A URL of another kind would otherwise become a strange file path."""
    if isinstance(spec, str) and "://" in spec and not is_database_url(spec):
        scheme = spec.split("://", 1)[0]
        raise UsageError(f"{flag}: {scheme}:// is not supported; give a file path or a postgresql://USER@HOST/DB URL")


def describe(spec: CacheSpec) -> str:
    """``spec`` fit to print: a URL's password masked."""
    return redact_url(spec) if is_database_url(spec) else str(spec)


def open_measurement_cache(spec: Optional[CacheSpec] = None, flag: str = "--measurement-cache") -> MeasurementCache:
    """The measurement cache at ``spec``: a ``postgresql://`` URL, or a SQLite file (default: the user's cache)."""
    spec = spec if spec not in (None, "") else default_cache_path()
    _check_spec(spec, flag)
    if is_database_url(spec):
        return PostgresMeasurementCache(spec)
    return MeasurementStore(Path(spec).expanduser())


def open_accuracy_cache(spec: CacheSpec, flag: str = "--accuracy-cache") -> AccuracyStore:
    _check_spec(spec, flag)
    if is_database_url(spec):
        return PostgresAccuracyCache(spec)
    return AccuracyCache(Path(spec).expanduser())


def accuracy_cache_beside(cache: MeasurementCache) -> AccuracyStore:
    """The accuracy cache kept where ``cache`` keeps measurements (its file, or its database)."""
    opener = getattr(cache, "open_accuracy_cache", None)
    return opener() if opener is not None else AccuracyCache(cache.path)
