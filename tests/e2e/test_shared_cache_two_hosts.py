"""Two hosts, one PostgreSQL store: two `fleetnas search` processes (each with its own run folder, exports and local
cache folder) against the same two real agents; the second measures nothing and evaluates no accuracy the first
already did."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from agent_harness import running_agent
from conftest import E2E_TIMING
from fleet_helpers import devices_toml

BUDGET = 4
PASSWORD = "not-for-logs"
SENTINEL = 0.123456   # no digits accuracy: a run reporting it read the shared accuracy cache


def search(tmp_path, host: str, measurement_url: str, accuracy_url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FLEETNAS_CACHE_DIR=str(tmp_path / host / "local-cache"))
    args = ["search", "--supernet", "tiny", "--devices", tmp_path / "devices.toml", "--budget", BUDGET, "--seed", 0,
            "--tactic", "random", "--out", tmp_path / host / "run", "--threads", 1, "--no-progress", "--json",
            "--measurement-cache", measurement_url, "--accuracy-cache", accuracy_url,
            f"--warmup-runs={E2E_TIMING['warmup_runs']}", f"--warmup-s={E2E_TIMING['warmup_s']}",
            f"--blocks={E2E_TIMING['blocks']}", f"--min-runs={E2E_TIMING['min_runs_per_block']}",
            f"--min-block-s={E2E_TIMING['min_block_s']}"]
    return subprocess.run([sys.executable, "-m", "fleetnas.host.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env)


def test_the_second_host_measures_and_evaluates_nothing_the_first_did(tmp_path, postgres_server):
    measurements_db = postgres_server.create_database("two_hosts_measurements", password=PASSWORD)
    accuracy_db = postgres_server.create_database("two_hosts_accuracy", password=PASSWORD)
    with running_agent(tmp_path / "a0") as a0, running_agent(tmp_path / "a1") as a1:
        (tmp_path / "devices.toml").write_text(devices_toml([a0, a1]))
        first = search(tmp_path, "host1", measurements_db, accuracy_db)
        assert first.returncode == 0, first.stderr[-3000:]
        after_first = [a.service.queue_stats().measurements_done for a in (a0, a1)]
        rows = postgres_server.psql("SELECT COUNT(*) FROM fleet_accuracy", "two_hosts_accuracy")
        postgres_server.psql(f"UPDATE fleet_accuracy SET accuracy = {SENTINEL}", "two_hosts_accuracy")
        second = search(tmp_path, "host2", measurements_db, accuracy_db)
        assert second.returncode == 0, second.stderr[-3000:]
        after_second = [a.service.queue_stats().measurements_done for a in (a0, a1)]
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert sum(after_first) == BUDGET and one["measurements"] == BUDGET and one["cache_hits"] == 0
    assert after_second == after_first                                   # no board measured anything again
    assert two["measurements"] == 0 and two["cache_hits"] == BUDGET and two["candidates_evaluated"] == BUDGET
    # accuracy: the second host read every value from the shared store and wrote none
    assert int(rows) == BUDGET
    assert postgres_server.psql("SELECT COUNT(*) FROM fleet_accuracy", "two_hosts_accuracy") == rows
    points = json.loads((tmp_path / "host2" / "run" / "cpu" / "points.json").read_text())
    assert len(points) == BUDGET and {p["accuracy"] for p in points} == {SENTINEL}
    # each store holds what it was given: measurements in one database, accuracy in the other
    assert postgres_server.psql("SELECT COUNT(*) FROM fleet_measurements", "two_hosts_measurements") == str(BUDGET)
    assert postgres_server.psql("SELECT to_regclass('fleet_accuracy') IS NULL", "two_hosts_measurements") == "t"
    # nothing went to the hosts' own cache folders, and no password was shown or stored
    for host, result in (("host1", first), ("host2", second)):
        assert not (tmp_path / host / "local-cache").exists()
        assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr
        for path in (tmp_path / host / "run").rglob("*"):
            if path.is_file() and path.suffix in (".json", ".csv", ".sqlite", ".txt", ".md"):
                assert PASSWORD.encode() not in path.read_bytes(), path
