"""Starting worker processes, with one pre-started spare so Python and numpy start-up stay off the request path.

A spare is a fresh ``python -m fleetnas.agent.measure.worker_child`` that has done its imports and waits for its one
request on stdin; it has never loaded a model, so "a fresh process per measurement" still holds. After a measurement the next
spare is started (never during one: its import burst would compete with the timed loop). A spare is discarded and
a new worker spawned when it died, or when the environment changed since it started (tests set fault-injection
hooks that way). ``FLEETNAS_WORKER_PRESTART=0`` turns spares off (boards short of RAM: an idle spare is ~30 MB).
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import IO, Optional

PRESTART_ENV = "FLEETNAS_WORKER_PRESTART"
CHILD_MODULE = "fleetnas.agent.measure.worker_child"


@dataclass
class SpawnedWorker:
    proc: subprocess.Popen
    read_fd: int              # the worker's report pipe (JSON lines)
    stderr_file: IO[bytes]
    env_key: int
    prestarted: bool = field(default=False)

    def discard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for closer in (lambda: os.close(self.read_fd), self.stderr_file.close, self.proc.stdin.close):
            try:
                closer()
            except OSError:
                pass


def _env_key() -> int:
    return hash(frozenset(os.environ.items()))


def spawn() -> SpawnedWorker:
    read_fd, write_fd = os.pipe()
    stderr_file = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen([sys.executable, "-m", CHILD_MODULE, str(write_fd), str(os.getpid())],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr_file,
                                pass_fds=(write_fd,), close_fds=True)
    except BaseException:
        os.close(read_fd)
        stderr_file.close()
        raise
    finally:
        os.close(write_fd)
    return SpawnedWorker(proc, read_fd, stderr_file, _env_key())


class _Spare:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worker: Optional[SpawnedWorker] = None

    def take(self) -> Optional[SpawnedWorker]:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return None
        if worker.proc.poll() is None and worker.env_key == _env_key():
            worker.prestarted = True
            return worker
        worker.discard()
        return None

    def refill(self) -> None:
        if os.environ.get(PRESTART_ENV, "1") == "0":
            return
        with self._lock:
            if self._worker is None:
                self._worker = spawn()

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.discard()


_spare = _Spare()
atexit.register(_spare.close)


def acquire() -> SpawnedWorker:
    """The pre-started spare when it is usable, else a worker started now."""
    return _spare.take() or spawn()


def prestart_next() -> None:
    """Start the spare for the next measurement (call when a measurement has finished)."""
    try:
        _spare.refill()
    except OSError:  # out of processes or memory: the next measurement spawns its own worker
        pass


def close_spare() -> None:
    _spare.close()
