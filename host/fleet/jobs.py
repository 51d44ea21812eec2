"""What the dispatcher moves around: a job (one model for one device class), its result, and a class's queue."""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Deque, List, Optional, Tuple

from fleetnas.host.fleet.measurements import Measurement


@dataclass(frozen=True)
class Job:
    device_class: str
    model_path: Path
    model_sha256: str
    config_key: str
    attempts: int = 0
    tried: Tuple[str, ...] = ()      # device names that failed it (for the error message)
    recover: bool = False            # in flight when a previous host died: ask the class's agents before measuring


@dataclass(frozen=True)
class JobResult:
    job: Job
    measurement: Measurement


def request_id(job: Job, run_uid: str) -> str:
    """The agent's key for idempotent retries and replays: stable per run, candidate and class, so a retry or a resumed
    host gets the run's own earlier measurement, and two runs (``run_uid`` differs) never get each other's."""
    return f"{run_uid}/{job.config_key}@{job.device_class}"


class ClassQueue:
    """The jobs waiting for any device of one class; a retried job goes back to the front."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jobs: Deque[Job] = collections.deque()

    def put(self, job: Job, front: bool = False) -> None:
        with self.cond:
            (self.jobs.appendleft if front else self.jobs.append)(job)
            self.cond.notify()

    def get(self, timeout_s: float) -> Optional[Job]:
        with self.cond:
            if not self.jobs:
                self.cond.wait(timeout_s)
            return self.jobs.popleft() if self.jobs else None

    def drain(self) -> List[Job]:
        with self.cond:
            jobs, self.jobs = list(self.jobs), collections.deque()
            return jobs

    def wake_all(self) -> None:
        with self.cond:
            self.cond.notify_all()
