"""Does energy measurement disturb timing, and how exact is the integration?

    python benchmarks/energy_overhead.py [--pairs 3] [--json]

1. Latency with energy on vs off for the same model (the agent's reference ONNX model, real worker, real
   onnxruntime), alternating off/on ``--pairs`` times. Two ratios (target <= 1.03):
   - steady: median of the timed blocks, on / off (the sampler is not running then: this checks it stays so);
   - window: mean latency inside the energy window (window_s / inferences, sampler thread polling at 100 Hz) over
     the mean latency of the energy-off run's timed blocks;
   - same run: that window mean over the timed blocks' mean of the same worker (sampler off then), seconds apart;
   - interleaved: one inference process timing 0.5 s slices while the parent's sampler is switched on and off in
     ABBA order; median of slice medians on / off. The least exposed to other load on a shared machine.
   The board's own meter is used when detect finds a readable one; otherwise a synthetic INA3221 hwmon tree whose
   current follows a sine (the same file reads as on a Jetson), and the output says so.
2. The sampler's own CPU cost (process CPU seconds per wall second while it polls a sysfs file at 100 Hz).
3. Integration error on synthetic profiles, sampled at the rates real sensors give (INA3221 100 Hz, vcgencmd
   ~10 Hz, fuel gauge 1 Hz over 30 s, RAPL counter with wrap-around), with timestamp jitter; exact integrals known.
Timings on a shared machine are noisy: run it under ``nice`` and read the pairs, not one number.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from fleetnas.agent.measure.hygiene import HygieneState, measure_with_hygiene
from fleetnas.agent.power.base import COUNTER, INSTANT, integrate_window
from fleetnas.agent.power.detect import select_meter
from fleetnas.agent.power.jetson import JetsonMeter
from fleetnas.agent.records import EnergyConfig, MeasureJob, RuntimeOptions, TimingConfig
from fleetnas.agent.measure.reference_model import write_reference_model

TIMING = TimingConfig(warmup_runs=10, warmup_s=1.0, blocks=5, min_runs_per_block=20, min_block_s=0.5, timeout_s=120)
HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon0"


def synthetic_meter(root: Path, stop: threading.Event) -> JetsonMeter:
    hw = root / HWMON
    hw.mkdir(parents=True)
    (hw / "in1_label").write_text("VDD_IN\n")
    (hw / "in1_input").write_text("5000\n")
    curr = hw / "curr1_input"

    def drive() -> None:
        while not stop.wait(0.01):  # the fake sensor itself must cost little CPU
            tmp = hw / "curr1_input.tmp"
            tmp.write_text(f"{round(1000 + 400 * math.sin(time.monotonic() * 7.0))}\n")
            os.replace(tmp, curr)
    curr.write_text("1000\n")
    threading.Thread(target=drive, daemon=True).start()
    meter = JetsonMeter(str(root))
    meter.sample_rate_hz = 100.0
    return meter


def latency_ratios(pairs: int, meter, model: Path) -> dict:
    options = RuntimeOptions(threads=1)
    steady, window, same_run, rows = [], [], [], []
    state = HygieneState()
    for _ in range(pairs):
        off = measure_with_hygiene(MeasureJob(model, "onnx", "onnxruntime", options, TIMING), None, state)
        on = measure_with_hygiene(MeasureJob(model, "onnx", "onnxruntime", options, TIMING,
                                             EnergyConfig(enabled=True, idle_s=1.0)), meter, state)
        if off.overall is None or on.overall is None or on.energy is None:
            raise SystemExit(f"measurement failed: off={off.outcome} {off.message} on={on.outcome} {on.message} "
                             f"{on.energy_unavailable_reason}")
        window_mean_ms = on.energy.window_s / on.energy.inferences * 1e3
        steady.append(on.overall.median_ms / off.overall.median_ms)
        window.append(window_mean_ms / off.overall.mean_ms)
        same_run.append(window_mean_ms / on.overall.mean_ms)
        rows.append({"off_median_ms": off.overall.median_ms, "on_median_ms": on.overall.median_ms,
                     "off_mean_ms": off.overall.mean_ms, "window_mean_ms": window_mean_ms,
                     "energy_mj": on.energy.energy_mj, "samples": on.energy.samples,
                     "sample_rate_hz": on.energy.sample_rate_hz})
    return {"steady_median_ratio": statistics.median(steady), "window_mean_ratio": statistics.median(window),
            "same_run_ratio": statistics.median(same_run),
            "pairs": rows}


def _inference_slices(conn, model_path: str) -> None:
    """Child process: one onnxruntime session (1 thread); per request, back-to-back inferences for slice_s seconds,
    answering the slice's median latency in ms."""
    import numpy as np
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    feed = {inp.name: np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape],
                                                                dtype=np.float32)}
    for _ in range(50):
        session.run(None, feed)
    while True:
        slice_s = conn.recv()
        if slice_s is None:
            return
        times, end = [], time.perf_counter() + slice_s
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            session.run(None, feed)
            times.append(time.perf_counter_ns() - t0)
        conn.send(statistics.median(times) / 1e6)


def interleaved_ratio(meter, model: Path, quartets: int = 6, slice_s: float = 0.5) -> dict:
    """The sampler thread toggled on/off in ABBA order between slices of one inference process: slow changes in
    the machine's load cancel out, what is left is the sampler's own effect on latency."""
    import multiprocessing
    from fleetnas.agent.power.base import PowerSampler
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_inference_slices, args=(child, str(model)), daemon=True)
    proc.start()
    on, off = [], []
    try:
        for _ in range(quartets):
            for sampling in (False, True, True, False):
                sampler = PowerSampler(meter, 0.01).start() if sampling else None
                parent.send(slice_s)
                (on if sampling else off).append(parent.recv())
                if sampler is not None:
                    sampler.stop()
        parent.send(None)
    finally:
        proc.join(timeout=10)
    return {"interleaved_ratio": statistics.median(on) / statistics.median(off),
            "interleaved_on_median_ms": statistics.median(on), "interleaved_off_median_ms": statistics.median(off),
            "interleaved_slices": len(on) + len(off)}


def sampler_cpu_fraction(root: Path, duration_s: float = 2.0) -> dict:
    """CPU time the sampler thread costs per second of wall time (a static tree: no fake writer in the count).
    Unlike latency ratios this hardly depends on the machine's load: it bounds what sampling can take away."""
    from fleetnas.agent.power.base import PowerSampler
    hw = root / HWMON
    hw.mkdir(parents=True)
    for name, text in (("in1_label", "VDD_IN"), ("in1_input", "5000"), ("curr1_input", "1000")):
        (hw / name).write_text(text + "\n")
    meter = JetsonMeter(str(root))
    cpu0, wall0 = time.process_time(), time.monotonic()
    sampler = PowerSampler(meter, 0.01).start()
    time.sleep(duration_s)
    sampler.stop()
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    return {"sampler_cpu_fraction": cpu_s / wall_s, "sampler_rate_hz": len(sampler.samples) / wall_s}


def _trace(power, t0_s: float, t1_s: float, rate_hz: float, jitter: float, rng: random.Random, kind: str):
    samples, t, cumulative, last_t = [], t0_s - 1.0 / rate_hz, 0.0, None
    while t <= t1_s + 1.0 / rate_hz:
        if kind == COUNTER:
            cumulative += 0.0 if last_t is None else _exact(power, last_t, t)
            samples.append((int(t * 1e9), cumulative))
        else:
            samples.append((int(t * 1e9), power(t)))
        last_t = t
        t += (1.0 / rate_hz) * (1.0 + rng.uniform(-jitter, jitter))
    return samples


def _exact(power, a: float, b: float, steps: int = 2000) -> float:
    h = (b - a) / steps
    return h * (sum(power(a + i * h) for i in range(1, steps)) + (power(a) + power(b)) / 2)


def integration_errors(seed: int = 0) -> list:
    rng = random.Random(seed)
    cases = [
        ("ina3221 sine 1.3 Hz", lambda t: 5 + 2 * math.sin(8.0 * t), 100.0, 2.0, INSTANT),
        ("ina3221 square 4 Hz", lambda t: 7.0 if (t * 4) % 1 < 0.5 else 3.0, 100.0, 2.0, INSTANT),
        ("vcgencmd sine 0.25 Hz", lambda t: 4 + 1.5 * math.sin(1.6 * t), 10.0, 2.0, INSTANT),
        ("fuel gauge ramp", lambda t: 2 + 0.05 * t, 1.0, 30.0, INSTANT),
        ("rapl counter sine", lambda t: 20 + 8 * math.sin(3.0 * t), 100.0, 2.0, COUNTER),
    ]
    out = []
    for name, power, rate, window_s, kind in cases:
        t0 = 10.0 + rng.random()
        samples = _trace(power, t0, t0 + window_s, rate, 0.1, rng, kind)
        got = integrate_window(samples, kind, int(t0 * 1e9), int((t0 + window_s) * 1e9)).energy_j
        want = _exact(power, int(t0 * 1e9) / 1e9, int((t0 + window_s) * 1e9) / 1e9, 20000)
        out.append({"profile": name, "rate_hz": rate, "window_s": window_s, "error": (got - want) / want})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="off/on measurement pairs (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        meter, info = select_meter()
        sensor = f"{info.name} (this board)"
        if not info.readable:
            meter, sensor = synthetic_meter(Path(tmp) / "sysfs", stop), "synthetic INA3221 hwmon tree (no sensor here)"
        model = write_reference_model(Path(tmp), "onnx", rows=16, width=512, depth=4, seed=0)  # ~1 ms: above timer noise
        ratios = latency_ratios(args.pairs, meter, model)
        ratios.update(interleaved_ratio(meter, model))
        stop.set()
        ratios.update(sampler_cpu_fraction(Path(tmp) / "static"))
    errors = integration_errors()
    report = {"sensor": sensor, **ratios, "target_ratio": 1.03, "integration": errors}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"sensor: {sensor}")
    for i, row in enumerate(ratios["pairs"]):
        print(f"  pair {i}: median off {row['off_median_ms']:.4f} ms, on {row['on_median_ms']:.4f} ms; "
              f"window mean {row['window_mean_ms']:.4f} ms vs off mean {row['off_mean_ms']:.4f} ms; "
              f"{row['energy_mj']:.4f} mJ/inference from {row['samples']} samples at {row['sample_rate_hz']:.0f} Hz")
    print(f"latency ratio energy on/off, steady median: {ratios['steady_median_ratio']:.4f} (target <= 1.03)")
    print(f"latency ratio energy on/off, window mean:   {ratios['window_mean_ratio']:.4f} (target <= 1.03)")
    print(f"latency ratio sampler on/off, same worker:  {ratios['same_run_ratio']:.4f} (target <= 1.03)")
    print(f"latency ratio sampler on/off, interleaved ABBA slices of one process: {ratios['interleaved_ratio']:.4f} "
          f"({ratios['interleaved_on_median_ms']:.4f} vs {ratios['interleaved_off_median_ms']:.4f} ms, "
          f"{ratios['interleaved_slices']} slices; target <= 1.03)")
    print(f"sampler cost: {ratios['sampler_cpu_fraction']:.2%} of one core at {ratios['sampler_rate_hz']:.0f} Hz "
          "(sysfs reads, static tree)")
    for e in errors:
        print(f"integration error {e['profile']:<24} {e['rate_hz']:>5g} Hz {e['window_s']:>4g} s: {e['error']:+.3%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
