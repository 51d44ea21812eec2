"""Real agents for the agent's fault-injection tests: in this process on 127.0.0.1 port 0, real store and workers,
with the service and server settings a test wants to push against (ceilings, limits, small disks).

    with fault_agent(tmp_path, service={"max_measure_s": 2}) as agent:
        client = agent.client()
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

from agent_harness import RunningAgent
from fleetnas.agent.app import make_service
from fleetnas.agent.board.device_info import DeviceInfoSource
from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.agent.measure.worker import run_measurement
from fleetnas.agent.measure.worker_spawn import CHILD_MODULE
from fleetnas.agent.rpc.server import make_server
from fleetnas.agent.store.model_store import ModelStore
from fleetnas.agent.v1 import agent_pb2 as pb

# Every phase runs, quickly; the worker is killed after 20 s whatever the test does.
QUICK = dict(warmup_runs=1, warmup_s=0.01, blocks=2, min_runs_per_block=3, min_block_s=0.01, timeout_s=20.0)


def quick_timing(**overrides: Any) -> pb.TimingConfig:
    return pb.TimingConfig(**{**QUICK, **overrides})


def bare_worker(job):
    """A worker run without hygiene (no drift canary): a fault hook then hits only the test's own run."""
    return run_measurement(job)


@contextlib.contextmanager
def fault_agent(cache_dir: Path, *, service: Optional[Dict[str, Any]] = None,
                server: Optional[Dict[str, Any]] = None, store: Optional[Dict[str, Any]] = None,
                measure_fn=bare_worker) -> Iterator[RunningAgent]:
    cache_dir = Path(cache_dir)
    model_store = ModelStore(cache_dir / "store", **{"quota_bytes": 64 * 2**20, **(store or {})})
    svc = make_service(model_store, cache_dir, measure_fn=measure_fn, **(service or {}))
    source = DeviceInfoSource(svc, state_dir=cache_dir)
    grpc_server, port = make_server(svc, listen="127.0.0.1:0", device_info=source.device_info,
                                    device_id=source.device_id, **(server or {}))
    source.fingerprint  # start from a fully ready agent
    agent = RunningAgent(port, svc, grpc_server, f"127.0.0.1:{port}")
    try:
        yield agent
    finally:
        agent.stop()


def small_model(directory: Path, seed: int = 0) -> Path:
    return write_reference_model(Path(directory), "onnx", width=32, seed=seed)


def workers_of(agent_pid: int):
    """Worker processes started by the agent (their last argument is the agent's pid), alive or zombie."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if CHILD_MODULE.encode() in argv and argv[-2:-1] == [str(agent_pid).encode()]:
            found.append(int(entry.name))
    return found


def agent_process(tmp_path: Path, *args: str, env: Optional[Dict[str, str]] = None, umask: Optional[int] = None
                  ) -> subprocess.Popen:
    """`fleetnas-agent serve` as its own process on 127.0.0.1 port 0 (``proc.port``), cache under tmp_path/cache."""
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0",
                             "--cache-dir", str(tmp_path / "cache"), "--port-file", str(port_file),
                             "--log-level", "WARNING", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"agent did not start: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.1)
    proc.port = int(port_file.read_text())
    return proc
