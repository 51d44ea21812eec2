"""The parent side of one measurement: one MeasureJob = one fresh worker process (fleetnas.agent.measure.worker_child
is the child's side). Called by fleetnas.agent.measure.hygiene; never imports the server or the host.

API::

    result = run_measurement(job, observer=None)

Blocking. Raises only for a bad request (InvalidRequest: format/runtime mismatch, bad affinity) or a missing runtime
(RuntimeUnavailable, with the install hint). Everything that goes wrong with the *model* is a MeasureResult:
LOAD_FAILED / RUN_FAILED (runtime's message), TIMEOUT (worker SIGKILLed past ``job.timing.timeout_s``, counted from
spawn), OOM, CRASHED (``crash_signal`` set, e.g. 11), UNSTABLE (numbers filled, block-median CV > 10 % or a throttle
event between the before/after snapshots: the caller decides whether to cool down and retry).

OOM heuristic (``classify_death``): the worker's own MemoryError, or a runtime error reporting a failed allocation
("Failed to allocate memory", "bad_alloc"); or an unexpected SIGKILL when the cgroup's ``memory.events`` oom_kill
count rose during the run, or the worker's last polled RSS was >= 90 % of the memory it could have had (cgroup
``memory.max``, else MemAvailable at spawn). Any other SIGKILL is CRASHED(9).

Energy seam: when ``job.energy.enabled`` and an observer is given, the window length comes from
``observer.energy_window_s(default_s)`` (it knows the sensor; the default it is offered is max(2 s,
energy.min_window_s)); the child then idles ``energy.idle_s`` with the model loaded after the steady blocks and runs
back-to-back inferences for >= the window. Phase events reach ``observer.on_phase(name, monotonic_ns, info)`` here as
they happen: "loaded", "warmup_end", "steady_end", "energy_idle_begin", "energy_idle_end", "energy_window_begin",
"energy_window_end" (info: ``inferences``, ``window_s``). Timestamps are the worker's CLOCK_MONOTONIC, comparable
with the parent's. The timed loops never call the observer. Energy figures themselves are the observer's to attach.

Process start-up stays off the request path: fleetnas.agent.measure.worker_spawn keeps one pre-started spare worker
(imports done, no model ever loaded) and starts the next one after each measurement; ``extra["worker_prestarted"]``
says which kind ran, ``extra["worker_start_ms"]`` how long until it had imported the runtime.

Cancelling (graceful shutdown): ``cancel_runs_of(thread_id)`` kills the worker that thread is running (or is about to
start) and makes that ``run_measurement`` raise ShuttingDown; ``clear_cancel(thread_id)`` once the thread's
measurement has ended. Keyed by thread, so agents sharing one process never cancel each other's runs.

Test-only fault injection: ``FLEETNAS_WORKER_TEST_HOOK`` in the *agent's environment* (segfault | hang | oom |
sigkill | exit), acted on by the child right after the model loads. Nothing in a request or an upload can set it.
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional, Protocol, Tuple

from fleetnas.agent import runtimes
from fleetnas.agent.board import sysfs
from fleetnas.agent.board.device_state import snapshot, throttle_events
from fleetnas.agent.board.fingerprint import fastest_cluster
from fleetnas.agent.errors import InvalidRequest, ShuttingDown
from fleetnas.agent.measure import worker_spawn
from fleetnas.agent.measure.timing import block_median_cv, classify_stability
from fleetnas.agent.records import (LatencyStats, MeasureJob, MeasureResult, Outcome, PhaseTimes, RuntimeConfigUsed,
                                    RuntimeOptions, Stability)
from fleetnas.agent.store.formats import FORMATS, format_names

log = logging.getLogger("fleetnas.agent")
TEST_HOOK_ENV = "FLEETNAS_WORKER_TEST_HOOK"
RSS_POLL_S = 0.2
OOM_RSS_FRACTION = 0.9


class MeasurementObserver(Protocol):
    def energy_window_s(self, default_s: float) -> float:
        ...

    def on_phase(self, name: str, monotonic_ns: int, info: dict) -> None:
        ...


class _Cancellations:
    """Running workers by the thread that started them, and the threads whose measurement was cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict = {}
        self._cancelled: set = set()

    def register(self, proc: subprocess.Popen) -> bool:
        """False when this thread's measurement is already cancelled (the caller kills ``proc``)."""
        ident = threading.get_ident()
        with self._lock:
            self._procs[ident] = proc
            return ident not in self._cancelled

    def unregister(self) -> bool:
        """Whether this thread's run was cancelled."""
        ident = threading.get_ident()
        with self._lock:
            self._procs.pop(ident, None)
            return ident in self._cancelled

    def cancelled(self) -> bool:
        with self._lock:
            return threading.get_ident() in self._cancelled

    def cancel(self, ident: int) -> None:
        with self._lock:
            self._cancelled.add(ident)
            proc = self._procs.get(ident)
        if proc is not None and proc.poll() is None:
            proc.kill()

    def clear(self, ident: int) -> None:
        with self._lock:
            self._cancelled.discard(ident)


_cancellations = _Cancellations()
CANCELLED_MESSAGE = "the agent is shutting down: this measurement was cancelled; measure it again elsewhere"


def cancel_runs_of(thread_id: int) -> None:
    _cancellations.cancel(thread_id)


def clear_cancel(thread_id: int) -> None:
    _cancellations.clear(thread_id)


def cancellable_sleep(seconds: float) -> None:
    """time.sleep for waits around a measurement (cool-down): ShuttingDown at once when this thread's measurement
    is cancelled."""
    deadline = time.monotonic() + seconds
    while True:
        if _cancellations.cancelled():
            raise ShuttingDown(CANCELLED_MESSAGE)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


# ================================================ parent side ======================================================
def run_measurement(job: MeasureJob, observer: Optional[MeasurementObserver] = None) -> MeasureResult:
    if job.model_format not in FORMATS:
        raise InvalidRequest(f"unknown model format {job.model_format!r}: use one of {format_names()}")
    runtimes.for_format(job.runtime, job.model_format)
    options, timing, energy = job.options, job.timing, job.energy
    affinity = _affinity(options)
    if options.threads < 0:
        raise InvalidRequest(f"threads must be >= 0 (0 = size of the fastest cluster), got {options.threads}")
    threads = options.threads or len(affinity)
    window_s = None
    if energy is not None and energy.enabled and observer is not None:
        window_s = float(observer.energy_window_s(max(2.0, energy.min_window_s)))
        if not window_s > 0:
            raise InvalidRequest(f"energy window must be > 0 s, the power meter asked for {window_s}")
    request = {"job": job.to_json(), "threads": threads, "affinity": list(affinity), "energy_window_s": window_s}

    state_before = snapshot()
    oom_kills_before = _cgroup_oom_kills()
    mem_budget = _memory_budget_bytes()
    if _cancellations.cancelled():
        raise ShuttingDown(CANCELLED_MESSAGE)
    run = _WorkerRun(request, timing.timeout_s, observer)
    run.execute()
    if run.cancelled:
        raise ShuttingDown(CANCELLED_MESSAGE)
    state_after = run.state_after or snapshot()
    base = dict(peak_rss_bytes=run.peak_rss_bytes, state_before=state_before, state_after=state_after,
                run_wall_ms=run.wall_ms, started_unix_ns=run.started_unix_ns,
                extra={"worker_start_ms": f"{run.start_ms:.1f}", "worker_prestarted": str(run.prestarted).lower()})
    if run.observer_error:
        base["extra"]["observer_error"] = run.observer_error
    msg = run.final
    if run.timed_out:
        return MeasureResult(outcome=Outcome.TIMEOUT, message=f"worker exceeded timeout_s={timing.timeout_s} "
                             f"(last phase: {run.last_phase or 'starting'}); killed", **base)
    if msg is not None and msg["type"] == "error":
        phases = PhaseTimes(**msg["phases"]) if msg.get("phases") else None
        return MeasureResult(outcome=Outcome(msg["outcome"]), message=msg["message"], phases=phases, **base)
    if msg is None:
        return _classify_death(run, oom_kills_before, mem_budget, base)
    if run.returncode != 0:  # the result arrived intact; a runtime that crashes in its teardown does not spoil it
        base["extra"]["worker_exit"] = f"status {run.returncode} after reporting its result"

    blocks = tuple(LatencyStats(**b) for b in msg["blocks"])
    cv = block_median_cv(blocks)
    throttled = throttle_events(state_before, state_after)
    stability = classify_stability(cv, throttled=bool(throttled))
    outcome, message = Outcome.OK, ""
    if stability is Stability.UNSTABLE:
        outcome = Outcome.UNSTABLE
        message = "; ".join(throttled) or f"CV of block medians {cv:.1%} > 10 %"
    elif stability is Stability.NOISY:
        message = f"CV of block medians {cv:.1%} (3-10 %): accepted, flagged noisy"
    base["peak_rss_bytes"] = max(run.peak_rss_bytes, msg["peak_rss_bytes"])
    return MeasureResult(outcome=outcome, message=message, phases=PhaseTimes(**msg["phases"]),
                         overall=LatencyStats(**msg["overall"]), blocks=blocks, block_median_cv=cv,
                         stability=stability, config=RuntimeConfigUsed(**_tuples(msg["config"])), **base)


def _affinity(options: RuntimeOptions) -> Tuple[int, ...]:
    if not options.cpu_affinity:
        return fastest_cluster()
    allowed = set(os.sched_getaffinity(0))
    bad = sorted(set(options.cpu_affinity) - allowed)
    if bad:
        raise InvalidRequest(f"options.cpu_affinity names CPUs {bad} this agent may not use; "
                             f"allowed: {sorted(allowed)}")
    return tuple(sorted(set(options.cpu_affinity)))


def _tuples(config: dict) -> dict:
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in config.items()}


class _WorkerRun:
    """Spawns the child, relays its phase events, enforces the deadline, polls its peak RSS."""

    def __init__(self, request: dict, timeout_s: float, observer: Optional[MeasurementObserver]):
        self.request, self.timeout_s, self.observer = request, timeout_s, observer
        self.final: Optional[dict] = None
        self.last_phase = ""
        self.timed_out = self.killed_by_us = False
        self.returncode: Optional[int] = None
        self.peak_rss_bytes = 0
        self.state_after = None
        self.stderr_tail = ""
        self.observer_error = ""
        self.prestarted = False
        self.cancelled = False
        self.start_ms = self.wall_ms = 0.0
        self.started_unix_ns = 0

    def execute(self) -> None:
        self.started_unix_ns = time.time_ns()
        t0 = time.monotonic()
        worker = worker_spawn.acquire()
        proc, read_fd = worker.proc, worker.read_fd
        self.prestarted = worker.prestarted
        if not _cancellations.register(proc):
            proc.kill()
        try:
            proc.stdin.write(json.dumps(self.request).encode())
            proc.stdin.close()
        except BrokenPipeError:  # the child died before reading: its exit status tells why
            pass
        deadline = t0 + self.timeout_s
        try:
            self._pump(proc, read_fd, deadline, t0)
            if not self.timed_out:  # EOF: the child is exiting; give it until the deadline (its exit is quick)
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.timed_out = True
        finally:
            if proc.poll() is None:
                self.killed_by_us = True
                proc.kill()
            self.returncode = proc.wait()
            self.cancelled = _cancellations.unregister()
            self.wall_ms = (time.monotonic() - t0) * 1e3
            worker.stderr_file.seek(0)
            self.stderr_tail = worker.stderr_file.read()[-8000:].decode("utf-8", "replace")
            worker.discard()
            worker_spawn.prestart_next()

    def _pump(self, proc: subprocess.Popen, read_fd: int, deadline: float, t0: float) -> None:
        pending = b""
        next_poll = 0.0
        while True:
            now = time.monotonic()
            if now >= next_poll:
                self.peak_rss_bytes = max(self.peak_rss_bytes, sysfs.proc_status_bytes(proc.pid, "VmHWM") or 0)
                next_poll = now + RSS_POLL_S
            if now >= deadline:
                self.timed_out = self.killed_by_us = True
                proc.kill()
                return
            ready, _, _ = select.select([read_fd], [], [], min(RSS_POLL_S, deadline - now))
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:  # EOF: the child exited (or closed the pipe before dying)
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:  # only the worker writes this pipe; a garbled line is logged, not fatal
                    log.warning("worker sent an unreadable report line: %r", line[:200])
                    continue
                self._handle(msg, t0)

    def _handle(self, msg: dict, t0: float) -> None:
        if msg["type"] != "phase":
            self.final = msg
            return
        name = msg["name"]
        self.last_phase = name
        if name == "ready":
            self.start_ms = (time.monotonic() - t0) * 1e3
            return
        if name == "steady_end":
            self.state_after = snapshot()
        if self.observer is not None:
            try:
                self.observer.on_phase(name, msg["monotonic_ns"], msg.get("info", {}))
            except Exception as exc:  # a failing energy sampler must not cost the latency measurement
                log.warning("measurement observer failed at %s: %s", name, exc)
                self.observer_error = self.observer_error or f"{name}: {type(exc).__name__}: {exc}"


def _classify_death(run: _WorkerRun, oom_kills_before: Optional[int], mem_budget: Optional[int],
                    base: dict) -> MeasureResult:
    outcome, sig, message = classify_death(run.returncode if run.returncode is not None else -1, run.last_phase,
                                           run.stderr_tail, run.peak_rss_bytes, oom_kills_before,
                                           _cgroup_oom_kills(), mem_budget)
    return MeasureResult(outcome=outcome, crash_signal=sig, message=message, **base)


def classify_death(returncode: int, last_phase: str, stderr_tail: str, peak_rss_bytes: int,
                   oom_kills_before: Optional[int], oom_kills_after: Optional[int],
                   mem_budget_bytes: Optional[int]) -> Tuple[Outcome, int, str]:
    """(outcome, signal, message) for a worker that died without reporting: the OOM heuristic lives here."""
    tail = stderr_tail.strip().splitlines()[-3:]
    detail = (": " + " | ".join(tail)) if tail else ""
    where = f" during {last_phase or 'start-up'}"
    if returncode >= 0:
        return Outcome.CRASHED, 0, f"worker exited with status {returncode}{where} without a result{detail}"
    sig = -returncode
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    if sig == signal.SIGKILL:
        if oom_kills_before is not None and oom_kills_after is not None and oom_kills_after > oom_kills_before:
            return Outcome.OOM, 0, (f"worker killed by the kernel OOM killer{where} "
                                    f"(cgroup oom_kill {oom_kills_before} -> {oom_kills_after})")
        if mem_budget_bytes and peak_rss_bytes >= OOM_RSS_FRACTION * mem_budget_bytes:
            return Outcome.OOM, 0, (f"worker SIGKILLed{where} with peak RSS {peak_rss_bytes >> 20} MiB of "
                                    f"{mem_budget_bytes >> 20} MiB available")
    return Outcome.CRASHED, sig, f"worker killed by signal {sig} ({name}){where}{detail}"


def _memory_cgroup() -> Optional[Tuple[Path, str, str, str]]:
    """(dir, oom-events file, limit file, usage file) for our memory cgroup, v2 or v1; containers often mount
    their own cgroup at the root, so the named path falls back to the mount point."""
    for line in (sysfs.read_text("/proc/self/cgroup", "/") or "").splitlines():
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            base, files = Path("/sys/fs/cgroup"), ("memory.events", "memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            base, files = Path("/sys/fs/cgroup/memory"), ("memory.oom_control", "memory.limit_in_bytes",
                                                          "memory.usage_in_bytes")
        else:
            continue
        for directory in (base / rel.lstrip("/"), base):
            if (directory / files[0]).exists():
                return (directory,) + files
    return None


def _cgroup_oom_kills() -> Optional[int]:
    cgroup = _memory_cgroup()
    text = sysfs.read_text(str(cgroup[0] / cgroup[1]), "/") if cgroup else None
    for line in (text or "").splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return None


def _memory_budget_bytes() -> Optional[int]:
    """What the worker could still get: MemAvailable, capped by the cgroup's limit minus its usage."""
    available = sysfs.meminfo("/").get("MemAvailable")
    cgroup = _memory_cgroup()
    if cgroup:
        limit = sysfs.read_int(str(cgroup[0] / cgroup[2]), "/")  # v2 "max" -> None
        usage = sysfs.read_int(str(cgroup[0] / cgroup[3]), "/")
        if limit is not None and usage is not None and limit < (1 << 60):
            headroom = max(limit - usage, 0)
            return min(headroom, available) if available else headroom
    return available

