"""`--no-measurement-cache` is never answered from an agent's memory of another run: request ids carry the run's
identity (kept on resume, so a resumed host still recovers its own in-flight work), and what an agent answers from
memory is labelled `replayed` in the journal and the report. Real agent on loopback, real CLI, real SQLite."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from host_faults_support import BUDGET, devices_toml, main, running_agent, search_args
from host_faults_support import tiny_available  # noqa: F401


@pytest.fixture
def one_agent(tmp_path, monkeypatch, tiny_available):  # noqa: F811
    monkeypatch.setenv("FLEETNAS_CACHE_DIR", str(tmp_path / "cache"))
    with running_agent(tmp_path / "agent") as agent:
        (tmp_path / "devices.toml").write_text(devices_toml([agent]))
        yield agent


def search(tmp_path: Path, out: str, *extra: str) -> int:
    return main(search_args(tmp_path / "devices.toml", tmp_path / out, tmp_path / "exports", "--no-measurement-cache",
                            *extra))


def measured_on_agent(agent) -> int:
    return agent.service.queue_stats().measurements_done


def journaled(run_dir: Path):
    with sqlite3.connect(str(run_dir / "journal.sqlite")) as db:
        rows = db.execute("SELECT payload_json FROM measurements WHERE metric = 'latency_ms' "
                          "ORDER BY measurement_id").fetchall()
    return [json.loads(p) for (p,) in rows]


def report(run_dir: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json", "--no-plots"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_second_run_without_the_cache_is_measured_again_not_remembered(tmp_path, one_agent, capsys):
    assert search(tmp_path, "run1") == 0
    first = measured_on_agent(one_agent)
    assert first == BUDGET
    assert search(tmp_path, "run2") == 0                  # same settings, same models, same agent
    assert measured_on_agent(one_agent) == 2 * BUDGET     # every candidate measured again, none from memory
    uids = {json.loads((tmp_path / r / "run.json").read_text())["run_uid"] for r in ("run1", "run2")}
    assert len(uids) == 2 and all(uids)
    rows = journaled(tmp_path / "run2")
    assert len(rows) == BUDGET and not any(r["replayed"] for r in rows)
    assert report(tmp_path / "run2", capsys)["replayed"] == 0


def forget_results(run_dir: Path) -> None:
    """The journal as a host killed after dispatching every candidate, before any result was journaled, leaves it."""
    with sqlite3.connect(str(run_dir / "journal.sqlite")) as db:
        db.execute("DELETE FROM measurements")
        db.execute("DELETE FROM events WHERE kind = 'result'")
        db.execute("UPDATE trials SET state = 'pending', values_json = NULL, error = NULL, finished_s = NULL")
        assert db.execute("SELECT COUNT(*) FROM trials WHERE dispatched_s IS NULL").fetchone()[0] == 0
    db.close()


def test_a_resumed_run_recovers_its_own_requests_labelled_replayed(tmp_path, one_agent, capsys):
    assert search(tmp_path, "run") == 0
    assert measured_on_agent(one_agent) == BUDGET
    forget_results(tmp_path / "run")
    assert search(tmp_path, "run", "--resume") == 0
    assert measured_on_agent(one_agent) == BUDGET         # recovered from the agent, nothing measured twice
    rows = journaled(tmp_path / "run")
    assert len(rows) == BUDGET and all(r["replayed"] and r["source"] == "measured" for r in rows)
    data = report(tmp_path / "run", capsys)
    assert data["replayed"] == BUDGET and data["candidates_evaluated"] == BUDGET
    points = json.loads((tmp_path / "run" / "cpu" / "points.json").read_text())
    assert all(p["replayed"] for p in points)
