"""fleetnas.agent.measure.timing: statistics against hand-computed values, loop minimums, stability classes."""
import math
import time

import numpy as np
import pytest

from fleetnas.agent.records import LatencyStats, Stability
from fleetnas.agent.measure.timing import (block_median_cv, classify_stability, latency_stats, timed_block, warm_up)


def test_latency_stats_match_hand_computed_values():
    times_ns = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000]  # 1, 2, 3, 4, 10 ms
    s = latency_stats(times_ns)
    assert s.n == 5
    assert s.min_ms == 1.0 and s.max_ms == 10.0
    assert s.median_ms == 3.0
    assert s.mean_ms == pytest.approx(4.0)
    # sample std (ddof=1): sqrt((9 + 4 + 1 + 0 + 36) / 4) = sqrt(12.5)
    assert s.std_ms == pytest.approx(math.sqrt(12.5))
    assert s.cv == pytest.approx(math.sqrt(12.5) / 4.0)
    # linear interpolation: p90 sits 60 % of the way from 4 to 10, p99 96 % of the way
    assert s.p90_ms == pytest.approx(4.0 + 0.6 * 6.0)
    assert s.p99_ms == pytest.approx(4.0 + 0.96 * 6.0)


def test_latency_stats_of_one_sample_and_of_none():
    s = latency_stats([2_500_000])
    assert (s.n, s.median_ms, s.std_ms, s.cv) == (1, 2.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        latency_stats([])


def test_latency_stats_agree_with_numpy_on_random_data():
    rng = np.random.default_rng(7)
    times_ns = (rng.lognormal(0.0, 0.3, size=1001) * 1e6).astype(np.int64)
    s = latency_stats(times_ns.tolist())
    ms = times_ns / 1e6
    assert s.median_ms == pytest.approx(np.median(ms))
    assert s.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert s.std_ms == pytest.approx(np.std(ms, ddof=1))


def _stats(median_ms: float) -> LatencyStats:
    return LatencyStats(n=20, min_ms=median_ms, median_ms=median_ms, p90_ms=median_ms, p99_ms=median_ms,
                        mean_ms=median_ms, std_ms=0.0, cv=0.0, max_ms=median_ms)


def test_block_median_cv():
    medians = [10.0, 10.2, 9.8, 10.1, 9.9]
    assert block_median_cv([_stats(m) for m in medians]) == pytest.approx(np.std(medians, ddof=1) / 10.0)
    assert block_median_cv([_stats(5.0)] * 4) == 0.0
    assert math.isnan(block_median_cv([_stats(5.0)]))


@pytest.mark.parametrize("cv, throttled, expected", [
    (0.0, False, Stability.STABLE), (0.03, False, Stability.STABLE), (0.031, False, Stability.NOISY),
    (0.10, False, Stability.NOISY), (0.101, False, Stability.UNSTABLE), (0.0, True, Stability.UNSTABLE),
    (float("nan"), False, Stability.STABLE), (float("nan"), True, Stability.UNSTABLE),
])
def test_classify_stability_thresholds(cv, throttled, expected):
    assert classify_stability(cv, throttled=throttled) is expected


class _Counter:
    def __init__(self, sleep_s: float = 0.0):
        self.calls, self.sleep_s = 0, sleep_s

    def __call__(self):
        self.calls += 1
        if self.sleep_s:
            time.sleep(self.sleep_s)


def test_warm_up_needs_both_runs_and_seconds():
    fast = _Counter()
    t0 = time.perf_counter()
    n = warm_up(fast, runs=3, min_s=0.05)
    assert time.perf_counter() - t0 >= 0.05 and n == fast.calls and n > 3  # seconds were the binding minimum
    slow = _Counter(sleep_s=0.002)
    assert warm_up(slow, runs=25, min_s=0.0) == 25 == slow.calls   # runs were the binding minimum
    assert warm_up(_Counter(), runs=0, min_s=0.0) == 0


def test_timed_block_needs_both_runs_and_seconds_and_times_each_call():
    slow = _Counter(sleep_s=0.001)
    times = timed_block(slow, min_runs=7, min_s=0.0)
    assert len(times) == 7 == slow.calls
    assert all(t >= 1_000_000 for t in times)  # every entry covers one 1 ms call
    t0 = time.perf_counter()
    times = timed_block(_Counter(), min_runs=1, min_s=0.03)
    assert time.perf_counter() - t0 >= 0.03 and len(times) > 1
