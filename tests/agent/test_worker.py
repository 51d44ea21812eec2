"""fleetnas.agent.measure.worker: real worker processes; failures come back as typed results, never as exceptions.

Faults are injected with FLEETNAS_WORKER_TEST_HOOK in this (the agent's) environment, which the worker inherits.
"""
import time

import pytest
from models import (make_onnx_all_dtypes_model, make_onnx_huge_alloc_model, make_onnx_load_failure_model,
                    make_onnx_model, make_onnx_run_failure_model, make_tflite_model)
from sysfs_tree import make_board_tree, write

from fleetnas.agent.board import sysfs
from fleetnas.agent.errors import InvalidRequest
from fleetnas.agent.records import MeasureJob, EnergyConfig, Outcome, RuntimeOptions, Stability, TimingConfig
from fleetnas.agent.measure.worker import TEST_HOOK_ENV, classify_death, run_measurement

QUICK = TimingConfig(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=5, min_block_s=0.05, timeout_s=120)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return make_onnx_model(tmp_path_factory.mktemp("m") / "small.onnx", cost="small")


def measure(path, fmt="onnx", runtime="onnxruntime", options=RuntimeOptions(threads=1), timing=QUICK, energy=None,
            observer=None):
    return run_measurement(MeasureJob(path, fmt, runtime, options, timing, energy), observer=observer)


class RecordingObserver:
    def __init__(self, window_s=0.3):
        self.window_s, self.asked, self.events = window_s, [], []

    def energy_window_s(self, default_s):
        self.asked.append(default_s)
        return self.window_s

    def on_phase(self, name, monotonic_ns, info):
        self.events.append((name, monotonic_ns, dict(info), time.monotonic_ns()))


def test_ok_result_is_complete(onnx_model):
    before_ns = time.time_ns()
    r = measure(onnx_model)
    assert r.outcome in (Outcome.OK, Outcome.UNSTABLE), r.message
    assert r.started_unix_ns >= before_ns and r.run_wall_ms > r.phases.steady_ms > 0
    assert r.phases.first_inference_ms > 0 and r.phases.warmup_ms >= 50
    assert r.overall.n == sum(b.n for b in r.blocks) and len(r.blocks) == 3
    assert r.block_median_cv >= 0 and isinstance(r.stability, Stability)
    assert 10 * 2**20 < r.peak_rss_bytes < 2 * 2**30
    assert r.state_before is not None and r.state_after is not None
    c = r.config
    assert (c.runtime, c.execution_provider, c.intra_op_threads, c.inter_op_threads) == \
        ("onnxruntime", "CPUExecutionProvider", 1, 1)
    assert c.cpu_affinity and not c.allow_spinning and c.runtime_version.count(".") >= 1
    assert float(r.extra["worker_start_ms"]) > 0


def test_default_threads_is_the_fastest_cluster_size(onnx_model):
    import os
    r = measure(onnx_model, options=RuntimeOptions())
    allowed = sorted(os.sched_getaffinity(0))
    assert r.config.cpu_affinity == tuple(allowed) and r.config.intra_op_threads == len(allowed)


def test_explicit_affinity_and_bad_affinity(onnx_model):
    r = measure(onnx_model, options=RuntimeOptions(threads=1, cpu_affinity=(0,)))
    assert r.config.cpu_affinity == (0,)
    with pytest.raises(InvalidRequest, match="cpu_affinity names CPUs \\[4096\\]"):
        measure(onnx_model, options=RuntimeOptions(cpu_affinity=(4096,)))


def test_prestarted_spare_is_used_and_dropped_when_the_environment_changes(onnx_model, monkeypatch):
    from fleetnas.agent.measure import worker_spawn

    monkeypatch.delenv(worker_spawn.PRESTART_ENV, raising=False)
    measure(onnx_model)                        # leaves a spare behind
    r = measure(onnx_model)
    assert r.extra["worker_prestarted"] == "true" and r.outcome in (Outcome.OK, Outcome.UNSTABLE)
    monkeypatch.setenv("FLEETNAS_TEST_MARKER", "changed")
    assert measure(onnx_model).extra["worker_prestarted"] == "false"  # spare started under another env: dropped
    monkeypatch.setenv(worker_spawn.PRESTART_ENV, "0")
    worker_spawn.close_spare()
    measure(onnx_model)
    assert measure(onnx_model).extra["worker_prestarted"] == "false"


def test_request_errors_raise_before_spawning(onnx_model):
    with pytest.raises(InvalidRequest, match="runs onnx models, not tflite"):
        measure(onnx_model, fmt="tflite")
    with pytest.raises(InvalidRequest, match="unknown model format"):
        measure(onnx_model, fmt="pt")
    with pytest.raises(InvalidRequest, match="threads must be >= 0"):
        measure(onnx_model, options=RuntimeOptions(threads=-1))


def test_load_failure_carries_the_runtime_message(tmp_path):
    r = measure(make_onnx_load_failure_model(tmp_path / "bad.onnx"))
    assert r.outcome is Outcome.LOAD_FAILED and "NoSuchOperator" in r.message
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + b"\xff" * 64)
    r = measure(garbage)
    assert r.outcome is Outcome.LOAD_FAILED and r.message


def test_run_failure(tmp_path):
    r = measure(make_onnx_run_failure_model(tmp_path / "reshape.onnx"))
    assert r.outcome is Outcome.RUN_FAILED and "Reshape" in r.message
    assert r.phases is not None and r.phases.load_ms > 0  # load succeeded and was timed


def test_runtime_allocation_failure_is_oom(tmp_path):
    r = measure(make_onnx_huge_alloc_model(tmp_path / "huge.onnx"))
    assert r.outcome is Outcome.OOM and "allocate" in r.message, r.message


def test_all_input_dtypes_measure(tmp_path):
    r = measure(make_onnx_all_dtypes_model(tmp_path / "d.onnx"))
    assert r.outcome in (Outcome.OK, Outcome.UNSTABLE), r.message
    assert "text:str[1,2]" in r.config.input_shapes and "f32:float32[1,4]" in r.config.input_shapes


def test_segfault_is_crashed_with_the_signal(onnx_model, monkeypatch):
    monkeypatch.setenv(TEST_HOOK_ENV, "segfault")
    r = measure(onnx_model)
    assert r.outcome is Outcome.CRASHED and r.crash_signal == 11
    assert "SIGSEGV" in r.message and "loaded" in r.message


def test_hang_is_killed_at_the_timeout(onnx_model, monkeypatch):
    monkeypatch.setenv(TEST_HOOK_ENV, "hang")
    t0 = time.monotonic()
    r = measure(onnx_model, timing=TimingConfig(timeout_s=3.0))  # counted from spawn: start-up may eat it all
    assert r.outcome is Outcome.TIMEOUT and "timeout_s=3.0" in r.message, r.message
    assert 3.0 <= time.monotonic() - t0 < 13.0


@pytest.mark.parametrize("hook, outcome, signal_no, text", [
    ("oom", Outcome.OOM, 0, "out of memory"),
    ("sigkill", Outcome.CRASHED, 9, "SIGKILL"),     # no oom_kill event, RSS far from the limit: not OOM
    ("exit", Outcome.CRASHED, 0, "exited with status 3"),
])
def test_other_deaths(onnx_model, monkeypatch, hook, outcome, signal_no, text):
    monkeypatch.setenv(TEST_HOOK_ENV, hook)
    r = measure(onnx_model)
    assert (r.outcome, r.crash_signal) == (outcome, signal_no) and text in r.message, r.message


@pytest.mark.parametrize("rc, kills, rss, budget, expected", [
    (-9, (3, 4), 10, 1000, (Outcome.OOM, 0)),            # the cgroup's OOM killer fired during the run
    (-9, (3, 3), 950, 1000, (Outcome.OOM, 0)),           # SIGKILL with RSS at the limit
    (-9, (None, None), 500, 1000, (Outcome.CRASHED, 9)),  # SIGKILL, no evidence of memory pressure
    (-11, (3, 4), 950, 1000, (Outcome.CRASHED, 11)),     # a segfault is a segfault
    (2, (None, None), 0, None, (Outcome.CRASHED, 0)),
])
def test_oom_heuristic(rc, kills, rss, budget, expected):
    outcome, sig, message = classify_death(rc, "warmup_end", "line1\nFatal error\n", rss, kills[0], kills[1], budget)
    assert (outcome, sig) == expected and "during warmup_end" in message


def test_phases_reach_the_observer_in_order_and_energy_only_when_asked(onnx_model):
    obs = RecordingObserver(window_s=0.3)
    r = measure(onnx_model, energy=EnergyConfig(enabled=True, idle_s=0.2), observer=obs)
    assert r.outcome in (Outcome.OK, Outcome.UNSTABLE), r.message
    names = [e[0] for e in obs.events]
    assert names == ["loaded", "warmup_end", "steady_end", "energy_idle_begin", "energy_idle_end",
                     "energy_window_begin", "energy_window_end"]
    assert obs.asked == [2.0]  # offered max(2 s, min_window_s); the observer (it knows the sensor) decides
    stamps = [e[1] for e in obs.events]
    assert stamps == sorted(stamps)
    assert all(worker_ns <= parent_ns for _, worker_ns, _, parent_ns in obs.events)  # one system-wide clock
    idle_ns = stamps[4] - stamps[3]
    window_ns = stamps[6] - stamps[5]
    assert idle_ns >= 0.2e9 and window_ns >= 0.3e9
    end_info = obs.events[6][2]
    assert end_info["inferences"] > 0 and end_info["window_s"] >= 0.3

    quiet = RecordingObserver()
    measure(onnx_model, energy=EnergyConfig(enabled=False), observer=quiet)
    assert [e[0] for e in quiet.events] == ["loaded", "warmup_end", "steady_end"] and quiet.asked == []


def test_a_failing_observer_does_not_cost_the_measurement(onnx_model):
    class Broken(RecordingObserver):
        def on_phase(self, name, monotonic_ns, info):
            raise RuntimeError("sensor unplugged")

    r = measure(onnx_model, energy=EnergyConfig(enabled=True, idle_s=0.05), observer=Broken(window_s=0.1))
    assert r.outcome in (Outcome.OK, Outcome.UNSTABLE) and r.overall.n > 0
    assert r.extra["observer_error"] == "loaded: RuntimeError: sensor unplugged"
    with pytest.raises(InvalidRequest, match="energy window must be > 0"):
        measure(onnx_model, energy=EnergyConfig(enabled=True), observer=RecordingObserver(window_s=0.0))


def test_throttle_during_the_run_marks_it_unstable(onnx_model, tmp_path, monkeypatch):
    board = make_board_tree(tmp_path / "board")
    monkeypatch.setenv(sysfs.ENV_ROOT, str(board))

    class Throttler(RecordingObserver):
        def on_phase(self, name, monotonic_ns, info):
            if name == "warmup_end":  # the board throttles while the blocks run
                write(board, "/sys/devices/system/cpu/cpu4/thermal_throttle/core_throttle_count", "7\n")

    r = measure(onnx_model, observer=Throttler())
    assert r.outcome is Outcome.UNSTABLE and r.stability is Stability.UNSTABLE
    assert "core_throttle_count rose from 0 to 7" in r.message
    assert r.overall is not None  # the numbers are kept; the caller decides whether to re-measure
    assert r.state_before.max_temp_c == 45.0


def test_tflite_through_the_worker(tmp_path):
    r = measure(make_tflite_model(tmp_path / "m.tflite", cost="small"), fmt="tflite", runtime="litert")
    assert r.outcome in (Outcome.OK, Outcome.UNSTABLE), r.message
    assert r.config.execution_provider == "XNNPACK" and r.config.runtime_version.startswith("ai-edge-litert")
