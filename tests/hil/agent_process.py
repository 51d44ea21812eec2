"""Real `fleetnas-agent serve` processes for the HIL plugin and network-namespace tests (as a board runs it).

    with agent_process(tmp_path / "a", token="s3cret") as agent:
        agent.address   # "127.0.0.1:<port>"

The agent binds port 0 and writes the port it got to --port-file; we wait for that file, never sleep blindly.
``prefix`` runs it under a wrapper, e.g. ``["ip", "netns", "exec", "fnhil-a"]``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

START_TIMEOUT_S = 30.0


@dataclass
class AgentProcess:
    process: subprocess.Popen
    host: str
    port: int
    token_file: Optional[Path]
    log_path: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def write_token(path: Path, token: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def agent_process(workdir: Path, *, host: str = "127.0.0.1", token: Optional[str] = None,
                  prefix: Sequence[str] = ()) -> Iterator[AgentProcess]:
    workdir.mkdir(parents=True, exist_ok=True)
    port_file, log_path = workdir / "port", workdir / "agent.log"
    token_file = write_token(workdir / "token", token) if token else None
    cmd = [*prefix, sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", f"{host}:0",
           "--port-file", str(port_file), "--cache-dir", str(workdir / "cache"), "--log-level", "WARNING"]
    if token_file:
        cmd += ["--token-file", str(token_file)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"agent did not start ({' '.join(cmd)}):\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield AgentProcess(proc, host, int(port_file.read_text()), token_file, log_path)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)   # its own session: the agent and its measurement workers
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
