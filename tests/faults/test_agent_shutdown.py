"""SIGTERM during a measurement: `fleetnas-agent serve` cancels the running worker within seconds, answers its caller
with UNAVAILABLE saying it is shutting down, exits, and leaves no worker process behind. A real agent process."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent_fault_kit import quick_timing, small_model
from fleetnas.agent.measure.worker import TEST_HOOK_ENV
from fleetnas.agent.measure.worker_spawn import CHILD_MODULE
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.client import WireClient


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


def start_agent(tmp_path: Path, hook: str) -> subprocess.Popen:
    port_file = tmp_path / "port"
    env = {**os.environ, TEST_HOOK_ENV: hook}
    proc = subprocess.Popen([sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0",
                             "--cache-dir", str(tmp_path / "cache"), "--port-file", str(port_file),
                             "--log-level", "WARNING"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"agent did not start: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.1)
    proc.port = int(port_file.read_text())
    return proc


def test_sigterm_cancels_the_running_measurement_and_answers_unavailable(tmp_path):
    agent = start_agent(tmp_path, hook="hang")  # every worker hangs right after loading the model
    try:
        client = WireClient(f"127.0.0.1:{agent.port}", timeout_s=30)
        sha, _ = client.ensure_model(small_model(tmp_path / "m"))
        answer = {}

        def call():
            try:
                answer["response"] = client.measure(sha, options=pb.RuntimeOptions(threads=1),
                                                    timing=quick_timing(timeout_s=120), timeout_s=150)
            except AgentCallError as exc:
                answer["error"] = exc
            answer["at"] = time.monotonic()
        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 30
        while not workers_of(agent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the worker is in its endless loop now
        assert workers_of(agent.pid), "the measurement never started a worker"
        sent = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        caller.join(timeout=30)
        agent.wait(timeout=30)
        answered_s, exited_s = answer["at"] - sent, time.monotonic() - sent
        err = answer.get("error")
        assert err is not None, answer
        assert err.code == "UNAVAILABLE" and "shutting down" in str(err), err
        assert answered_s < 5, f"caller answered {answered_s:.1f} s after SIGTERM"
        assert exited_s < 10, f"agent exited {exited_s:.1f} s after SIGTERM"
        assert agent.returncode == 0
        time.sleep(0.5)
        assert not workers_of(agent.pid), "worker processes outlived the agent"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
