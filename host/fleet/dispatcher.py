"""Measure many models on a fleet: one queue per device class, one worker thread per device.

- A job names a device class; any device of that class may take it (they are interchangeable), so a class's jobs run
  in parallel across its agents. Each agent measures one model at a time anyway (its FIFO), so one job per agent.
- Each model is uploaded once per agent: HasModel first, then UploadModel; re-uploaded if the agent evicted it.
- UNAVAILABLE / DEADLINE_EXCEEDED / CANCELLED (a dead or unreachable agent) marks the device *suspect*: the job goes
  back to the front of its class queue for another device, and the suspect device reconnects with exponential backoff.
- A job that fails ``max_attempts`` times, or whose class has had no reachable device for ``give_up_s``, comes back as
  an ERROR result (data, not an exception), like a model that fails on the board (LOAD_FAILED, TIMEOUT, ...).
- The measurement cache (keyed by device fingerprint, model sha256 and runtime configuration) is consulted before
  measuring; every result is written to the run journal as it arrives, then handed to the caller via ``results()``.
Workers share nothing but the class queues, the results queue and the (thread-safe) stores.
"""
from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Deque, Dict, List, Optional, Tuple

from fleetnas.host.errors import AgentCallError
from fleetnas.host.fleet.devices import Device, DeviceRegistry
from fleetnas.host.fleet.measurements import USABLE_OUTCOMES, Measurement, MeasurementStore

log = logging.getLogger("fleetnas.host.fleet")
SUSPECT_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")
# Short but methodical: every phase of the agent's protocol runs (warm-up, 3 blocks, stability gate).
QUICK_TIMING = dict(warmup_runs=5, warmup_s=0.1, blocks=3, min_runs_per_block=10, min_block_s=0.1, timeout_s=120.0)


@dataclass(frozen=True)
class RuntimeConfig:
    """How every candidate of a run is measured; part of the measurement cache key."""
    runtime: str = "onnxruntime"
    threads: int = 0
    execution_provider: str = ""
    energy: bool = False
    timing: Tuple[Tuple[str, float], ...] = tuple(sorted(QUICK_TIMING.items()))

    @property
    def key(self) -> str:
        return json.dumps({"runtime": self.runtime, "threads": self.threads, "ep": self.execution_provider,
                           "energy": self.energy, "timing": dict(self.timing)}, sort_keys=True)

    def timing_pb(self):
        from fleetnas.agent.v1 import agent_pb2 as pb
        return pb.TimingConfig(**dict(self.timing))

    def options_pb(self):
        from fleetnas.agent.v1 import agent_pb2 as pb
        return pb.RuntimeOptions(threads=self.threads, execution_provider=self.execution_provider)


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


@dataclass
class DeviceStatus:
    device: Device
    state: str = "connecting"        # connecting | idle | uploading | measuring | suspect | stopped
    fingerprint: str = ""
    info: object = None              # last DeviceInfo
    measured: int = 0
    cache_hits: int = 0
    uploads: int = 0
    failures: int = 0
    last_error: str = ""
    suspect_since: float = 0.0
    busy_s: float = 0.0


class _ClassQueue:
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


def request_id(job: Job) -> str:
    """Stable per candidate and class: the agent's key for idempotent retries and replays."""
    return f"{job.config_key}@{job.device_class}"


def device_fingerprint(info) -> str:
    """The cache identity of a board: emulating agents never share entries with real ones."""
    return info.fingerprint_sha256 + ("/emulated" if info.emulated else "")


class Dispatcher:
    def __init__(self, registry: DeviceRegistry, runtime: RuntimeConfig, *, journal: Optional[MeasurementStore] = None,
                 cache: Optional[MeasurementStore] = None, max_attempts: int = 4, give_up_s: float = 300.0,
                 backoff_s: Tuple[float, float] = (0.25, 10.0), rpc_timeout_s: float = 30.0) -> None:
        self.registry = registry
        self.runtime = runtime
        self.journal = journal
        self.cache = cache
        self.max_attempts = max_attempts
        self.give_up_s = give_up_s
        self.backoff_s = backoff_s
        self.rpc_timeout_s = rpc_timeout_s
        self.queues: Dict[str, _ClassQueue] = {c: _ClassQueue() for c in registry.classes}
        self.status: Dict[str, DeviceStatus] = {d.name: DeviceStatus(d) for d in registry}
        self._results: "queue.Queue[JobResult]" = queue.Queue()
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._pending = 0
        self._pending_lock = threading.Lock()

    # ------------------------------------------------------------------ public
    def start(self) -> "Dispatcher":
        for device in self.registry:
            t = threading.Thread(target=self._worker, args=(device,), name=f"fleet-{device.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for q in self.queues.values():
            with q.cond:
                q.cond.notify_all()
        deadline = time.monotonic() + 10.0   # one shared wait: workers stuck in a Measure call are daemons
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "Dispatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def submit(self, job: Job) -> None:
        if job.device_class not in self.queues:
            raise ValueError(f"no device of class {job.device_class!r}; classes: {', '.join(self.queues)}")
        with self._pending_lock:
            self._pending += 1
        self.queues[job.device_class].put(job)

    @property
    def pending(self) -> int:
        with self._pending_lock:
            return self._pending

    def results(self, timeout_s: float = 0.5) -> List[JobResult]:
        """Results that arrived (waits up to ``timeout_s`` for the first one)."""
        out: List[JobResult] = []
        try:
            out.append(self._results.get(timeout=timeout_s))
            while True:
                out.append(self._results.get_nowait())
        except queue.Empty:
            pass
        return out

    # ------------------------------------------------------------------ workers
    def _finish(self, status: DeviceStatus, job: Job, m: Measurement) -> None:
        if self.journal is not None:
            self.journal.add(m)
        if self.cache is not None and m.source == "measured" and m.usable:
            self.cache.add(m)
        with self._pending_lock:
            self._pending -= 1
        self._results.put(JobResult(job, m))

    def _error_result(self, status: DeviceStatus, job: Job, message: str) -> Measurement:
        return Measurement(status.fingerprint, job.model_sha256, self.runtime.key, job.device_class, status.device.name,
                           "", job.config_key, "ERROR", None, None, False, "measured", time.time_ns(),
                           {"message": message, "tried": list(job.tried)})

    def _connect(self, status: DeviceStatus, client) -> bool:
        try:
            info = client.device_info(timeout_s=self.rpc_timeout_s)
        except AgentCallError as exc:
            status.last_error = str(exc)
            return False
        status.info, status.fingerprint = info, device_fingerprint(info)
        return True

    def _suspect(self, status: DeviceStatus, reason: str) -> None:
        if status.state != "suspect":
            log.warning("device %s suspect: %s", status.device.name, reason)
            status.suspect_since = time.monotonic()
        status.state, status.last_error = "suspect", reason

    def _class_unreachable_for(self, device_class: str) -> float:
        peers = [self.status[d.name] for d in self.registry.by_class[device_class]]
        if any(p.state != "suspect" for p in peers):
            return 0.0
        return time.monotonic() - max(p.suspect_since for p in peers)

    def _worker(self, device: Device) -> None:
        status = self.status[device.name]
        client = device.client(timeout_s=self.rpc_timeout_s)
        uploaded: set = set()
        delay = self.backoff_s[0]
        try:
            while not self._stop.is_set():
                if not status.fingerprint or status.state == "suspect":
                    if self._connect(status, client):
                        status.state, delay = "idle", self.backoff_s[0]
                        uploaded.clear()   # the agent may have restarted with an empty store
                    else:
                        self._suspect(status, status.last_error)
                        if self._class_unreachable_for(device.device_class) > self.give_up_s:
                            for job in self.queues[device.device_class].drain():
                                self._finish(status, job, self._error_result(
                                    status, job, f"no device of class {device.device_class} reachable for "
                                    f"{self.give_up_s:.0f} s ({status.last_error})"))
                        self._stop.wait(delay)
                        delay = min(delay * 2, self.backoff_s[1])
                        continue
                job = self.queues[device.device_class].get(timeout_s=0.2)
                if job is None:
                    continue
                self._run_job(status, client, job, uploaded)
        finally:
            status.state = "stopped"
            client.close()

    def _run_job(self, status: DeviceStatus, client, job: Job, uploaded: set) -> None:
        if self.cache is not None:
            hit = self.cache.lookup([status.fingerprint], job.model_sha256, self.runtime.key)
            if hit is not None:
                status.cache_hits += 1
                self._finish(status, job, replace(hit, device_class=job.device_class, config_key=job.config_key,
                                                  source="cache", recorded_unix_ns=time.time_ns()))
                return
        if job.recover and self._replay(status, client, job):
            return
        started = time.monotonic()
        try:
            if job.model_sha256 not in uploaded:
                status.state = "uploading"
                if not client.has_model(job.model_sha256):
                    client.upload(job.model_path, sha256=job.model_sha256)
                    status.uploads += 1
                uploaded.add(job.model_sha256)
            status.state = "measuring"
            r = client.measure(job.model_sha256, runtime=self.runtime.runtime, options=self.runtime.options_pb(),
                               timing=self.runtime.timing_pb(), energy=self.runtime.energy,
                               request_id=request_id(job))
        except AgentCallError as exc:
            retry = replace(job, attempts=job.attempts + 1, tried=job.tried + (status.device.name,))
            if exc.code in SUSPECT_CODES:
                self._suspect(status, str(exc))
            elif exc.code == "NOT_FOUND":         # evicted between HasModel and Measure: upload again
                uploaded.discard(job.model_sha256)
            elif exc.code == "RESOURCE_EXHAUSTED":
                self._stop.wait(self.backoff_s[0])
            else:
                status.failures += 1
                status.state = "idle"
                self._finish(status, job, self._error_result(status, job, str(exc)))
                return
            if retry.attempts >= self.max_attempts:
                status.failures += 1
                self._finish(status, job, self._error_result(
                    status, job, f"gave up after {retry.attempts} attempts on {', '.join(retry.tried)}: {exc}"))
            else:
                self.queues[job.device_class].put(retry, front=True)
            if status.state != "suspect":
                status.state = "idle"
            return
        finally:
            status.busy_s += time.monotonic() - started
        status.state = "idle"
        status.measured += 1
        self._finish(status, job, self._measurement(status, job, r))

    def _measurement(self, status: DeviceStatus, job: Job, r) -> Measurement:
        from fleetnas.host.fleet.client import message_to_dict, outcome_name
        outcome = outcome_name(r)
        data = message_to_dict(r)
        data["device_name"] = status.device.name
        latency = r.overall.median_ms if outcome in USABLE_OUTCOMES and r.HasField("overall") else None
        energy = r.energy.energy_mj if r.HasField("energy") else None
        return Measurement(status.fingerprint, job.model_sha256, self.runtime.key, job.device_class,
                           status.device.name, r.device_id, job.config_key, outcome, latency, energy, r.emulated,
                           "measured", time.time_ns(), data)

    def _replay(self, status: DeviceStatus, own_client, job: Job) -> bool:
        """A candidate in flight when a previous host died may have been measured (or still be measuring) on any
        agent of its class: take that measurement (agents remember results by request_id) instead of measuring
        it again. False when no agent has it."""
        for peer in self.registry.by_class[job.device_class]:
            peer_status = self.status[peer.name]
            if peer_status.state in ("suspect", "stopped") and peer_status is not status:
                continue
            client = own_client if peer_status is status else peer.client(timeout_s=self.rpc_timeout_s)
            try:
                fingerprint = peer_status.fingerprint or device_fingerprint(client.device_info())
                r = client.measure(job.model_sha256, runtime=self.runtime.runtime, options=self.runtime.options_pb(),
                                   timing=self.runtime.timing_pb(), energy=self.runtime.energy,
                                   request_id=request_id(job), replay_only=True)
            except AgentCallError:   # NOT_FOUND (never had it), or unreachable: ask the next one
                continue
            finally:
                if client is not own_client:
                    client.close()
            log.info("%s: in-flight measurement of %s recovered from %s", job.device_class, job.config_key,
                     peer.name)
            m = replace(self._measurement(peer_status, job, r), device_fingerprint=fingerprint)
            self._finish(peer_status, job, m)
            return True
        return False

