"""`--devices local`: run a fleetnas-agent subprocess on 127.0.0.1 for the length of a run, then stop it.

The agent binds port 0 and writes the port it got to a file (no port races); we wait for that file, check the agent
answers, and hand back a one-device registry (class ``local``). Stopping sends SIGTERM (the agent drains and exits)
and kills it if it does not exit in time.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from fleetnas.host.errors import FleetnasError
from fleetnas.host.fleet.devices import Device, DeviceRegistry

LOCAL_CLASS = "local"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the agent gets SIGTERM when the host dies, even by SIGKILL (no orphaned local agents)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def local_agent(cache_dir: Optional[Path] = None, *, extra_args: Sequence[str] = (), start_timeout_s: float = 60.0,
                name: str = "local") -> Iterator[DeviceRegistry]:
    with tempfile.TemporaryDirectory(prefix="fleetnas-local-") as tmp:
        port_file = Path(tmp) / "port"
        log_path = Path(tmp) / "agent.log"
        cache_dir = Path(cache_dir) if cache_dir else Path(tmp) / "cache"
        cmd = [sys.executable, "-m", "fleetnas.agent.cli", "serve", "--listen", "127.0.0.1:0", "--port-file",
               str(port_file), "--cache-dir", str(cache_dir), "--log-level", "WARNING", *extra_args]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        try:
            deadline = time.monotonic() + start_timeout_s
            while not port_file.exists() or not port_file.read_text().strip():
                if proc.poll() is not None:
                    raise FleetnasError(f"the local agent exited at start (status {proc.returncode}): "
                                        f"{log_path.read_text(errors='replace').strip()[-500:]}")
                if time.monotonic() > deadline:
                    raise FleetnasError(f"the local agent did not start within {start_timeout_s:.0f} s")
                time.sleep(0.05)
            device = Device(name, f"127.0.0.1:{int(port_file.read_text())}", LOCAL_CLASS)
            with device.client() as client:
                client.wait_ready(timeout_s=start_timeout_s)
            yield DeviceRegistry([device])
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
