"""The PowerMeter protocol, its typed errors, the sampler thread and the integration rules.

Two kinds of sensor exist on boards and they are integrated differently (../shared/guides/measurement.md):
- "instant" meters report a power in watts (INA3221, PMIC ADC, battery V*I): a sampler thread polls them with
  monotonic timestamps and the energy is the trapezoid integral of the samples;
- "counter" meters report a cumulative energy (RAPL ``energy_uj``, NVML total energy): the energy is the counter
  difference between the window edges, unwrapped with the counter's range (RAPL ``max_energy_range_uj``).

Every read failure is one of the ``SensorError`` subclasses below, with a message that says what to do, so a
caller can report "energy unavailable: <why>" instead of a made-up number.
"""
from __future__ import annotations

import bisect
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol, Sequence, Tuple

from fleetnas.agent.board.sysfs import resolve_root
from fleetnas.agent.errors import AgentError

INSTANT = "instant"
COUNTER = "counter"
DEFAULT_SAMPLE_PERIOD_S = 0.01
COUNTER_SLICE_NS = 100_000_000  # min/max power of a counter: over 100 ms slices  # 100 Hz polling: INA3221 updates every few ms, more would only cost CPU


class SensorError(AgentError):
    """A power sensor could not give a trustworthy reading; the message says why and how to fix it."""


class SensorUnavailable(SensorError):
    """No such sensor on this board, or its driver/library is not installed."""


class SensorPermissionDenied(SensorError):
    """The sensor exists but this user may not read it (RAPL is root-only since Linux 5.10)."""


class SensorVanished(SensorError):
    """A file or command that was there at detection time is gone (driver unloaded, device unplugged)."""


class SensorGarbage(SensorError):
    """The sensor returned something that is not a plausible number."""


class SensorNotValid(SensorError):
    """The reading exists but does not mean power drawn by the board (a battery gauge while charging)."""


class SensorTooFewSamples(SensorError):
    """The window held too few samples, or a counter did not move, to give an energy."""


def read_sysfs_number(path: str) -> float:
    """One number from a sysfs file, each failure mapped to its typed error."""
    try:
        with open(path, "r") as handle:
            text = handle.read().strip()
    except PermissionError as exc:
        raise SensorPermissionDenied(f"cannot read {path}: permission denied") from exc
    except FileNotFoundError as exc:
        raise SensorVanished(f"{path} vanished (driver unloaded or device removed?)") from exc
    except OSError as exc:  # EIO, ENODEV from a sensor that stopped answering
        raise SensorVanished(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        value = float(text)
    except ValueError:
        raise SensorGarbage(f"{path} holds {text[:40]!r}, not a number") from None
    if not math.isfinite(value):
        raise SensorGarbage(f"{path} holds {text[:40]!r}, not a finite number")
    return value


def check_power_w(value: float, source: str, max_w: float = 10_000.0) -> float:
    """Reject readings no board can produce (negative or absurd), which a broken driver sometimes reports."""
    if not math.isfinite(value) or value < 0 or value > max_w:
        raise SensorGarbage(f"{source} gave {value!r} W, outside 0..{max_w:g} W")
    return value


@dataclass(frozen=True)
class Calibration:
    """Per device class: true_power_w = scale * measured_power_w + offset_w (from an external meter)."""
    scale: float = 1.0
    offset_w: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"calibration scale must be a positive number, got {self.scale!r}")
        if not math.isfinite(self.offset_w):
            raise ValueError(f"calibration offset_w must be a finite number, got {self.offset_w!r}")

    def power_w(self, measured_w: float) -> float:
        return self.scale * measured_w + self.offset_w

    def energy_j(self, measured_j: float, duration_s: float) -> float:
        return self.scale * measured_j + self.offset_w * duration_s


class MeterSettings(Protocol):
    """What a meter may take from the agent's power config (fleetnas.agent.power.detect.PowerConfig)."""
    total_rail: str      # override the known total rail ("+" joins disjoint rails)
    current_unit: str    # Android current_now unit when the kernel's differs from its voltage's


class PowerMeter:
    """Base of every meter family. Subclasses set the descriptive fields and fill one ``_read`` hook.

    A family is registered under the ``fleetnas.power_meters`` entry-point group (fleetnas.agent.power.detect) and
    built with ``for_board(root, settings)``: it raises SensorUnavailable when this board has no such sensor.

    ``read()`` returns watts for INSTANT meters; for COUNTER meters a tuple of (value_j, range_j) per domain,
    raw, range_j = 0 when the counter never wraps. ``update_period_s`` is how often the hardware refreshes (a
    fuel gauge: ~1 s), ``min_window_s`` the shortest window that gives a meaningful energy.
    """
    name = "meter"
    kind = INSTANT
    units = ""
    update_period_s = 0.0
    min_window_s = 2.0
    max_power_w = 10_000.0
    sample_rate_hz = 0.0   # measured at start-up by detect.select_meter; 0 = not measured yet

    def __init__(self, source: str, rails: Sequence[str], total_rail: str) -> None:
        self.source = source
        self.rails = tuple(rails)
        self.total_rail = total_rail

    @classmethod
    def for_board(cls, root: Optional[str], settings: MeterSettings) -> "PowerMeter":
        return cls(root)  # type: ignore[call-arg]  # families read from a sysfs root; override otherwise

    def read(self):
        value = self._read()
        if self.kind == INSTANT:
            return check_power_w(float(value), f"{self.name} ({self.source})", self.max_power_w)
        return value

    def _read(self):
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name}:{self.total_rail}" if self.total_rail else self.name


def unwrap_delta_j(previous: float, current: float, range_j: float, source: str) -> float:
    """Energy between two raw counter readings, across at most one wrap (the sampler reads often enough)."""
    if current >= previous:
        return current - previous
    if range_j > 0 and previous <= range_j:
        return current + range_j - previous
    raise SensorGarbage(f"{source} went backwards ({previous:g} -> {current:g} J) and has no wrap range")


class PowerSampler:
    """Polls one meter on a daemon thread of this (the parent) process, with monotonic timestamps.

    ``samples`` holds (t_ns, value): watts for instant meters, the cumulative unwrapped energy in joules since the
    first read for counters. The first error stops sampling and is kept in ``error``.
    """

    def __init__(self, meter: PowerMeter, period_s: float = DEFAULT_SAMPLE_PERIOD_S,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        if period_s <= 0:
            raise ValueError(f"sample period must be > 0 s, got {period_s}")
        self.meter = meter
        self.period_s = period_s
        self._clock_ns = clock_ns
        self.samples: List[Tuple[int, float]] = []
        self.error: Optional[SensorError] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last_raw: Optional[Tuple[Tuple[float, float], ...]] = None
        self._cumulative_j = 0.0

    def read_now(self) -> Optional[Tuple[int, float]]:
        """Take one sample now (also used at window edges for counters); None once an error stopped sampling."""
        with self._lock:
            if self.error is not None:
                return None
            t0 = self._clock_ns()
            try:
                raw = self.meter.read()
            except SensorError as exc:
                self.error = exc
                self._stop.set()
                return None
            except Exception as exc:  # noqa: BLE001 - a meter bug must end as a reason, not a silently dead thread
                self.error = SensorGarbage(f"{self.meter.name} read failed: {type(exc).__name__}: {exc}")
                self._stop.set()
                return None
            t_ns = (t0 + self._clock_ns()) // 2  # the midpoint of a slow read (a forked command) is its time
            try:
                value = self._accumulate(raw) if self.meter.kind == COUNTER else float(raw)
            except SensorError as exc:
                self.error = exc
                self._stop.set()
                return None
            self.samples.append((t_ns, value))
            return t_ns, value

    def _accumulate(self, raw) -> float:
        raw = tuple((float(v), float(r)) for v, r in raw)
        if self._last_raw is not None:
            if len(raw) != len(self._last_raw):
                raise SensorVanished(f"{self.meter.source}: the number of counters changed during the window")
            for (prev, _), (cur, range_j) in zip(self._last_raw, raw):
                self._cumulative_j += unwrap_delta_j(prev, cur, range_j, self.meter.source)
        self._last_raw = raw
        return self._cumulative_j

    def start(self) -> "PowerSampler":
        self.read_now()
        self._thread = threading.Thread(target=self._loop, name=f"power-sampler-{self.meter.name}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_t = time.monotonic() + self.period_s
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            self.read_now()
            # Fixed-rate schedule; a slow read (a forked command) just pushes the next one out.
            next_t = max(next_t + self.period_s, time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def snapshot(self) -> List[Tuple[int, float]]:
        with self._lock:
            return list(self.samples)


def _interpolate(samples: Sequence[Tuple[int, float]], t_ns: int) -> float:
    times = [t for t, _ in samples]
    i = bisect.bisect_left(times, t_ns)
    if i <= 0:
        return samples[0][1]
    if i >= len(samples):
        return samples[-1][1]
    (ta, va), (tb, vb) = samples[i - 1], samples[i]
    return va if tb == ta else va + (vb - va) * (t_ns - ta) / (tb - ta)


@dataclass(frozen=True)
class WindowEnergy:
    """Raw (uncalibrated) energy over [t0, t1] and the power trace summary inside it."""
    energy_j: float
    duration_s: float
    samples: int
    min_power_w: float
    max_power_w: float

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")


def integrate_window(samples: Sequence[Tuple[int, float]], kind: str, t0_ns: int, t1_ns: int,
                     source: str = "sensor") -> WindowEnergy:
    """Energy over [t0_ns, t1_ns]: trapezoid of watts (instant) or cumulative-joule difference (counter).

    Edge values are interpolated linearly between the neighbouring samples; the window must be covered by samples
    on both sides, otherwise the energy would be extrapolated and is refused.
    """
    if t1_ns <= t0_ns:
        raise SensorTooFewSamples(f"{source}: empty window ({(t1_ns - t0_ns) / 1e9:.3f} s): nothing to integrate")
    duration_s = (t1_ns - t0_ns) / 1e9
    if len(samples) < 2 or samples[0][0] > t0_ns or samples[-1][0] < t1_ns:
        covered = f"{(samples[-1][0] - samples[0][0]) / 1e9:.3f} s" if samples else "nothing"
        raise SensorTooFewSamples(
            f"{source}: {len(samples)} samples covering {covered} do not cover the {duration_s:.3f} s window")
    inside = [(t, v) for t, v in samples if t0_ns < t < t1_ns]
    points = [(t0_ns, _interpolate(samples, t0_ns))] + inside + [(t1_ns, _interpolate(samples, t1_ns))]
    if kind == COUNTER:
        energy_j = points[-1][1] - points[0][1]
        powers = _counter_powers(points, COUNTER_SLICE_NS)
        if energy_j <= 0:
            raise SensorTooFewSamples(
                f"{source}: the energy counter did not move over {duration_s:.3f} s (too short a window?)")
    else:
        energy_j = sum((tb - ta) / 1e9 * (va + vb) / 2 for (ta, va), (tb, vb) in zip(points, points[1:]))
        powers = [v for _, v in points]
    return WindowEnergy(energy_j=energy_j, duration_s=duration_s, samples=len(inside),
                        min_power_w=min(powers), max_power_w=max(powers))


def _counter_powers(points: Sequence[Tuple[int, float]], slice_ns: int) -> List[float]:
    """Mean power over consecutive slices of >= slice_ns: between two close reads of a counter, the staleness of
    its last update (~1 ms) would dominate, so min/max come from slices, not from single sample gaps."""
    powers, (ta, va) = [], points[0]
    for tb, vb in points[1:]:
        if tb - ta >= slice_ns:
            powers.append((vb - va) / ((tb - ta) / 1e9))
            ta, va = tb, vb
    if not powers:
        powers.append((points[-1][1] - points[0][1]) / ((points[-1][0] - points[0][0]) / 1e9))
    return powers


def measure_read_rate_hz(meter: PowerMeter, duration_s: float = 0.25, max_rate_hz: float = 100.0) -> float:
    """How often this meter can really be read here (a forked command is far slower than sysfs), capped at the
    sampler's own rate and at the hardware update rate. Raises the meter's SensorError if it cannot be read."""
    reads = 0
    start = time.monotonic()
    deadline = start + duration_s
    while True:
        meter.read()
        reads += 1
        now = time.monotonic()
        if now >= deadline or reads >= max_rate_hz * duration_s:
            break
    rate = reads / max(now - start, 1e-9)
    caps = [rate, max_rate_hz] + ([1.0 / meter.update_period_s] if meter.update_period_s > 0 else [])
    return min(caps)


def required_window_s(meter: PowerMeter, sample_rate_hz: float, requested_s: float = 0.0) -> float:
    """Window for a meaningful energy: >= 2 s, >= 20 sensor periods, the meter's own minimum (fuel gauge: 30 s)."""
    period_s = 1.0 / sample_rate_hz if sample_rate_hz > 0 else meter.update_period_s
    return max(2.0, 20.0 * max(period_s, meter.update_period_s), meter.min_window_s, requested_s)


def sysfs_root(root: Optional[str] = None) -> str:
    """The root every sysfs reader joins its paths to: the argument, else $FLEETNAS_SYSFS_ROOT, else '/'
    (the agent-wide rule of fleetnas.agent.board.sysfs)."""
    return str(resolve_root(root))


def under_root(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))
