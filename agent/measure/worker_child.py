"""The worker process (``python -m fleetnas.agent.measure.worker_child FD PARENT_PID``): reads one JSON request (a
MeasureJob plus the threads, affinity and energy window the parent chose) on stdin, reports JSON lines on file
descriptor FD, exits. See fleetnas.agent.measure.worker for the protocol and the parent side.

Order: pin affinity -> import the runtime -> "ready" -> load (timed) -> "loaded" -> first inference (timed) ->
warm-up (runs AND seconds) -> "warmup_end" -> R timed blocks (gc off) -> "steady_end" -> optional energy idle + window -> final "result".
Phase messages carry ``time.monotonic_ns()``. Any failure is reported as an "error" message with its outcome.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from typing import Dict, List

from fleetnas.agent.board import sysfs
from fleetnas.agent.measure import timing
from fleetnas.agent.records import MeasureJob
from fleetnas.agent.runtimes import get
from fleetnas.agent.runtimes.base import make_inputs

_PR_SET_PDEATHSIG = 1


class _Channel:
    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "w", encoding="utf-8")

    def send(self, msg: dict) -> None:
        self._file.write(json.dumps(msg) + "\n")
        self._file.flush()

    def phase(self, name: str, **info) -> None:
        self.send({"type": "phase", "name": name, "monotonic_ns": time.monotonic_ns(), "info": info})


def main(argv: List[str]) -> int:
    _die_with_parent(int(argv[1]) if len(argv) > 1 else 0)
    chan = _Channel(int(argv[0]))
    request = json.loads(sys.stdin.read())
    phases: Dict[str, float] = {}
    try:
        return _measure(chan, request, phases)
    except MemoryError as exc:
        chan.send(_error("OOM", f"out of memory in the worker: {exc or 'MemoryError'}", phases))
        return 0
    except Exception as exc:  # the worker's own machinery (affinity, request) failed: say so, do not guess
        chan.send(_error("CRASHED", f"worker error before measuring: {_describe(exc)}", phases))
        return 0


def _error(outcome: str, message: str, phases: Dict[str, float]) -> dict:
    full = None
    if "load_ms" in phases:
        full = {"load_ms": phases["load_ms"], "first_inference_ms": phases.get("first_inference_ms", 0.0),
                "warmup_ms": phases.get("warmup_ms", 0.0), "warmup_runs": int(phases.get("warmup_runs", 0)),
                "steady_ms": 0.0}
    return {"type": "error", "outcome": outcome, "message": message, "phases": full}


def _measure(chan: _Channel, request: dict, phases: Dict[str, float]) -> int:
    affinity = tuple(request["affinity"])
    if affinity and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, affinity)
    job = MeasureJob.from_json(request["job"])
    options, cfg = job.options, job.timing
    threads = int(request["threads"])
    runtime = get(job.runtime)
    # imports the runtime now, so load_ms is session creation only, not the import (a runtime whose info() probes in
    # a child process, to keep torch out of the server, offers info_in_process() for exactly this)
    info = getattr(runtime, "info_in_process", runtime.info)()
    if not info.available:
        chan.send(_error("LOAD_FAILED", info.message, phases))
        return 0
    chan.phase("ready")

    t0 = time.perf_counter_ns()
    try:
        loaded = runtime.load(job.model_path, options, threads)
    except MemoryError:
        raise
    except Exception as exc:  # the runtime's own error types differ; its message is what the user needs
        chan.send(_error(_outcome_of(exc, "LOAD_FAILED"), _describe(exc), phases))
        return 0
    phases["load_ms"] = (time.perf_counter_ns() - t0) / 1e6
    chan.phase("loaded", load_ms=phases["load_ms"])
    _test_hook()

    try:
        feeds = make_inputs(loaded.inputs, cfg.input_seed)
        run = loaded.bind(feeds)
        t0 = time.perf_counter_ns()
        run()
        phases["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6
        t0 = time.perf_counter_ns()
        phases["warmup_runs"] = timing.warm_up(run, cfg.warmup_runs, cfg.warmup_s)
        phases["warmup_ms"] = (time.perf_counter_ns() - t0) / 1e6
        chan.phase("warmup_end", runs=phases["warmup_runs"])
        gc.collect()
        gc.disable()  # a collection inside a block would be charged to whichever inference it landed in
        t0 = time.perf_counter_ns()
        blocks = [timing.timed_block(run, cfg.min_runs_per_block, cfg.min_block_s) for _ in range(cfg.blocks)]
        phases["steady_ms"] = (time.perf_counter_ns() - t0) / 1e6
        gc.enable()
        chan.phase("steady_end", inferences=sum(len(b) for b in blocks))
        if request.get("energy_window_s") and job.energy is not None:
            _energy_phase(chan, run, job.energy.idle_s, request["energy_window_s"])
    except MemoryError:
        raise
    except Exception as exc:
        chan.send(_error(_outcome_of(exc, "RUN_FAILED"), _describe(exc), phases))
        return 0

    config = {"runtime": job.runtime, "runtime_version": loaded.runtime_version,
              "execution_provider": loaded.execution_provider, "provider_options": loaded.provider_options,
              "intra_op_threads": loaded.intra_op_threads, "inter_op_threads": loaded.inter_op_threads,
              "allow_spinning": loaded.allow_spinning, "cpu_affinity": affinity,
              "graph_optimization_level": loaded.graph_optimization_level,
              "input_shapes": tuple(spec.describe() for spec in loaded.inputs)}
    all_times = [t for block in blocks for t in block]
    chan.send({"type": "result",
               "phases": {"load_ms": phases["load_ms"], "first_inference_ms": phases["first_inference_ms"],
                          "warmup_ms": phases["warmup_ms"], "warmup_runs": phases["warmup_runs"],
                          "steady_ms": phases["steady_ms"]},
               "overall": asdict(timing.latency_stats(all_times)),
               "blocks": [asdict(timing.latency_stats(b)) for b in blocks],
               "config": config,
               "peak_rss_bytes": sysfs.proc_status_bytes("self", "VmHWM") or 0})
    return 0


def _energy_phase(chan: _Channel, run, idle_s: float, window_s: float) -> None:
    chan.phase("energy_idle_begin")
    time.sleep(float(idle_s))  # model loaded, runtime threads alive (parked), nothing running
    chan.phase("energy_idle_end")
    window_ns = int(float(window_s) * 1e9)
    count = 0
    chan.phase("energy_window_begin")
    start = time.monotonic_ns()
    while True:
        run()
        count += 1
        now = time.monotonic_ns()
        if now - start >= window_ns:
            break
    chan.phase("energy_window_end", inferences=count, window_s=(now - start) / 1e9)


# How runtimes word an allocation failure they caught themselves (C++ std::bad_alloc, onnxruntime's BFC arena).
_ALLOCATION_FAILURES = ("failed to allocate memory", "bad_alloc", "out of memory")


def _outcome_of(exc: BaseException, default: str) -> str:
    return "OOM" if any(text in str(exc).lower() for text in _ALLOCATION_FAILURES) else default


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"[:4000]


def _test_hook() -> None:
    """Fault injection for the agent's own tests; only the agent's environment can enable it (see worker.py)."""
    hook = os.environ.get("FLEETNAS_WORKER_TEST_HOOK", "")
    if not hook:
        return
    if hook == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif hook == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif hook == "hang":
        while True:
            time.sleep(3600)
    elif hook == "oom":
        raise MemoryError("test hook: simulated allocation failure")
    elif hook == "exit":
        os._exit(3)


def _die_with_parent(parent_pid: int) -> None:
    """If the agent dies mid-measurement, the worker must not keep burning the board (Linux prctl; best effort)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent_pid and os.getppid() != parent_pid:  # the parent already died before prctl took effect
        os._exit(1)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: the result is sent, and runtimes' destructors only add latency
