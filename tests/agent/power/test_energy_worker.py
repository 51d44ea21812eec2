"""Energy end to end through the real worker process and onnxruntime: a fake INA3221 whose current follows a sine,
the observer in this (parent) process, the worker's own phase timestamps. Energy per inference within 2 %."""
from __future__ import annotations

import time

import pytest

from fleetnas.agent.measure.energy import EnergyObserver
from fleetnas.agent.power.base import Calibration
from fleetnas.agent.records import MeasureJob, EnergyConfig, Outcome, RuntimeOptions, TimingConfig
from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.agent.measure.worker import run_measurement
from power_fakes import SineProfile
import test_sysfs_meters as sysfs_fakes  # as a module: its Test classes must not be collected twice

FAST = TimingConfig(warmup_runs=2, warmup_s=0.05, blocks=3, min_runs_per_block=10, min_block_s=0.05, timeout_s=60)


class RecordingObserver(EnergyObserver):
    """The real observer, keeping the worker's phase timestamps to compute the exact expected energy."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def on_phase(self, name, monotonic_ns, info=None):
        self.seen.append(name)
        super().on_phase(name, monotonic_ns, info)


def test_worker_energy_matches_the_profile(tmp_path, monkeypatch):
    model = write_reference_model(tmp_path / "model", "onnx", rows=1, width=64, depth=2, seed=0)
    fake = sysfs_fakes.TestJetsonHwmon().setup_fake(tmp_path, SineProfile(start_s=time.monotonic(), period_s=3.0),
                                                    monkeypatch)
    with fake.running():
        meter = fake.build()
        meter.sample_rate_hz = 100.0
        observer = RecordingObserver(meter, EnergyConfig(enabled=True, idle_s=0.5), Calibration())
        result = run_measurement(MeasureJob(model, "onnx", "onnxruntime", RuntimeOptions(threads=1), FAST,
                                            EnergyConfig(enabled=True, idle_s=0.5)), observer=observer)
        energy = observer.result()
    assert result.outcome in (Outcome.OK, Outcome.UNSTABLE), result.message
    assert observer.seen[-4:] == ["energy_idle_begin", "energy_idle_end", "energy_window_begin", "energy_window_end"]
    s = {k: v / 1e9 for k, v in observer.phases.items()}
    profile = fake.driver.profile
    expected_mj = profile.energy_j(s["energy_window_begin"], s["energy_window_end"]) / energy.inferences * 1e3
    idle_w = profile.energy_j(s["energy_idle_begin"], s["energy_idle_end"]) / (s["energy_idle_end"] - s["energy_idle_begin"])
    assert energy.window_s >= 2.0 and energy.inferences > 100
    assert energy.energy_mj == pytest.approx(expected_mj, rel=0.02)
    assert energy.idle_power_w == pytest.approx(idle_w, rel=0.02)
