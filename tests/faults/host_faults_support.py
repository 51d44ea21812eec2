"""Shared by the host fault tests: a real `tiny` search against a real agent on loopback, run once per session through
the real CLI, whose finished run folder each test copies and then damages."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host" / "fleet"))  # fleet_helpers

from agent_harness import running_agent  # noqa: E402
from fleet_helpers import devices_toml  # noqa: E402

from fleetnas.host.cli import main  # noqa: E402

BUDGET = 3
TIMING = ["--warmup-runs=2", "--warmup-s=0.02", "--blocks=3", "--min-runs=5", "--min-block-s=0.03"]


def search_args(devices: Path, out: Path, export_dir: Path, *extra: str) -> List[str]:
    return ["search", "--supernet", "tiny", "--devices", str(devices), "--budget", str(BUDGET), "--seed", "0",
            "--tactic", "random", "--out", str(out), "--export-dir", str(export_dir), "--threads", "1",
            "--no-progress", "--json", *TIMING, *extra]


@pytest.fixture(scope="session")
def tiny_available():
    from fleetnas.host.errors import UsageError
    from fleetnas.host.supernets.base import get_supernet
    try:
        get_supernet("tiny")
    except UsageError as exc:
        pytest.skip(f"tiny super-network unavailable: {exc}")


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_available):
    """A run folder of a finished search (closed cleanly), and the export folder its models are in."""
    base = tmp_path_factory.mktemp("finished")
    mp = pytest.MonkeyPatch()
    mp.setenv("FLEETNAS_CACHE_DIR", str(base / "cache"))
    try:
        with running_agent(base / "agent") as agent:
            (base / "devices.toml").write_text(devices_toml([agent]))
            code = main(search_args(base / "devices.toml", base / "run", base / "exports"))
        assert code == 0
    finally:
        mp.undo()
    return base / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A private copy of the finished run folder, to damage."""
    return Path(shutil.copytree(finished_run, tmp_path / "run"))
