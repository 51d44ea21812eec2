"""Measurement hygiene: the one call the service makes per measurement, around fleetnas.agent.measure.worker.

    result = measure_with_hygiene(job, meter, state)

1. Cool-down gated on temperature: wait until the hottest thermal zone is back to idle + 5 °C, polled every second,
   at most 120 s (device_state.wait_for_cooldown); never a blind sleep. The idle temperature is the coolest maximum
   seen before a measurement since the agent started (or set in HygieneState).
2. Measure in a fresh worker. Energy, when requested and a readable meter exists, comes from an EnergyObserver
   (fleetnas.agent.measure.energy); otherwise ``energy_unavailable_reason`` says why. Never a made-up number.
3. Stability gate: a run whose CV of block medians is > 10 % or that throttled (x86 counters, Pi flags incl. sticky
   bits, Jetson power-mode change) is measured once more after a cool-down; still unstable: outcome UNSTABLE.
   ``attempts`` says how many runs it took.
4. Drift canary: every ``canary_every`` measurements (default 20) the reference model is measured again; a median
   more than 5 % away from the first canary's (the device baseline) sets ``drift_suspect`` on the result, and
   ``state.last_canary`` tells how many measurements since the previous canary are suspect (the host re-measures
   them). The baseline is kept: a board that stays slower keeps being flagged.

``run_wall_ms`` covers every worker run the measurement cost: both attempts and the canary (``extra`` has the
parts: ``attempt_wall_ms``, ``canary_wall_ms``); ``started_unix_ns`` is the first attempt's start.

HygieneState is the agent's mutable bookkeeping; one service owns one and calls this from its one measuring thread.
Wiring at agent start-up (the service's MeasureFn signature)::

    meter, sensor_info, state = build_hygiene(cache_dir / "reference", power_config)
    service = AgentService(store, measure_fn=make_measure_fn(meter, state))
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from fleetnas.agent.board.device_state import thermal_readings, wait_for_cooldown
from fleetnas.agent.errors import AgentError
from fleetnas.agent.measure import throttle
from fleetnas.agent.measure.energy import EnergyObserver
from fleetnas.agent.measure.reference_model import write_reference_model
from fleetnas.agent.measure.worker import cancellable_sleep, run_measurement
from fleetnas.agent.power.base import Calibration, PowerMeter, SensorError
from fleetnas.agent.power.detect import PowerConfig, select_meter
from fleetnas.agent.power.null import NullMeter
from fleetnas.agent.records import MeasureJob, MeasureResult, Outcome, PowerSensorInfo, Stability, TimingConfig

# The reference runs in ~2 s; a short timeout keeps a wedged board from stalling the caller's measurement.
REFERENCE_TIMING = TimingConfig(warmup_runs=5, warmup_s=0.5, blocks=3, min_runs_per_block=20, min_block_s=0.3,
                                timeout_s=60.0)


def reference_job(model_path: Path, model_format: str = "onnx", runtime: str = "onnxruntime",
                  timing: TimingConfig = REFERENCE_TIMING, **kwargs: Any) -> MeasureJob:
    """What the drift canary re-runs: a fixed model with a fixed runtime configuration, latency only."""
    return MeasureJob(Path(model_path), model_format, runtime, timing=timing, **kwargs)


@dataclass(frozen=True)
class CanaryReport:
    median_ms: float
    baseline_ms: float
    moved: float                # (median - baseline) / baseline
    suspect_measurements: int   # measurements since the previous canary
    drifted: bool


@dataclass
class HygieneState:
    canary_every: int = 20
    drift_threshold: float = 0.05
    cooldown_margin_c: float = 5.0
    cooldown_max_s: float = 120.0
    cooldown_poll_s: float = 1.0
    reference: Optional[MeasureJob] = None       # the drift canary's job (reference_job)
    calibration: Calibration = Calibration()
    root: Optional[str] = None          # sysfs root; None: $FLEETNAS_SYSFS_ROOT or /
    idle_temp_c: Optional[float] = None
    reference_baseline_ms: Optional[float] = None
    measurements_since_canary: int = 0
    last_canary: Optional[CanaryReport] = None
    cooldowns: int = 0

    def __post_init__(self) -> None:
        if self.canary_every < 1:
            raise ValueError(f"canary_every must be >= 1, got {self.canary_every}")
        if not 0 < self.drift_threshold < 1:
            raise ValueError(f"drift_threshold must be in (0, 1), got {self.drift_threshold}")


def cool_down(state: HygieneState) -> Dict[str, str]:
    """Wait for idle + margin; returns what happened, for MeasureResult.extra."""
    readings = thermal_readings(state.root)
    now_c = max((r.temp_c for r in readings), default=float("nan"))
    if math.isnan(now_c):
        return {"cooldown": "no thermal zone: nothing to wait for"}
    if state.idle_temp_c is None or now_c < state.idle_temp_c:
        state.idle_temp_c = now_c
    if now_c <= state.idle_temp_c + state.cooldown_margin_c:
        return {}
    start = time.monotonic()
    cooled, temp_c = wait_for_cooldown(state.idle_temp_c, state.cooldown_margin_c, state.cooldown_max_s,
                                       state.cooldown_poll_s, root=state.root, sleep=cancellable_sleep)
    state.cooldowns += 1
    waited_s = time.monotonic() - start
    verdict = "cooled" if cooled else "gave up"
    return {"cooldown": f"{verdict} after {waited_s:.1f} s: {now_c:.1f} -> {temp_c:.1f} °C "
                        f"(idle {state.idle_temp_c:.1f} °C + {state.cooldown_margin_c:g})"}


def _attempt(job: MeasureJob, meter: Optional[PowerMeter], state: HygieneState) -> Tuple[MeasureResult, bool]:
    """One worker run with energy when possible; (result, throttled or unstable)."""
    observer, reason = None, ""
    energy = job.energy
    if energy is not None and energy.enabled:
        if meter is None:
            reason = "no power meter configured on this agent"
        elif isinstance(meter, NullMeter):
            reason = meter.reason
        else:
            observer = EnergyObserver(meter, energy, state.calibration)
    flags_before = throttle.extra_flags()
    try:
        result = run_measurement(job if observer is not None else replace(job, energy=None), observer=observer)
    finally:
        if observer is not None:
            observer.close()
    flags_after = throttle.extra_flags()
    before = throttle.with_flags(result.state_before, flags_before)
    after = throttle.with_flags(result.state_after, flags_after)
    events = throttle.throttle_events(before, after)
    result = replace(result, state_before=before, state_after=after)
    if observer is not None:
        if result.outcome in (Outcome.OK, Outcome.UNSTABLE):
            try:
                result = replace(result, energy=observer.result())
            except SensorError as exc:
                reason = f"{meter.name}: {exc}"
            except Exception as exc:  # noqa: BLE001 - a bug in energy code must not cost the latency result
                reason = f"{meter.name}: energy computation failed: {type(exc).__name__}: {exc}"
        else:
            reason = f"not measured: the run ended {result.outcome.value}"
    if reason:
        result = replace(result, energy_unavailable_reason=reason)
    unstable = result.outcome is Outcome.UNSTABLE or (result.outcome is Outcome.OK and bool(events))
    if unstable and result.outcome is Outcome.OK:  # evidence the worker's own rules do not read (power mode)
        result = replace(result, outcome=Outcome.UNSTABLE, stability=Stability.UNSTABLE, message="; ".join(events))
    return result, unstable


def measure_with_hygiene(job: MeasureJob, meter: Optional[PowerMeter], state: HygieneState) -> MeasureResult:
    extra: Dict[str, str] = dict(cool_down(state))
    result, unstable = _attempt(job, meter, state)
    attempts, walls_ms, started_unix_ns = 1, [result.run_wall_ms], result.started_unix_ns
    if unstable:
        first = result.message
        extra.update({f"first_{k}": v for k, v in cool_down(state).items()})
        extra["first_attempt"] = f"UNSTABLE: {first}"
        result, unstable = _attempt(job, meter, state)
        attempts = 2
        walls_ms.append(result.run_wall_ms)
        if unstable:
            result = replace(result, message=f"unstable twice (first: {first}; then: {result.message})")
    extra["attempt_wall_ms"] = ",".join(f"{w:.1f}" for w in walls_ms)
    result = replace(result, attempts=attempts, run_wall_ms=sum(walls_ms), started_unix_ns=started_unix_ns,
                     extra={**result.extra, **extra})
    state.measurements_since_canary += 1
    if state.reference is not None and (state.reference_baseline_ms is None
                                        or state.measurements_since_canary >= state.canary_every):
        result = _canary(result, state)
    return result


def _canary(result: MeasureResult, state: HygieneState) -> MeasureResult:
    ref = state.reference
    suspects = state.measurements_since_canary
    state.measurements_since_canary = 0
    try:
        run = run_measurement(ref)
    except AgentError as exc:  # e.g. onnxruntime missing on a LiteRT-only board: the caller's result stands
        return replace(result, extra={**result.extra, "drift_canary": f"reference run impossible: {exc}"})
    result = replace(result, run_wall_ms=result.run_wall_ms + run.run_wall_ms,
                     extra={**result.extra, "canary_wall_ms": f"{run.run_wall_ms:.1f}"})
    if run.overall is None:
        return replace(result, extra={**result.extra, "drift_canary": f"reference run failed: {run.outcome.value} "
                                                                      f"{run.message}"})
    median_ms = run.overall.median_ms
    if state.reference_baseline_ms is None:
        state.reference_baseline_ms = median_ms
    moved = (median_ms - state.reference_baseline_ms) / state.reference_baseline_ms
    drifted = abs(moved) > state.drift_threshold
    state.last_canary = CanaryReport(median_ms, state.reference_baseline_ms, moved, suspects, drifted)
    note = (f"reference median {median_ms:.3f} ms vs baseline {state.reference_baseline_ms:.3f} ms ({moved:+.1%})"
            + (f": drifted, the last {suspects} measurements are suspect" if drifted else ""))
    return replace(result, drift_suspect=result.drift_suspect or drifted,
                   extra={**result.extra, "drift_canary": note})


def build_hygiene(reference_dir: Path, power_config: Union[Mapping[str, Any], Any, None] = None,
                  root: Optional[str] = None, canary_every: int = 20
                  ) -> Tuple[PowerMeter, PowerSensorInfo, HygieneState]:
    """Start-up: pick the power meter (its read rate measured now), write the canary's reference model into
    reference_dir, and take the device class's calibration from the power config (a PowerConfig or its mapping)."""
    config = power_config if isinstance(power_config, PowerConfig) else PowerConfig.from_mapping(power_config)
    meter, info = select_meter(root, config)
    reference = reference_job(write_reference_model(Path(reference_dir), "onnx", rows=1, width=256, depth=4, seed=0))
    state = HygieneState(canary_every=canary_every, reference=reference, calibration=config.calibration_for(),
                         root=root)
    return meter, info, state


def make_measure_fn(meter: Optional[PowerMeter], state: HygieneState) -> Callable[[MeasureJob], MeasureResult]:
    """The service's MeasureFn: MeasureJob -> MeasureResult."""
    def measure(job: MeasureJob) -> MeasureResult:
        return measure_with_hygiene(job, meter, state)
    return measure
