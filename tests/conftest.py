"""Shared fixtures. `agent` is a real in-process agent on 127.0.0.1 port 0 (see tests/agent_harness.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers importable as plain modules

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def agent(tmp_path):
    from agent_harness import running_agent
    with running_agent(tmp_path / "agent") as running:
        yield running


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"published measurements not found at {SHARED_DATA} (a user checkout has no ../shared)")
    return SHARED_DATA
