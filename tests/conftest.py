"""Shared fixtures. `agent` is a real in-process agent on 127.0.0.1 port 0 (see tests/agent_harness.py)."""
import itertools
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers importable as plain modules

_DATABASES = itertools.count(1)   # one database per test on the session's PostgreSQL server
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


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (tests/pg_server.py); skipped, with the reason, where none can
    be started here."""
    from pg_server import PostgresUnavailable, throwaway_server
    try:
        import psycopg  # noqa: F401  (the tests talk to the server through fleetnas, which needs it)
    except ImportError:
        pytest.skip("psycopg not installed: pip install -e '.[postgresql]'")
    try:
        with throwaway_server() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server here: {exc}")


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh database on the session's server, for this test alone."""
    name = f"t{next(_DATABASES)}_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[-50:]
    return postgres_server.create_database(name)
