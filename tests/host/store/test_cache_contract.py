"""One suite for every cache implementation: the SQLite file and a real PostgreSQL server answer the same way.

Each test gets ``backend``: ``open_measurements()`` / ``open_accuracy()`` open a new handle on the same store (a second
handle stands for a second host), ``bump_schema(component)`` makes the store look written by a newer fleetnas.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable

import pytest

from fleetnas.host.fleet.measurements import CacheError, Measurement
from fleetnas.host.store.caches import accuracy_cache_beside, open_accuracy_cache, open_measurement_cache


@dataclass
class Backend:
    spec: str
    bump_schema: Callable[[str], None]

    def open_measurements(self):
        return open_measurement_cache(self.spec)

    def open_accuracy(self):
        return open_accuracy_cache(self.spec)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "cache.sqlite"

        def bump(component: str) -> None:
            with sqlite3.connect(str(path)) as db:
                db.execute("UPDATE fleet_schema SET version = 99 WHERE component = ?", (component,))
        return Backend(str(path), bump)
    server = request.getfixturevalue("postgres_server")
    url = request.getfixturevalue("postgres_url")
    database = url.rsplit("/", 1)[1]
    return Backend(url, lambda component: server.psql(
        f"UPDATE fleetnas_schema SET version = 99 WHERE component = '{component}'", database))


def measurement(fingerprint="fp-a", sha="ab" * 32, runtime_key="onnxruntime|t1", outcome="OK", latency_ms=1.25,
                **kw) -> Measurement:
    values = dict(device_fingerprint=fingerprint, model_sha256=sha, runtime_key=runtime_key, device_class="cpu",
                  device_name="dev0", device_id="id-0", config_key='{"w":8}', outcome=outcome,
                  latency_ms=latency_ms if outcome in ("OK", "UNSTABLE") else None, energy_mj=None, emulated=False,
                  source="measured", recorded_unix_ns=1_700_000_000_123_456_789,
                  response={"overall": {"median_ms": latency_ms}, "config": {"threads": 1}})
    values.update(kw)
    return Measurement(**values)


def test_a_measurement_comes_back_whole(backend):
    cache = backend.open_measurements()
    m = measurement(energy_mj=3.5, emulated=True, response={"overall": {"median_ms": 1.25}, "nested": [1, 2.5, "x"]})
    cache.add(m)
    assert cache.lookup(["fp-a"], m.model_sha256, m.runtime_key) == m
    assert cache.all() == [m]
    cache.close()


def test_lookup_is_keyed_by_fingerprint_model_and_runtime_and_skips_failures(backend):
    cache = backend.open_measurements()
    failed = measurement(sha="cd" * 32, outcome="LOAD_FAILED")
    unstable = measurement(sha="ef" * 32, outcome="UNSTABLE", latency_ms=2.0)
    ok = measurement()
    for m in (failed, unstable, ok):
        cache.add(m)
    assert cache.lookup(["fp-a"], "cd" * 32, ok.runtime_key) is None          # failures never answer
    assert cache.lookup(["fp-a"], "ef" * 32, ok.runtime_key) == unstable      # unstable ones do, flagged
    assert cache.lookup(["fp-b"], ok.model_sha256, ok.runtime_key) is None    # another kind of board
    assert cache.lookup(["fp-a"], ok.model_sha256, "onnxruntime|t4") is None  # another runtime configuration
    assert cache.lookup(["fp-b", "fp-a"], ok.model_sha256, ok.runtime_key) == ok
    assert cache.lookup([], ok.model_sha256, ok.runtime_key) is None
    assert cache.count() == 3 and cache.count("measured") == 3 and cache.count("cache") == 0
    assert [m.outcome for m in cache.for_class("cpu")] == ["LOAD_FAILED", "UNSTABLE", "OK"]
    assert cache.for_class("gpu") == []
    cache.close()


def test_the_first_usable_write_wins_across_hosts(backend):
    host1, host2 = backend.open_measurements(), backend.open_measurements()
    first = measurement(latency_ms=1.0, device_name="host1-dev")
    host1.add(first)
    host2.add(measurement(latency_ms=9.0, device_name="host2-dev"))
    host2.add(measurement(latency_ms=7.0, device_name="host2-dev"))
    for cache in (host1, host2):
        assert cache.lookup(["fp-a"], first.model_sha256, first.runtime_key) == first
    host1.close()
    host2.close()


def test_measurements_outlive_the_handle(backend):
    cache = backend.open_measurements()
    m = measurement()
    cache.add(m)
    cache.close()
    again = backend.open_measurements()
    assert again.lookup(["fp-a"], m.model_sha256, m.runtime_key) == m
    again.close()


def test_accuracy_is_keyed_by_supernet_weights_and_config_and_a_later_write_replaces(backend):
    cache = backend.open_accuracy()
    assert cache.lookup("tiny", "w1", '{"w":8}') is None
    cache.add("tiny", "w1", '{"w":8}', 0.75)
    cache.add("tiny", "w2", '{"w":8}', 0.5)
    cache.add("other", "w1", '{"w":8}', 0.25)
    assert cache.lookup("tiny", "w1", '{"w":8}') == 0.75
    assert cache.lookup("tiny", "w1", '{"w":16}') is None
    cache.add("tiny", "w1", '{"w":8}', 0.8)     # as SQLite's INSERT OR REPLACE
    assert cache.lookup("tiny", "w1", '{"w":8}') == 0.8
    cache.close()
    again = backend.open_accuracy()
    assert (again.lookup("tiny", "w1", '{"w":8}'), again.lookup("tiny", "w2", '{"w":8}'),
            again.lookup("other", "w1", '{"w":8}')) == (0.8, 0.5, 0.25)
    again.close()


def test_the_accuracy_cache_beside_the_measurement_cache_is_the_same_store(backend):
    measurements = backend.open_measurements()
    beside = accuracy_cache_beside(measurements)
    beside.add("tiny", "w1", "k", 0.5)
    beside.close()
    measurements.close()
    named = backend.open_accuracy()
    assert named.lookup("tiny", "w1", "k") == 0.5
    named.close()


def test_a_store_written_by_a_newer_fleetnas_is_refused_in_one_line(backend):
    backend.open_measurements().close()
    backend.bump_schema("measurements")
    with pytest.raises(CacheError, match="newer fleetnas") as caught:
        backend.open_measurements()
    assert "\n" not in str(caught.value)

