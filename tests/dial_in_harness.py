"""Dial-in test pieces: a devices file of dial-in boards, a real hub in this process, and real
`fleetnas-agent connect` processes dialling it.

    devices = write_devices(tmp_path, {"board-a": "token-a"})
    with running_hub(devices, ping_s=0.5) as hub, connect_process(tmp_path / "a", hub.address, "board-a",
                                                                  tmp_path / "board-a.token") as agent:
        hub.hub.wait_for(["board-a"], 60)
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
from typing import Dict, Iterator, Optional, Sequence

START_TIMEOUT_S = 90.0


def write_devices(directory: Path, tokens: Dict[str, str], device_class: str = "dialin-x86",
                  extra: str = "") -> Path:
    """devices.toml with one dial-in device per name, each with its own token file NAME.token."""
    directory.mkdir(parents=True, exist_ok=True)
    text = ""
    for name, token in tokens.items():
        token_file = directory / f"{name}.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        text += (f'[[device]]\nname = "{name}"\naddress = "dial-in"\nclass = "{device_class}"\n'
                 f'token_file = "{token_file}"\n{extra}\n')
    path = directory / "devices.toml"
    path.write_text(text)
    return path


@dataclass
class RunningHub:
    hub: object
    address: str


@contextlib.contextmanager
def running_hub(devices_file: Path, *, listen: str = "127.0.0.1:0", ping_s: float = 0.5,
                **kwargs) -> Iterator[RunningHub]:
    from fleetnas.host.fleet.devices import load_devices
    from fleetnas.host.fleet.dial_in import set_hub
    from fleetnas.host.fleet.hub import Hub
    hub = Hub(list(load_devices(devices_file)), ping_s=ping_s, **kwargs)
    port = hub.start(listen)
    set_hub(hub)
    try:
        yield RunningHub(hub, f"{listen.rpartition(':')[0]}:{port}")
    finally:
        set_hub(None)
        hub.stop()


@dataclass
class ConnectProcess:
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout_s: float = 60.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout_s
        while self.log().count(text) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"agent log never said {text!r} {count} time(s):\n{self.log()[-4000:]}")
            time.sleep(0.1)


@contextlib.contextmanager
def connect_process(workdir: Path, hub_address: str, name: str, token_file: Optional[Path], *,
                    prefix: Sequence[str] = (), extra: Sequence[str] = ()) -> Iterator[ConnectProcess]:
    """A real `fleetnas-agent connect` process (its own session: stopped with its measurement workers)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "agent.log"
    cmd = [*prefix, sys.executable, "-m", "fleetnas.agent.cli", "connect", hub_address, "--name", name,
           "--cache-dir", str(workdir / "cache"), "--reconnect-max-s", "2", "--log-level", "INFO", *extra]
    if token_file is not None:
        cmd += ["--token-file", str(token_file)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield ConnectProcess(proc, log_path)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
