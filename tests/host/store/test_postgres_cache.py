"""The PostgreSQL caches against a real server: concurrent writers in two processes, migrations under a lock, lost
connections, a server that goes away and comes back, and one-line errors that never show a password."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from pg_server import PostgresUnavailable, free_port, throwaway_server

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.measurements import CacheError, Measurement
from fleetnas.host.store.caches import describe, open_accuracy_cache, open_measurement_cache
from fleetnas.host.store.postgres_cache import (MIGRATIONS, PostgresAccuracyCache, PostgresMeasurementCache,
                                                redact_url)

KEYS = 300

# a second host: opens the cache (racing the other to create the schema) and writes the same keys with its own value
_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fleetnas.host.fleet.measurements import Measurement
    from fleetnas.host.store.caches import open_accuracy_cache, open_measurement_cache
    url, value, go = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    cache, accuracy = open_measurement_cache(url), open_accuracy_cache(url)
    for i in range(%d):
        cache.add(Measurement("fp", f"{i:064x}", "rk", "cpu", f"dev{value:g}", "id", "k", "OK", value, None, False,
                              "measured", time.time_ns(), {"writer": value}))
        accuracy.add("tiny", "w", f"k{i}", value)
    cache.close(); accuracy.close()
""" % KEYS)


def measurement(sha: str, latency_ms: float = 1.0) -> Measurement:
    return Measurement("fp", sha, "rk", "cpu", "dev0", "id0", "k", "OK", latency_ms, None, False, "measured",
                       time.time_ns(), {"overall": {"median_ms": latency_ms}})


def test_two_processes_writing_the_same_keys_leave_one_entry_each(postgres_server, postgres_url, tmp_path):
    go = tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, postgres_url, str(v), str(go)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (1.0, 2.0)]
    time.sleep(0.3)
    go.touch()   # both start together: schema creation and every insert race
    for w in writers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    database = postgres_url.rsplit("/", 1)[1]
    rows = postgres_server.psql("SELECT COUNT(*), COUNT(DISTINCT model_sha256) FROM fleet_measurements", database)
    assert rows == f"{KEYS}|{KEYS}"
    assert postgres_server.psql("SELECT COUNT(*) FROM fleet_accuracy", database) == str(KEYS)
    assert postgres_server.psql("SELECT component, version FROM fleetnas_schema ORDER BY component", database) == (
        f"accuracy|{len(MIGRATIONS['accuracy'])}\nmeasurements|{len(MIGRATIONS['measurements'])}")
    cache = open_measurement_cache(postgres_url)
    for i in (0, KEYS // 2, KEYS - 1):
        hit = cache.lookup(["fp"], f"{i:064x}", "rk")
        assert hit.latency_ms in (1.0, 2.0) and hit.response == {"writer": hit.latency_ms}   # one writer's, whole
    cache.close()


def test_hosts_opening_a_new_database_together_migrate_it_once(postgres_server, postgres_url):
    errors, caches = [], []

    def open_one():
        try:
            caches.append(PostgresMeasurementCache(postgres_url))
        except Exception as exc:   # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)
    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(caches) == 6
    database = postgres_url.rsplit("/", 1)[1]
    assert postgres_server.psql("SELECT version FROM fleetnas_schema WHERE component = 'measurements'",
                                database) == str(len(MIGRATIONS["measurements"]))
    for c in caches:
        c.close()


def test_a_dropped_connection_is_made_again(postgres_server, postgres_url):
    cache, accuracy = PostgresMeasurementCache(postgres_url), PostgresAccuracyCache(postgres_url)
    cache.add(measurement("a" * 64))
    accuracy.add("tiny", "w", "k", 0.5)
    database = postgres_url.rsplit("/", 1)[1]
    killed = postgres_server.psql(f"SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
                                  f"'{database}' AND pid <> pg_backend_pid()")
    assert int(killed) >= 2
    cache.add(measurement("b" * 64))
    assert cache.lookup(["fp"], "a" * 64, "rk") is not None and cache.lookup(["fp"], "b" * 64, "rk") is not None
    assert accuracy.lookup("tiny", "w", "k") == 0.5
    cache.close()
    accuracy.close()


def test_a_server_gone_mid_run_costs_no_measurement_and_no_password(caplog):
    try:
        context = throwaway_server()
        server = context.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server here: {exc}")
    try:
        url = server.create_database("gone", password="hunter2-secret")
        cache = PostgresMeasurementCache(url, retry_s=0.5, backoff_s=(0.05, 0.2))
        accuracy = PostgresAccuracyCache(url, retry_s=0.5, backoff_s=(0.05, 0.2))
        cache.add(measurement("a" * 64))
        server.stop()
        with caplog.at_level(logging.WARNING, logger="fleetnas.host.store"):
            cache.add(measurement("b" * 64))                 # kept in memory: the run goes on
            accuracy.add("tiny", "w", "k", 0.25)
            assert cache.lookup(["fp"], "a" * 64, "rk") is None   # a miss: measured again, not an error
        assert "did not answer" in caplog.text and "hunter2-secret" not in caplog.text and "***" in caplog.text
        server.start()
        time.sleep(0.6)                                       # past the stepping-aside window
        cache.add(measurement("c" * 64))                      # writes what was kept first
        accuracy.add("tiny", "w", "k2", 0.5)
        for sha in ("a", "b", "c"):
            assert cache.lookup(["fp"], sha * 64, "rk") is not None, sha
        assert (accuracy.lookup("tiny", "w", "k"), accuracy.lookup("tiny", "w", "k2")) == (0.25, 0.5)
        cache.close()
        accuracy.close()
    finally:
        context.__exit__(None, None, None)


def test_an_unreachable_server_is_one_line_without_the_password():
    url = f"postgresql://fleet:hunter2-secret@127.0.0.1:{free_port()}/cache"
    with pytest.raises(CacheError) as caught:
        open_measurement_cache(url)
    text = str(caught.value)
    assert "cannot reach the measurements cache at postgresql://fleet:***@127.0.0.1" in text
    assert "hunter2-secret" not in text and "\n" not in text


@pytest.mark.parametrize("spec, message", [
    ("postgresql://u@127.0.0.1:notaport/db", "not a valid database URL"),
    ("mysql://u@127.0.0.1/db", "mysql:// is not supported"),
])
def test_a_bad_url_is_one_line(spec, message):
    with pytest.raises(UsageError, match=message) as caught:
        open_accuracy_cache(spec)
    assert "\n" not in str(caught.value)


def test_without_psycopg_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)   # as an install without the postgresql extra
    with pytest.raises(UsageError, match=r"pip install 'fleetnas\[postgresql\]'"):
        open_measurement_cache("postgresql://u@127.0.0.1/db")


def test_passwords_are_masked_wherever_a_url_is_shown():
    assert redact_url("postgresql://u:p%40ss@h:5432/db?sslmode=require&password=x") == \
        "postgresql://u:***@h:5432/db?sslmode=require&password=***"
    assert redact_url("postgres://h/db") == "postgres://h/db"
    assert describe("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert describe("/tmp/cache.sqlite") == "/tmp/cache.sqlite"


def test_only_the_postgres_module_imports_psycopg():
    from import_scan import all_modules, imports
    users = {name for name, path in all_modules().items()
             for target, _line, _inside in imports(name, path, type_checking=True) if target.split(".")[0] == "psycopg"}
    assert users == {"fleetnas.host.store.postgres_cache"}


def test_search_with_an_unreachable_store_stops_in_one_line_before_the_fleet_starts(tmp_path, capsys):
    from fleetnas.host.cli import main
    url = f"postgresql://fleet:hunter2-secret@127.0.0.1:{free_port()}/cache"
    code = main(["search", "--supernet", "tiny", "--devices", str(tmp_path / "devices.toml"), "--budget", "2",
                 "--out", str(tmp_path / "run"), "--measurement-cache", url, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot reach the measurements cache at postgresql://fleet:***@")
    assert err.count("\n") == 1 and "hunter2-secret" not in err
    assert not (tmp_path / "run").exists()


def test_the_resume_command_masks_the_password():
    import argparse

    from fleetnas.host.commands.search import add_arguments, resume_command
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--supernet", "tiny", "--devices", "d.toml", "--budget", "2", "--out", "run",
                              "--measurement-cache", "postgresql://u:hunter2-secret@h/db",
                              "--accuracy-cache", "postgres://u:hunter2-secret@h/acc"])
    command = resume_command(args)
    assert "hunter2-secret" not in command
    assert "--measurement-cache postgresql://u:***@h/db --accuracy-cache postgres://u:***@h/acc" in command.replace(
        "'", "")


def test_a_serialization_failure_is_tried_again(postgres_url):
    cache = PostgresMeasurementCache(postgres_url, backoff_s=(0.01, 0.05))
    attempts = []

    def work(conn):   # the server answers SQLSTATE 40001 the first time, as a conflicting writer would cause
        attempts.append(1)
        if len(attempts) == 1:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$")
        return conn.execute("SELECT 42").fetchone()[0]
    assert cache._db.run("read", work, lambda: None) == 42 and len(attempts) == 2
    cache.close()
