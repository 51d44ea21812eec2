"""A damaged run journal never silently restarts the run and never gives a traceback: `search --resume` and `report`
refuse, in one line (exit 2), a journal that is empty, damaged, inconsistent with run.json, or whose WAL was cut short;
a cleanly finished run is one `.sqlite` file. Real agent on loopback, real SQLite files, the real CLI."""
from __future__ import annotations

import json
import random
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest
from host_faults_support import devices_toml, finished_run, main, run_copy, running_agent, search_args  # noqa: F401
from host_faults_support import tiny_available  # noqa: F401

JOURNAL = "journal.sqlite"


@pytest.fixture(scope="module")
def live_agent(tmp_path_factory):
    with running_agent(tmp_path_factory.mktemp("resume-agent")) as agent:
        yield agent


def cli(capsys, *args):
    """(exit code, stderr) of the real CLI run in this process."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def resume(capsys, run_dir: Path, agent, device_class: str = "cpu", extra=()):
    devices = run_dir.parent / "devices.toml"
    devices.write_text(devices_toml([agent], device_class))
    return cli(capsys, *search_args(devices, run_dir, run_dir.parent / "exports", "--resume",
                                    "--no-measurement-cache", *extra))


def assert_one_line_refusal(code, err, *words):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], err


def trial_count(run_dir: Path) -> int:
    with sqlite3.connect(str(run_dir / JOURNAL)) as db:
        return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


# ------------------------------------------------------------------------------------------------ a clean finish
def test_finished_run_is_one_sqlite_file(finished_run, tmp_path, capsys):
    wal = finished_run / (JOURNAL + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    only = tmp_path / "copied"
    only.mkdir()
    shutil.copy(finished_run / JOURNAL, only / JOURNAL)
    shutil.copy(finished_run / "run.json", only / "run.json")
    assert main(["report", str(only), "--json", "--no-plots"]) == 0
    copied = json.loads(capsys.readouterr().out)
    assert main(["report", str(finished_run), "--json", "--no-plots"]) == 0
    original = json.loads(capsys.readouterr().out)
    assert copied["candidates_evaluated"] == original["candidates_evaluated"] >= 1
    assert copied["fronts"] == original["fronts"]


# ------------------------------------------------------------------------------------------------ empty journal
def test_empty_journal_is_refused_by_report_and_resume(run_copy, live_agent, capsys):
    (run_copy / JOURNAL).write_bytes(b"")
    assert_one_line_refusal(*cli(capsys, "report", run_copy, "--no-plots"), JOURNAL, "empty")
    assert_one_line_refusal(*resume(capsys, run_copy, live_agent), JOURNAL, "empty")
    assert (run_copy / JOURNAL).stat().st_size == 0      # nothing was started over it


# ------------------------------------------------------------------------------------------------ damaged pages
def damage_page(path: Path, seed: int = 7) -> None:
    """Random bytes over one page in the middle of the file (the header stays valid: SQLite opens the file, and a
    report that reads around the page would not notice)."""
    data = bytearray(path.read_bytes())
    page = struct.unpack(">H", data[16:18])[0] or 65536
    start = page * (len(data) // page // 2)
    rng = random.Random(seed)
    data[start:start + page] = bytes(rng.randrange(256) for _ in range(page))
    path.write_bytes(bytes(data))


def test_damaged_journal_is_refused_by_report_and_resume(run_copy, live_agent, capsys):
    damage_page(run_copy / JOURNAL)
    damaged = (run_copy / JOURNAL).read_bytes()
    assert_one_line_refusal(*cli(capsys, "report", run_copy, "--no-plots"), JOURNAL, "damaged")
    assert_one_line_refusal(*resume(capsys, run_copy, live_agent), JOURNAL, "damaged")
    assert (run_copy / JOURNAL).read_bytes() == damaged


def test_damaged_row_is_one_line_not_a_traceback(run_copy, capsys):
    """Damage that leaves the b-tree valid (a trial's stored JSON) is caught where it is read."""
    with sqlite3.connect(str(run_copy / JOURNAL)) as db:
        db.execute("UPDATE trials SET config_json = '{\"width\": ' WHERE trial_id = 1")
    db.close()
    assert_one_line_refusal(*cli(capsys, "report", run_copy, "--no-plots"), JOURNAL, "damaged")


# ------------------------------------------------------------------------------------------------ run.json mismatch
def test_journal_inconsistent_with_run_json_is_refused(run_copy, live_agent, capsys):
    settings = json.loads((run_copy / "run.json").read_text())
    settings["classes"], settings["devices"] = ["gpu"], {"dev0": "gpu"}
    (run_copy / "run.json").write_text(json.dumps(settings))
    before = trial_count(run_copy)
    assert_one_line_refusal(*cli(capsys, "report", run_copy, "--no-plots"), "run.json", "cpu")
    assert_one_line_refusal(*resume(capsys, run_copy, live_agent, "gpu"), "run.json", "cpu")
    assert trial_count(run_copy) == before


def test_unreadable_run_json_is_one_line(run_copy, capsys):
    (run_copy / "run.json").write_text('{"supernet": "tiny", ')
    assert_one_line_refusal(*cli(capsys, "report", run_copy, "--no-plots"), "run.json")


# ------------------------------------------------------------------------------------------------ a half WAL
def killed_mid_run_copy(run_copy: Path, dest: Path) -> Path:
    """The run folder as a host killed mid-run leaves it: more trials committed in journal.sqlite-wal, not yet in
    journal.sqlite (a writer still holds the file open while we copy, as SIGKILL would leave it)."""
    db = sqlite3.connect(str(run_copy / JOURNAL), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    run_id = db.execute("SELECT run_id FROM runs").fetchone()[0]
    for i in range(40):   # enough committed transactions that half the WAL loses some of them
        db.execute("BEGIN")
        db.execute("INSERT INTO trials (run_id, key, config_json, state, proposed_s) VALUES (?, ?, '{}', 'pending', 0)",
                   (run_id, f"extra-{i}-" + "x" * 2000))
        db.execute("COMMIT")
    dest.mkdir()
    for name in (JOURNAL, JOURNAL + "-wal", "run.json"):
        shutil.copy(run_copy / name, dest / name)
    db.close()
    return dest


def test_half_wal_is_never_resumed_silently(run_copy, live_agent, tmp_path, capsys):
    killed = killed_mid_run_copy(run_copy, tmp_path / "killed")
    wal = killed / (JOURNAL + "-wal")
    with open(wal, "r+b") as f:
        f.truncate(wal.stat().st_size // 2 + 100)      # cut mid-frame, as an interrupted copy or a full disk does
    cut = wal.read_bytes()
    assert_one_line_refusal(*cli(capsys, "report", killed, "--no-plots"), JOURNAL + "-wal")
    assert_one_line_refusal(*resume(capsys, killed, live_agent), JOURNAL + "-wal")
    assert wal.read_bytes() == cut                      # left as found, for the user to decide


# ------------------------------------------------------------------------------------------------ the caches
def test_damaged_measurement_cache_is_one_line(tmp_path, live_agent, tiny_available, capsys):  # noqa: F811
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"not a database, a damaged one " * 200)
    devices = tmp_path / "devices.toml"
    devices.write_text(devices_toml([live_agent]))
    code, err = cli(capsys, *search_args(devices, tmp_path / "run", tmp_path / "exports",
                                         "--measurement-cache", cache))
    assert_one_line_refusal(code, err, str(cache), "damaged", "--no-measurement-cache")
