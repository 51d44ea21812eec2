"""End-to-end fixtures: the real `tiny` super-network (shared by the tests of a session: its accuracy cache and the
exported models are reused), real agents on loopback, and a short-but-methodical timing."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host" / "fleet"))  # fleet_helpers

# Short timing so a candidate is measured in well under a second; every phase still runs.
E2E_TIMING = dict(warmup_runs=2, warmup_s=0.02, blocks=3, min_runs_per_block=5, min_block_s=0.03, timeout_s=60.0)


@pytest.fixture(scope="session")
def tiny():
    from fleetnas.host.errors import UsageError
    from fleetnas.host.supernets.base import get_supernet
    try:
        return get_supernet("tiny")
    except UsageError as exc:
        pytest.skip(f"tiny super-network unavailable: {exc}")


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Keep the user's ~/.cache/fleetnas out of the tests."""
    monkeypatch.setenv("FLEETNAS_CACHE_DIR", str(tmp_path / "fleetnas-cache"))
    return tmp_path / "fleetnas-cache"
