"""Timing statistics and the timed loops (methodology: ../shared/guides/measurement.md, "Timing, per candidate").

- ``warm_up(run, runs, min_s)``: at least ``runs`` calls AND at least ``min_s`` seconds.
- ``timed_block(run, min_runs, min_s)``: per-inference ``perf_counter_ns`` durations, at least ``min_runs`` AND
  ``min_s``. The loop body is the call and two clock reads; nothing else (no observer, no logging, no allocation
  beyond a list append) so the agent's number matches the runtime timed directly.
- ``latency_stats(times_ns)``: n, min, median (primary), p90, p99 (linear interpolation), mean, std (sample, ddof=1),
  CV = std / mean, max; all in milliseconds.
- ``block_median_cv(blocks)``: sample std of the block medians / their mean: the drift indicator.
- ``classify_stability(cv)``: <= 3 % STABLE, 3-10 % NOISY, > 10 % (or any throttle event) UNSTABLE.
"""
from __future__ import annotations

import math
import time
from typing import Callable, List, Sequence

import numpy as np

from fleetnas.agent.records import LatencyStats, Stability

STABLE_MAX_CV = 0.03
NOISY_MAX_CV = 0.10


def warm_up(run: Callable[[], object], runs: int, min_s: float) -> int:
    """Run until both minimums are met; returns how many runs it took."""
    clock = time.perf_counter_ns
    min_ns = int(min_s * 1e9)
    start = clock()
    n = 0
    while n < runs or clock() - start < min_ns:
        run()
        n += 1
    return n


def timed_block(run: Callable[[], object], min_runs: int, min_s: float) -> List[int]:
    """Per-inference durations in ns; stops once it has >= min_runs AND the block lasted >= min_s."""
    clock = time.perf_counter_ns
    times: List[int] = []
    append = times.append
    min_ns = int(min_s * 1e9)
    start = clock()
    while True:
        t0 = clock()
        run()
        t1 = clock()
        append(t1 - t0)
        if len(times) >= min_runs and t1 - start >= min_ns:
            return times


def latency_stats(times_ns: Sequence[int]) -> LatencyStats:
    if len(times_ns) == 0:
        raise ValueError("latency_stats needs at least one timing")
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    return LatencyStats(n=int(ms.size), min_ms=float(ms.min()), median_ms=float(p50), p90_ms=float(p90),
                        p99_ms=float(p99), mean_ms=mean, std_ms=std, cv=std / mean if mean > 0 else float("nan"),
                        max_ms=float(ms.max()))


def block_median_cv(blocks: Sequence[LatencyStats]) -> float:
    """CV of the blocks' medians; nan with fewer than two blocks (drift cannot be judged from one)."""
    medians = np.asarray([b.median_ms for b in blocks], dtype=np.float64)
    if medians.size < 2 or medians.mean() <= 0:
        return float("nan")
    return float(medians.std(ddof=1) / medians.mean())


def classify_stability(cv: float, throttled: bool = False) -> Stability:
    """A nan CV (a single block) is not evidence of instability: it is classified on the throttle flag alone."""
    if throttled:
        return Stability.UNSTABLE
    if math.isnan(cv) or cv <= STABLE_MAX_CV:
        return Stability.STABLE
    if cv <= NOISY_MAX_CV:
        return Stability.NOISY
    return Stability.UNSTABLE
