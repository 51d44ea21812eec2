"""The EnergyObserver driven by the worker's phase sequence (recorded order, real timestamps) over fake sensors."""
from __future__ import annotations

import time

import pytest

from fleetnas.agent.measure.energy import EnergyObserver
from fleetnas.agent.power.base import Calibration, SensorTooFewSamples, SensorVanished
from fleetnas.agent.power.android import AndroidBatteryMeter
from fleetnas.agent.records import EnergyConfig
from power_fakes import SineProfile, unstarved
import test_sysfs_meters as sysfs_fakes  # as a module: its Test classes must not be collected twice


def _drive(observer: EnergyObserver, idle_s: float, window_s: float, inferences: int, break_at_window=None):
    """The phase calls fleetnas.agent.measure.worker makes, in its order, with their monotonic timestamps."""
    stamps = {}

    def phase(name, **info):
        stamps[name] = time.monotonic_ns()
        observer.on_phase(name, stamps[name], info)
    phase("loaded", load_ms=3.0)
    phase("warmup_end", runs=10)
    phase("steady_end", inferences=100)
    time.sleep(0.05)
    phase("energy_idle_begin")
    time.sleep(idle_s)
    phase("energy_idle_end")
    phase("energy_window_begin")
    time.sleep(window_s / 2)
    if break_at_window:
        break_at_window()
    time.sleep(window_s / 2)
    phase("energy_window_end", inferences=inferences, window_s=window_s)
    return stamps


def _fresh_fake(family, tmp_path, attempt, monkeypatch, watch):
    """A fake sensor of ``family`` (a contract test class) following a new profile, its writer watched."""
    root = tmp_path / f"attempt{attempt}"
    root.mkdir()
    fake = family().setup_fake(root, SineProfile(start_s=time.monotonic(), period_s=3.0), monkeypatch)
    watch.follow(fake.driver)
    return fake


def test_energy_per_inference_matches_the_profile_with_calibration(tmp_path, monkeypatch):
    cal = Calibration(scale=1.1, offset_w=0.2)

    def measure(attempt, watch):
        fake = _fresh_fake(sysfs_fakes.TestJetsonHwmon, tmp_path, attempt, monkeypatch, watch)
        with fake.running():
            observer = EnergyObserver(fake.build(), EnergyConfig(enabled=True, idle_s=0.5), cal)
            stamps = _drive(observer, idle_s=0.5, window_s=1.4, inferences=700)
            return fake.driver.profile, stamps, observer.result()

    profile, stamps, result = unstarved(measure)
    s = {k: v / 1e9 for k, v in stamps.items()}
    window_s = s["energy_window_end"] - s["energy_window_begin"]
    idle_w = profile.energy_j(s["energy_idle_begin"], s["energy_idle_end"]) / (s["energy_idle_end"] - s["energy_idle_begin"])
    total_j = 1.1 * profile.energy_j(s["energy_window_begin"], s["energy_window_end"]) + 0.2 * window_s
    idle_cal_w = 1.1 * idle_w + 0.2
    assert result.energy_mj == pytest.approx(total_j / 700 * 1e3, rel=0.02)
    assert result.dynamic_energy_mj == pytest.approx((total_j - idle_cal_w * window_s) / 700 * 1e3, abs=0.02 * result.energy_mj)
    assert result.idle_power_w == pytest.approx(idle_cal_w, rel=0.02)
    assert result.mean_power_w == pytest.approx(total_j / window_s, rel=0.02)
    assert result.min_power_w <= result.mean_power_w <= result.max_power_w
    assert result.inferences == 700 and result.window_s == pytest.approx(window_s)
    assert result.samples >= 20 and result.sample_rate_hz > 10  # 100 Hz asked; a loaded machine wakes us late
    assert result.rails == ("VDD_IN",) and result.sensor.startswith("jetson-ina:")
    assert (result.calibration_scale, result.calibration_offset_w) == (1.1, 0.2)


def test_counter_observer_across_wraps(tmp_path, monkeypatch):
    def measure(attempt, watch):
        fake = _fresh_fake(sysfs_fakes.TestRapl, tmp_path, attempt, monkeypatch, watch)
        with fake.running():
            observer = EnergyObserver(fake.build(), EnergyConfig(enabled=True))
            stamps = _drive(observer, idle_s=0.3, window_s=2.0, inferences=50)
            return fake, stamps, observer.result()

    fake, stamps, result = unstarved(measure)
    expected_j = fake.driver.profile.energy_j(stamps["energy_window_begin"] / 1e9, stamps["energy_window_end"] / 1e9)
    assert expected_j > 2.0  # more than the 2 J counter range: it wrapped during the window
    assert result.energy_mj == pytest.approx(expected_j / 50 * 1e3, rel=0.02)


def test_window_length_rules(tmp_path, monkeypatch):
    fake = sysfs_fakes.TestJetsonHwmon().setup_fake(tmp_path, SineProfile(start_s=time.monotonic()), monkeypatch)
    with fake.running():
        meter = fake.build()
    meter.sample_rate_hz = 100.0
    assert EnergyObserver(meter).energy_window_s(2.0) == 2.0
    assert EnergyObserver(meter, EnergyConfig(enabled=True, min_window_s=7.0)).energy_window_s(2.0) == 7.0
    meter.sample_rate_hz = 4.0  # a slow sensor: 20 periods = 5 s
    assert EnergyObserver(meter).energy_window_s(2.0) == pytest.approx(5.0)
    (tmp_path / sysfs_fakes.BATTERY).mkdir(parents=True)
    (tmp_path / sysfs_fakes.BATTERY / "voltage_now").write_text("3800000\n")
    (tmp_path / sysfs_fakes.BATTERY / "current_now").write_text("-300000\n")
    assert EnergyObserver(AndroidBatteryMeter(str(tmp_path))).energy_window_s(2.0) == 30.0  # fuel gauge


def test_sensor_vanishing_mid_window_is_the_reason(tmp_path, monkeypatch):
    fake = sysfs_fakes.TestJetsonHwmon().setup_fake(tmp_path, SineProfile(start_s=time.monotonic()), monkeypatch)
    with fake.running():
        observer = EnergyObserver(fake.build(), EnergyConfig(enabled=True))
        _drive(observer, idle_s=0.1, window_s=0.3, inferences=10, break_at_window=fake.vanish)
        with pytest.raises(SensorVanished, match="curr1_input"):
            observer.result()
    assert "vanished" in observer.unavailable_reason()


def test_missing_phases_or_no_inference(tmp_path, monkeypatch):
    fake = sysfs_fakes.TestRapl().setup_fake(tmp_path, SineProfile(start_s=time.monotonic()), monkeypatch)
    with fake.running():
        observer = EnergyObserver(fake.build())
        observer.on_phase("steady_end", time.monotonic_ns(), {})
        with pytest.raises(SensorTooFewSamples, match="energy_idle_begin"):
            observer.result()
        observer = EnergyObserver(fake.build())
        _drive(observer, idle_s=0.1, window_s=0.2, inferences=0)
        with pytest.raises(SensorTooFewSamples, match="no inference"):
            observer.result()
