"""measure_with_hygiene with the real worker and onnxruntime, a fake sysfs tree for thermal zones, throttle counters
and an INA3221 power monitor (hardware CI lacks), and fake vcgencmd/nvpmodel commands on PATH."""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from fleetnas.agent.measure import throttle
from fleetnas.agent.measure.hygiene import HygieneState, cool_down, measure_with_hygiene, reference_job
from fleetnas.agent.power.jetson import JetsonMeter
from fleetnas.agent.power.null import NullMeter
from fleetnas.agent.records import DeviceState, EnergyConfig, MeasureJob, Outcome, RuntimeOptions, TimingConfig
from fleetnas.agent.measure.reference_model import write_reference_model

FAST = TimingConfig(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=10, min_block_s=0.05, timeout_s=60)
OPTIONS = RuntimeOptions(threads=1)


def job(model, energy=None):
    return MeasureJob(model, "onnx", "onnxruntime", OPTIONS, FAST, energy)
ZONE = "sys/class/thermal/thermal_zone0"
THROTTLE = "sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count"
HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


@pytest.fixture
def board(tmp_path, monkeypatch):
    """A fake sysfs root for the whole agent (FLEETNAS_SYSFS_ROOT), one thermal zone at 40 °C, no throttling."""
    root = tmp_path / "root"
    _write(root, f"{ZONE}/type", "cpu-thermal")
    _write(root, f"{ZONE}/temp", "40000")
    _write(root, THROTTLE, "0")
    monkeypatch.setenv("FLEETNAS_SYSFS_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_reference_model(tmp_path_factory.mktemp("model"), "onnx", rows=1, width=64, depth=2, seed=0)


def _later(delay_s: float, fn, repeat_s: float = 0.0, stop: threading.Event = None):
    def run():
        time.sleep(delay_s)
        fn()
        while repeat_s and not stop.wait(repeat_s):
            fn()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_energy_from_the_meter_matches_a_constant_load(board, model):
    _write(board, f"{HWMON}/in1_label", "VDD_IN")
    _write(board, f"{HWMON}/in1_input", "5000")
    _write(board, f"{HWMON}/curr1_input", "1200")   # 6 W, steady
    meter = JetsonMeter()
    meter.sample_rate_hz = 100.0
    result = measure_with_hygiene(job(model, EnergyConfig(True, 0.0, 0.3)), meter,
                                  HygieneState())
    assert result.outcome in (Outcome.OK, Outcome.UNSTABLE), result.message
    energy = result.energy
    assert energy is not None and result.energy_unavailable_reason == ""
    assert energy.window_s >= 2.0 and energy.inferences > 0
    assert energy.mean_power_w == pytest.approx(6.0, rel=1e-6)
    assert energy.energy_mj == pytest.approx(6.0 * energy.window_s / energy.inferences * 1e3, rel=1e-6)
    assert energy.dynamic_energy_mj == pytest.approx(0.0, abs=1e-6)  # no load change: nothing above idle
    assert energy.rails == ("VDD_IN",)


def test_no_sensor_gives_the_reason_never_a_number(board, model):
    state = HygieneState()
    result = measure_with_hygiene(job(model, EnergyConfig(enabled=True)),
                                  NullMeter("no current sensor on a Raspberry Pi 4"), state)
    assert result.energy is None and "Raspberry Pi 4" in result.energy_unavailable_reason
    assert result.overall is not None and result.attempts in (1, 2)


def _bump(root: Path):
    path = root / THROTTLE
    _write(root, THROTTLE, str(int(path.read_text()) + 1))


def _our_children() -> set:
    """PIDs of our live child processes (zombies excluded)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _when_a_worker_runs(fn) -> threading.Thread:
    """Call fn once a child process of ours starts: the worker, spawned after the 'before' snapshot. Children that
    exist already (the spare worker an earlier test pre-started, which the changed environment makes the measurement
    discard) do not count: reacting to one could land the event before that snapshot."""
    existing = _our_children()

    def run():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _our_children() - existing:
                fn()
                return
            time.sleep(0.01)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_throttle_during_the_first_run_is_measured_again(board, model):
    _when_a_worker_runs(lambda: _bump(board))  # once, during the first run only
    result = measure_with_hygiene(job(model), None, HygieneState())
    assert result.attempts == 2
    assert "core_throttle_count rose" in result.extra["first_attempt"]
    assert result.energy is None and result.energy_unavailable_reason == ""  # not asked: no reason either
    if result.outcome is Outcome.UNSTABLE:  # only when this shared machine made the re-run noisy as well
        assert "CV" in result.message
    else:
        assert result.outcome is Outcome.OK


def test_throttling_throughout_is_unstable_after_two_attempts(board, model):
    stop = threading.Event()
    _later(0.0, lambda: _bump(board), repeat_s=0.1, stop=stop)
    try:
        result = measure_with_hygiene(job(model), None, HygieneState())
    finally:
        stop.set()
    assert result.outcome is Outcome.UNSTABLE and result.attempts == 2
    assert result.message.startswith("unstable twice") and "core_throttle_count" in result.message


def test_cool_down_waits_for_idle_plus_5_and_gives_up_at_the_cap(board):
    state = HygieneState(cooldown_poll_s=0.05, cooldown_max_s=5.0, idle_temp_c=40.0)
    _write(board, f"{ZONE}/temp", "70000")
    _later(0.3, lambda: _write(board, f"{ZONE}/temp", "44000"))
    start = time.monotonic()
    note = cool_down(state)
    assert 0.25 <= time.monotonic() - start < 3.0
    assert note["cooldown"].startswith("cooled") and "70.0 -> 44.0" in note["cooldown"]
    _write(board, f"{ZONE}/temp", "70000")
    state.cooldown_max_s = 0.3
    assert cool_down(state)["cooldown"].startswith("gave up")
    _write(board, f"{ZONE}/temp", "42000")
    assert cool_down(state) == {}  # within idle + 5: no wait
    _write(board, f"{ZONE}/temp", "35000")
    cool_down(state)
    assert state.idle_temp_c == 35.0  # a cooler idle is learnt


def test_drift_canary_sets_a_baseline_then_flags_a_moved_reference(board, model):
    state = HygieneState(canary_every=2, reference=reference_job(model, options=OPTIONS, timing=FAST))
    first = measure_with_hygiene(job(model), None, state)
    assert state.reference_baseline_ms is not None and not first.drift_suspect
    assert "baseline" in first.extra["drift_canary"]
    # The board was four times as fast when the baseline was taken: the reference has now moved by ~+300 %.
    state.reference_baseline_ms /= 4.0
    second = measure_with_hygiene(job(model), None, state)
    assert "drift_canary" not in second.extra and not second.drift_suspect  # 1 of 2: no canary yet
    third = measure_with_hygiene(job(model), None, state)
    assert third.drift_suspect and state.last_canary.drifted
    assert state.last_canary.suspect_measurements == 2 and abs(state.last_canary.moved) > 0.05
    assert "suspect" in third.extra["drift_canary"]


FAKE_NVPMODEL = "#!/bin/sh\ncat \"$(dirname \"$0\")/mode\"\n"


def test_throttle_flags_pi_sticky_bits_and_jetson_power_mode(tmp_path, monkeypatch):
    assert throttle.decode_get_throttled("0x50005") == (["under-voltage", "throttled"],
                                                        ["under-voltage", "throttled"])
    assert throttle.decode_get_throttled("junk") == ([], [])
    before = DeviceState(captured_unix_ns=0, throttle=(("vcgencmd_throttled", "0x0"), ("nvpmodel", "MAXN (0)")))
    after = DeviceState(captured_unix_ns=1, throttle=(("vcgencmd_throttled", "0x20000"), ("nvpmodel", "15W (1)")))
    events = throttle.throttle_events(before, after)
    assert any("ARM frequency capped occurred" in e for e in events)
    assert any("MAXN (0) -> 15W (1)" in e for e in events)
    assert throttle.throttle_events(before, before) == []

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvpmodel").write_text(FAKE_NVPMODEL)
    (bin_dir / "nvpmodel").chmod(0o755)
    (bin_dir / "mode").write_text("NV Power Mode: MAXN\n0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert throttle.extra_flags() == (("nvpmodel", "MAXN (0)"),)
    merged = throttle.with_flags(DeviceState(captured_unix_ns=0), throttle.extra_flags())
    assert dict(merged.throttle) == {"nvpmodel": "MAXN (0)"}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert throttle.extra_flags() == ()


def test_build_hygiene_and_the_service_measure_fn(board, model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # whatever this machine has installed: no GPU meter here
    from fleetnas.agent.measure.hygiene import build_hygiene, make_measure_fn
    from fleetnas.agent.power.base import Calibration
    meter, info, state = build_hygiene(tmp_path / "reference", {"device_class": "rpi4", "calibration": {
        "rpi4": {"scale": 1.1, "offset_w": 0.5}}}, root=str(board), canary_every=5)
    assert isinstance(meter, NullMeter) and not info.readable and "external USB meter" in info.message
    assert state.reference.model_path.exists() and state.calibration == Calibration(1.1, 0.5)
    measure = make_measure_fn(meter, state)
    result = measure(MeasureJob(model, "onnx", "onnxruntime", OPTIONS, FAST, EnergyConfig(enabled=True)))
    assert result.energy is None and "external USB meter" in result.energy_unavailable_reason
    assert state.reference_baseline_ms is not None and "baseline" in result.extra["drift_canary"]


def test_a_canary_that_cannot_run_leaves_the_result_alone(board, model):
    state = HygieneState(reference=reference_job(model, model_format="tflite", runtime="onnxruntime"))
    result = measure_with_hygiene(job(model), None, state)
    assert result.overall is not None and not result.drift_suspect
    assert result.extra["drift_canary"].startswith("reference run impossible") and "tflite" in result.extra["drift_canary"]
    assert state.reference_baseline_ms is None
