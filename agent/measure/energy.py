"""The energy observer: turns the worker's phase reports and a power sampler into an EnergyResult.

It implements the worker's MeasurementObserver protocol (fleetnas.agent.measure.worker):
- ``energy_window_s(default_s)``: the window the worker runs back-to-back inferences for: at least 2 s, 20 sensor
  periods, the meter's own minimum (30 s for fuel gauges) and the request's ``min_window_s``;
- ``on_phase(name, monotonic_ns, info)``, called in this (parent) process. The sampler thread starts at
  "steady_end" (never during the timed blocks, so sampling cannot disturb the latency) or at the latest at
  "energy_idle_begin"; the idle phase gives the idle power with the model loaded; "energy_window_end" carries
  ``info["inferences"]`` = K and ends sampling, with one more read so the window's end is covered.

The worker's timestamps are CLOCK_MONOTONIC like the sampler's, so both sit on one time axis. Instantaneous meters
are integrated with the trapezoid rule, counters by difference at the window edges (unwrapped on the way).
``result()`` returns the EnergyResult or raises the SensorError that says why there is none.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Optional

from fleetnas.agent.power.base import (
    DEFAULT_SAMPLE_PERIOD_S, Calibration, PowerMeter, PowerSampler, SensorError, SensorTooFewSamples, integrate_window, required_window_s)
from fleetnas.agent.records import EnergyConfig, EnergyResult

START_PHASES = ("steady_end", "energy_idle_begin")


class EnergyObserver:
    def __init__(self, meter: PowerMeter, config: Optional[EnergyConfig] = None,
                 calibration: Calibration = Calibration(), period_s: Optional[float] = None) -> None:
        self.meter = meter
        self.config = config or EnergyConfig(enabled=True)
        self.calibration = calibration
        # Poll at 100 Hz, or 4x per hardware update for slow sensors (a fuel gauge updates about once a second);
        # a slow read (a forked vcgencmd) simply makes the loop run as fast as the command allows.
        self._period_s = period_s or max(DEFAULT_SAMPLE_PERIOD_S, meter.update_period_s / 4)
        self.sampler: Optional[PowerSampler] = None
        self.phases: Dict[str, int] = {}
        self.inferences = 0
        self.window_s_asked = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ MeasurementObserver
    def energy_window_s(self, default_s: float) -> float:
        rate = self.meter.sample_rate_hz or 1.0 / self._period_s
        self.window_s_asked = max(float(default_s), required_window_s(self.meter, rate, self.config.min_window_s))
        return self.window_s_asked

    def on_phase(self, name: str, monotonic_ns: int, info: Optional[Dict[str, Any]] = None) -> None:
        with self._lock:
            self.phases[name] = int(monotonic_ns)
            if name in START_PHASES and self.sampler is None:
                self.sampler = PowerSampler(self.meter, self._period_s).start()
            if name in ("energy_window_begin", "energy_window_end") and info and "inferences" in info:
                self.inferences = int(info["inferences"])
            if name == "energy_window_end" and self.sampler is not None:
                self.sampler.read_now()  # a sample after the window's end, so the end is covered
                self.sampler.stop()

    # ------------------------------------------------------------------ results
    def close(self) -> None:
        """Stop the sampler whatever happened to the worker (timeout, crash)."""
        with self._lock:
            if self.sampler is not None:
                self.sampler.stop()

    def result(self) -> EnergyResult:
        self.close()
        sampler = self.sampler
        missing = [p for p in ("energy_idle_begin", "energy_idle_end", "energy_window_begin", "energy_window_end")
                   if p not in self.phases]
        if sampler is None or missing:
            raise SensorTooFewSamples(f"the worker did not report the energy phases {', '.join(missing)}")
        if sampler.error is not None:
            raise sampler.error
        if self.inferences <= 0:
            raise SensorTooFewSamples("the energy window ran no inference")
        samples = sampler.snapshot()
        source = f"{self.meter.name} ({self.meter.source})"
        # Sampling may start at idle_begin itself: the idle average then starts at the first sample.
        idle_t0 = max(self.phases["energy_idle_begin"], samples[0][0] if samples else 0)
        idle = integrate_window(samples, self.meter.kind, idle_t0, self.phases["energy_idle_end"], source)
        window = integrate_window(samples, self.meter.kind, self.phases["energy_window_begin"],
                                  self.phases["energy_window_end"], source)
        if window.samples < 2:
            raise SensorTooFewSamples(f"{source}: {window.samples} samples in the {window.duration_s:.2f} s window")
        cal = self.calibration
        idle_power_w = cal.power_w(idle.mean_power_w)
        total_j = cal.energy_j(window.energy_j, window.duration_s)
        dynamic_j = total_j - idle_power_w * window.duration_s
        k = self.inferences
        return EnergyResult(
            energy_mj=total_j / k * 1e3, dynamic_energy_mj=dynamic_j / k * 1e3, idle_power_w=idle_power_w,
            mean_power_w=total_j / window.duration_s, min_power_w=cal.power_w(window.min_power_w),
            max_power_w=cal.power_w(window.max_power_w), samples=window.samples,
            sample_rate_hz=window.samples / window.duration_s, window_s=window.duration_s, inferences=k,
            sensor=f"{self.meter.name}:{self.meter.source}", rails=tuple(self.meter.total_rail.split("+")),
            calibration_scale=cal.scale, calibration_offset_w=cal.offset_w)

    def unavailable_reason(self) -> str:
        """'' when result() works, else the sensor's reason (for MeasureResult.energy_unavailable_reason)."""
        try:
            self.result()
        except SensorError as exc:
            return f"{self.meter.name}: {exc}"
        return ""
