"""Measure many models on a fleet: one queue per device class, one worker thread per device.

- A job names a device class; any device of that class may take it (they are interchangeable), so a class's jobs run
  in parallel across its agents. Each agent measures one model at a time anyway (its FIFO), so one job per agent.
- Each model is uploaded once per agent: HasModel first, then UploadModel; re-uploaded if the agent evicted it.
- A failed call is retried, re-dispatched or failed as fleetnas.host.fleet.health says (suspect devices, backoff,
  give-up); a candidate in flight when a previous host died is first asked back from the agents (recovery.py).
- The measurement cache (keyed by device fingerprint, model sha256 and runtime configuration) is consulted before
  measuring; every result is written to the run journal as it arrives, then handed to the caller via ``results()``.
- Request ids carry the run's identity (``run_uid``): agents remember results by request id, and only the same run (a
  retry, or a resumed host) may be answered from that memory. Such an answer is labelled ``replayed``; an answer to
  any other request id is refused, so a run without the measurement cache gets nothing measured for another run.
Workers share nothing but the class queues, the results queue and the (thread-safe) stores.
"""
from __future__ import annotations

import queue
import secrets
import threading
import time
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

from fleetnas.host.errors import AgentCallError, FleetnasError
from fleetnas.host.fleet.client import AgentClient
from fleetnas.host.fleet.contract import QUICK_TIMING, RuntimeConfig, TimingConfig, error_measurement
from fleetnas.host.fleet.devices import Device, DeviceRegistry
from fleetnas.host.fleet.formats import runtime_formats
from fleetnas.host.fleet.health import DeviceStatus, Retry, RetryPolicy, retry_for, unreachable_for
from fleetnas.host.fleet.jobs import ClassQueue, Job, JobResult, request_id
from fleetnas.host.fleet.measurements import Measurement, MeasurementStore
from fleetnas.host.fleet.recovery import replay

__all__ = ["Dispatcher", "Job", "JobResult", "QUICK_TIMING", "RuntimeConfig", "TimingConfig", "request_id"]


class Dispatcher:
    def __init__(self, registry: DeviceRegistry, runtime: RuntimeConfig, *, journal: Optional[MeasurementStore] = None,
                 cache: Optional[MeasurementStore] = None, max_attempts: int = 4, give_up_s: float = 300.0,
                 backoff_s: Tuple[float, float] = (0.25, 10.0), rpc_timeout_s: float = 30.0,
                 run_uid: Optional[str] = None) -> None:
        """``run_uid``: the run's identity in request ids (kept across a resume); a fresh one when not given."""
        self.registry = registry
        self.run_uid = run_uid or secrets.token_hex(8)
        self.runtime = runtime
        self.journal = journal
        self.cache = cache
        self.policy = RetryPolicy(max_attempts=max_attempts, give_up_s=give_up_s, backoff_s=backoff_s)
        self.rpc_timeout_s = rpc_timeout_s
        self.queues: Dict[str, ClassQueue] = {c: ClassQueue() for c in registry.classes}
        self.status: Dict[str, DeviceStatus] = {d.name: DeviceStatus(d) for d in registry}
        self._results: "queue.Queue[JobResult]" = queue.Queue()
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._formats: Optional[Tuple[str, ...]] = None
        self._formats_lock = threading.Lock()

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
            q.wake_all()
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

    def model_formats(self) -> Tuple[str, ...]:
        """The model formats the devices load with the run's runtime, as they report it. The first call waits until
        each class has a device that answered (or none still connecting), and some device answered at all.
        UsageError naming a device that does not offer the runtime."""
        with self._formats_lock:
            if self._formats is None:
                deadline = time.monotonic() + self.policy.give_up_s
                while not self._stop.is_set() and time.monotonic() < deadline and not self._heard_enough():
                    time.sleep(0.02)
                infos = {name: s.info for name, s in self.status.items() if s.info is not None}
                if not infos:
                    errors = "; ".join(f"{n}: {s.last_error}" for n, s in self.status.items())
                    raise FleetnasError(f"no device answered within {self.policy.give_up_s:.0f} s ({errors})")
                self._formats = runtime_formats(infos, self.runtime.runtime)
            return self._formats

    def _heard_enough(self) -> bool:
        if all(s.info is None for s in self.status.values()):
            return False
        return all(any(p.info is not None for p in peers) or all(p.state != "connecting" for p in peers)
                   for peers in map(self._peers, self.registry.classes))

    # ------------------------------------------------------------------ workers
    def _client(self, device: Device) -> AgentClient:
        return device.client(timeout_s=self.rpc_timeout_s)

    def _finish(self, job: Job, m: Measurement) -> None:
        if self.journal is not None:
            self.journal.add(m)
        if self.cache is not None and m.source == "measured" and m.usable:
            self.cache.add(m)
        with self._pending_lock:
            self._pending -= 1
        self._results.put(JobResult(job, m))

    def _error_result(self, status: DeviceStatus, job: Job, message: str) -> Measurement:
        return error_measurement(device_fingerprint=status.fingerprint, model_sha256=job.model_sha256,
                                 runtime_key=self.runtime.key, device_class=job.device_class,
                                 device_name=status.device.name, config_key=job.config_key, message=message,
                                 tried=job.tried)

    def _peers(self, device_class: str) -> List[DeviceStatus]:
        return [self.status[d.name] for d in self.registry.by_class[device_class]]

    def _connect(self, status: DeviceStatus, client: AgentClient) -> bool:
        try:
            info = client.device_info(timeout_s=self.rpc_timeout_s)
        except AgentCallError as exc:
            status.last_error = str(exc)
            return False
        status.connected(info)
        return True

    def _worker(self, device: Device) -> None:
        status = self.status[device.name]
        client = self._client(device)
        uploaded: set = set()
        delay = self.policy.backoff_s[0]
        try:
            while not self._stop.is_set():
                if not status.fingerprint or status.state == "suspect":
                    if self._connect(status, client):
                        delay = self.policy.backoff_s[0]
                        uploaded.clear()   # the agent may have restarted with an empty store
                    else:
                        self._unreachable(status)
                        self._stop.wait(delay)
                        delay = self.policy.next_delay(delay)
                        continue
                job = self.queues[device.device_class].get(timeout_s=0.2)
                if job is None:
                    continue
                self._run_job(status, client, job, uploaded)
        finally:
            status.state = "stopped"
            client.close()

    def _unreachable(self, status: DeviceStatus) -> None:
        device_class = status.device.device_class
        status.suspect(status.last_error, self._peers(device_class))
        if unreachable_for(self._peers(device_class)) > self.policy.give_up_s:
            for job in self.queues[device_class].drain():
                self._finish(job, self._error_result(
                    status, job, f"no device of class {device_class} reachable for {self.policy.give_up_s:.0f} s "
                    f"({status.last_error})"))

    def _run_job(self, status: DeviceStatus, client: AgentClient, job: Job, uploaded: set) -> None:
        if self.cache is not None:
            hit = self.cache.lookup([status.fingerprint], job.model_sha256, self.runtime.key)
            if hit is not None:
                status.cache_hits += 1
                self._finish(job, replace(hit, device_class=job.device_class, config_key=job.config_key,
                                          source="cache", recorded_unix_ns=time.time_ns()))
                return
        if job.recover and self._recover(status, client, job):
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
            sent = request_id(job, self.run_uid)
            result = client.measure(job.model_sha256, self.runtime, request_id=sent)
            if result.request_id != sent:
                raise AgentCallError(f"{status.device.name} answered request {result.request_id!r} instead of "
                                     f"{sent!r}; not taken", address=status.device.address)
        except AgentCallError as exc:
            self._retry(status, job, exc, uploaded)
            return
        finally:
            status.busy_s += time.monotonic() - started
        status.state = "idle"
        status.measured += 1
        self._finish(job, result.to_measurement(
            device_fingerprint=status.fingerprint, model_sha256=job.model_sha256, runtime_key=self.runtime.key,
            device_class=job.device_class, device_name=status.device.name, config_key=job.config_key))

    def _retry(self, status: DeviceStatus, job: Job, exc: AgentCallError, uploaded: set) -> None:
        retry = replace(job, attempts=job.attempts + 1, tried=job.tried + (status.device.name,))
        how = retry_for(exc)
        if how is Retry.ELSEWHERE:
            status.suspect(str(exc), self._peers(job.device_class))
        elif how is Retry.UPLOAD_AGAIN:
            uploaded.discard(job.model_sha256)
        elif how is Retry.LATER:
            self._stop.wait(self.policy.backoff_s[0])
        else:
            status.failures += 1
            status.state = "idle"
            self._finish(job, self._error_result(status, job, str(exc)))
            return
        if retry.attempts >= self.policy.max_attempts:
            status.failures += 1
            self._finish(job, self._error_result(
                status, job, f"gave up after {retry.attempts} attempts on {', '.join(retry.tried)}: {exc}"))
        else:
            self.queues[job.device_class].put(retry, front=True)
        if status.state != "suspect":
            status.state = "idle"

    def _recover(self, status: DeviceStatus, client: AgentClient, job: Job) -> bool:
        found = replay(job, status, client, self.registry, self.status, self.runtime, self._client, self.run_uid)
        if found is None:
            return False
        self._finish(job, found.result.to_measurement(
            device_fingerprint=found.fingerprint, model_sha256=job.model_sha256, runtime_key=self.runtime.key,
            device_class=job.device_class, device_name=found.status.device.name, config_key=job.config_key))
        return True
