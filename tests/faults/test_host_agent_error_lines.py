"""What the host prints for an agent error is one line a user can act on: no gRPC transport internals, no Python type
names, errno numbers or file paths of the board. The real CLI in a subprocess against a real agent on loopback."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from agent_harness import running_agent

from fleetnas.host.fleet.contract import write_reference_model


def measure_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleetnas.host.cli", "measure", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_agent_is_one_plain_line(tmp_path):
    model = write_reference_model(tmp_path)
    line = one_error_line(measure_cli("--agent", f"127.0.0.1:{closed_port()}", model))
    assert "unreachable (connection refused)" in line and "fleetnas-agent serve" in line
    for internal in ("ipv4:", "UNKNOWN:", "last error", "failed to connect to all addresses"):
        assert internal not in line, line


def failing_measurement(job):
    """An unexpected failure inside the agent's measurement (what a bug or a broken board looks like)."""
    raise RuntimeError(f"worker pipe closed while reading {job.model_path}\n  File '/opt/agent/worker.py', line 88")


def test_unexpected_agent_failure_is_one_line_without_internals(tmp_path):
    model = write_reference_model(tmp_path)
    with running_agent(tmp_path / "agent", measure_fn=failing_measurement) as agent:
        line = one_error_line(measure_cli("--agent", agent.address, model))
    assert line.startswith(f"error: {agent.address}: ") and "Measure" in line and "worker pipe closed" in line
    assert "log" in line
    for internal in ("RuntimeError", "agent bug", str(Path(tmp_path / "agent")), "/opt/agent", "File "):
        assert internal not in line, line
