"""The agent's behaviour in plain Python (no grpc): model store, a FIFO queue of one measurement at a time, device info.

fleetnas.agent.rpc.servicer adapts this to the gRPC contract; tests and `fleetnas-agent selftest` can use it directly.
"""
from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from fleetnas.agent import runtimes
from fleetnas.agent.errors import Busy, InvalidRequest, ModelNotFound, ShuttingDown
from fleetnas.agent.measure import worker
from fleetnas.agent.measure.worker import run_measurement
from fleetnas.agent.records import EnergyConfig, MeasureJob, MeasureResult, Outcome, RuntimeOptions, TimingConfig
from fleetnas.agent.store.model_store import ModelStore, StoredModel

log = logging.getLogger("fleetnas.agent")

# How a queued job is measured: hygiene around a worker (fleetnas.agent.app), a bare worker, or emulation.
MeasureFn = Callable[[MeasureJob], MeasureResult]
DEFAULT_MAX_QUEUE = 8          # waiting measurements; each holds a server thread, so the limit is small
DEFAULT_MAX_MEASURE_S = 600.0  # one worker run's ceiling (--max-measure-s); the default timeout_s is 300 s


class DeadlineExceeded(Busy):
    """The caller's deadline passed while its measurement waited in the queue."""


class _Pending:
    """A measurement keyed by its request_id: retries wait for it, or get its result, instead of measuring again."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Optional[MeasureResult] = None


@dataclass(frozen=True)
class QueueStats:
    queue_length: int       # waiting + running
    measurements_done: int


class _FifoGate:
    """One holder at a time, served in arrival order, with a bounded wait list and per-waiter timeouts."""

    def __init__(self, max_waiting: int) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._abandoned: set = set()
        self.max_waiting = max_waiting

    @property
    def length(self) -> int:
        with self._cond:
            return self._next_ticket - self._serving

    def acquire(self, timeout_s: Optional[float]) -> bool:
        with self._cond:
            if self._next_ticket - self._serving >= self.max_waiting + 1:  # one runs, max_waiting wait
                raise Busy(f"measurement queue is full ({self.max_waiting} waiting): retry later or use another board")
            ticket = self._next_ticket
            self._next_ticket += 1
            end = None if timeout_s is None else time.monotonic() + timeout_s
            while self._serving != ticket:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._abandoned.add(ticket)
                    return False
                self._cond.wait(remaining)
            return True

    def release(self) -> None:
        with self._cond:
            self._serving += 1
            while self._serving in self._abandoned:  # skip waiters that gave up
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cond.notify_all()


class AgentService:
    REMEMBERED_RESULTS = 1024  # completed request_ids kept for idempotent retries

    def __init__(self, store: ModelStore, *, measure_fn: Optional[MeasureFn] = None, max_queue: int = DEFAULT_MAX_QUEUE,
                 emulated: bool = False, max_measure_s: float = DEFAULT_MAX_MEASURE_S) -> None:
        if not (math.isfinite(max_measure_s) and max_measure_s > 0):
            raise ValueError(f"the measurement ceiling must be a finite number of seconds > 0, got {max_measure_s}")
        self.store = store
        self.max_measure_s = max_measure_s  # a worker is killed past this whatever the request's timeout_s
        self._by_request: "collections.OrderedDict[tuple, _Pending]" = collections.OrderedDict()
        self._requests_lock = threading.Lock()
        self.emulated = emulated
        self._measure_fn = measure_fn or run_measurement
        self.max_queue = max_queue  # measurements that may wait behind the running one; more: Busy
        self._gate = _FifoGate(max_queue)
        self._done = 0
        self._done_lock = threading.Lock()
        self._stopping = threading.Event()
        self._measuring_thread: Optional[int] = None  # guarded by _done_lock

    def shutdown(self) -> None:
        """Stop measuring: refuse new and queued measurements and cancel the running one's worker (its caller,
        and every waiter, gets ShuttingDown at once instead of waiting for the run to end)."""
        self._stopping.set()
        with self._done_lock:
            running = self._measuring_thread
        if running is not None:
            worker.cancel_runs_of(running)

    # ------------------------------------------------------------------ store
    def begin_upload(self, sha256: str, size_bytes: int, fmt: str, name: str = ""):
        return self.store.begin_upload(sha256, size_bytes, fmt, name)

    def has_model(self, sha256: str) -> Optional[StoredModel]:
        return self.store.get(sha256)

    def list_models(self):
        return self.store.list()

    def delete_model(self, sha256: str) -> bool:
        return self.store.delete(sha256)

    def queue_stats(self) -> QueueStats:
        with self._done_lock:
            return QueueStats(self._gate.length, self._done)

    # ------------------------------------------------------------------ measure
    def measure(self, sha256: str, runtime: str, options: RuntimeOptions, timing: TimingConfig,
                energy: Optional[EnergyConfig] = None, deadline_s: Optional[float] = None,
                request_id: str = "", replay_only: bool = False) -> MeasureResult:
        """Queue, then run one measurement. ``deadline_s``: seconds the caller will still wait (None: no deadline).

        A non-empty ``request_id`` makes the call idempotent: a retry of the same request (a host that reconnected
        or restarted) waits for the running measurement or gets the remembered result; nothing is measured twice.
        """
        if self._stopping.is_set():
            raise ShuttingDown("the agent is shutting down: measure on another board or after it restarts")
        if runtime not in runtimes.RUNTIMES:
            raise InvalidRequest(f"unknown runtime {runtime!r}: use one of {', '.join(runtimes.names())}")
        self.store.get(sha256)  # validates the sha256 early, before queueing
        if replay_only and not request_id:
            raise InvalidRequest("replay_only needs the request_id of the measurement to replay")
        if not request_id:
            return self._measure(sha256, runtime, options, timing, energy, deadline_s)
        key = (request_id, sha256, runtime, options, timing, energy)
        with self._requests_lock:
            pending = self._by_request.get(key)
            if pending is None and replay_only:
                raise ModelNotFound(f"no measurement of request {request_id!r} on this agent (replay_only)")
            owner = pending is None
            if owner:
                pending = self._by_request[key] = _Pending()
        if not owner:
            if not pending.done.wait(deadline_s):
                raise DeadlineExceeded(f"deadline passed while request {request_id!r} was still being measured")
            if pending.result is not None:
                log.info("request %s answered from its earlier measurement", request_id)
                return replace(pending.result, replayed=True)
            return self.measure(sha256, runtime, options, timing, energy, deadline_s, request_id,
                                replay_only)  # the owner failed
        try:
            pending.result = self._measure(sha256, runtime, options, timing, energy, deadline_s)
            return pending.result
        finally:
            with self._requests_lock:
                if pending.result is None:  # an error: let a retry measure afresh
                    self._by_request.pop(key, None)
                while len(self._by_request) > self.REMEMBERED_RESULTS:
                    self._by_request.popitem(last=False)
            pending.done.set()

    def _measure(self, sha256: str, runtime: str, options: RuntimeOptions, timing: TimingConfig,
                 energy: Optional[EnergyConfig], deadline_s: Optional[float]) -> MeasureResult:
        queued_ns = time.monotonic_ns()
        if not self._gate.acquire(deadline_s):
            raise DeadlineExceeded(f"deadline passed after {deadline_s:.1f} s in the measurement queue")
        ident = threading.get_ident()
        try:
            with self._done_lock:
                self._measuring_thread = ident
            if self._stopping.is_set():  # after registering: shutdown() either sees us or we see it
                raise ShuttingDown("the agent is shutting down: measure on another board or after it restarts")
            wait_ms = (time.monotonic_ns() - queued_ns) / 1e6
            if deadline_s is not None:
                remaining_s = deadline_s - wait_ms / 1e3
                if remaining_s <= 0:
                    raise DeadlineExceeded(f"deadline passed after {wait_ms / 1e3:.1f} s in the measurement queue")
                timing = replace(timing, timeout_s=min(timing.timeout_s, remaining_s))
            timing = replace(timing, timeout_s=min(timing.timeout_s, self.max_measure_s))
            with self.store.use(sha256) as (path, model):
                result = self._measure_fn(MeasureJob(path, model.format, runtime, options, timing, energy))
            with self._done_lock:
                self._done += 1
            return replace(result, queue_wait_ms=wait_ms, message=self._without_paths(result.message))
        finally:
            with self._done_lock:
                self._measuring_thread = None
            worker.clear_cancel(ident)
            self._gate.release()


    def _without_paths(self, message: str) -> str:
        """A runtime's message names the model file; callers learn the sha256, never where the store lives."""
        return message.replace(str(self.store.models_dir) + "/", "").replace(str(self.store.root), "<store>")


def describe_result(result: MeasureResult) -> str:
    """One short human line for logs and the CLI."""
    if result.outcome is not Outcome.OK or result.overall is None:
        return f"{result.outcome.value}: {result.message}"
    o = result.overall
    return (f"OK median {o.median_ms:.3f} ms (p90 {o.p90_ms:.3f}, n={o.n}, block CV "
            f"{100 * result.block_median_cv:.1f}%{', ' + result.stability.value if result.stability else ''})")

