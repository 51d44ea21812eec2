"""Fakes for power hardware CI lacks: a known power profile over time, sysfs trees that follow it, fake commands.

The profile is a function of CLOCK_MONOTONIC, which the sampler, the worker and a forked fake command share, so
the energy a meter integrates can be compared with the profile's exact integral.
"""
from __future__ import annotations

import json
import math
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class SineProfile:
    """P(t) = base_w + amp_w * sin(2 pi (t - start_s) / period_s), t on time.monotonic()."""
    start_s: float
    base_w: float = 5.0
    amp_w: float = 2.0
    period_s: float = 0.8

    def power_w(self, t_s: float) -> float:
        return self.base_w + self.amp_w * math.sin(2 * math.pi * (t_s - self.start_s) / self.period_s)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        w = 2 * math.pi / self.period_s
        def prim(t: float) -> float:
            return self.base_w * t - self.amp_w / w * math.cos(w * (t - self.start_s))
        return prim(t1_s) - prim(t0_s)

    def to_json(self) -> str:
        return json.dumps({"start_s": self.start_s, "base_w": self.base_w, "amp_w": self.amp_w,
                           "period_s": self.period_s})


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old or the new value, never a half-written file (as with a real sysfs attribute)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ProfileDriver:
    """Rewrites fake sysfs files every ``period_s`` from the profile: write(power_w, energy_since_start_j)."""

    def __init__(self, profile: SineProfile, write: Callable[[float, float], None], period_s: float = 0.002):
        self.profile, self.write, self.period_s = profile, write, period_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._last_write_s: Optional[float] = None
        self.max_gap_s = 0.0   # longest time the files went without a rewrite (a stalled writer: stale readings)

    def step(self) -> None:
        with self._lock:
            if self.paused.is_set():
                return
            now = time.monotonic()
            self.write(self.profile.power_w(now), self.profile.energy_j(self.profile.start_s, now))
            done = time.monotonic()
            if self._last_write_s is not None:
                self.max_gap_s = max(self.max_gap_s, done - self._last_write_s)
            self._last_write_s = done

    def pause(self) -> None:
        """Stop rewriting (waiting for a write in progress) so a test can break the files."""
        with self._lock:
            self.paused.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.step()
            except OSError:  # a test removed the tree on purpose
                pass

    def __enter__(self) -> "ProfileDriver":
        self.step()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class StarvationWatch:
    """How far a fake sensor fell behind while the block ran: how late a thread of this process wakes from 5 ms
    sleeps, and the longest gap between a followed `ProfileDriver`'s writes. A fake sensor is a thread (or a forked
    command) of the test machine: when the machine starves it (CPU, or a file write blocked for tens of ms), it falls
    behind its profile, which a real sensor does not, and comparing the meter with the profile then tests the fake."""

    def __init__(self, tick_s: float = 0.005) -> None:
        self.tick_s, self._own_delay_s = tick_s, 0.0
        self._drivers: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def follow(self, driver: "ProfileDriver") -> None:
        self._drivers.append(driver)

    @property
    def max_delay_s(self) -> float:
        return max([self._own_delay_s] + [d.max_gap_s - d.period_s for d in self._drivers])

    def _loop(self) -> None:
        while True:
            t0 = time.monotonic()
            if self._stop.wait(self.tick_s):
                return
            self._own_delay_s = max(self._own_delay_s, time.monotonic() - t0 - self.tick_s)

    def __enter__(self) -> "StarvationWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def unstarved(measure: Callable[[int, StarvationWatch], object], attempts: int = 3, max_delay_s: float = 0.03):
    """``measure(attempt, watch)`` again (a fresh fake each time, its driver followed by ``watch``) while the fake fell
    behind during it; the last attempt counts whatever happened. Only a starved fake triggers another attempt, never
    a wrong result."""
    for attempt in range(attempts):
        with StarvationWatch() as watch:
            result = measure(attempt, watch)
        if watch.max_delay_s <= max_delay_s:
            break
    return result


def fake_command(bin_dir: Path, name: str, body: str) -> Path:
    """A Python executable on PATH. ``body`` sees ``args``, ``state`` (state.json beside it) and ``profile``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable} -SE\n"
        "import json, math, os, sys, time\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "state = json.load(open(os.path.join(here, 'state.json')))\n"
        "p = state.get('profile') or {}\n"
        "def profile(t):\n"
        "    return p['base_w'] + p['amp_w'] * math.sin(2 * math.pi * (t - p['start_s']) / p['period_s'])\n"
        "args = sys.argv[1:]\n"
        + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def set_command_state(bin_dir: Path, **state) -> None:
    path = bin_dir / "state.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(state)
    write_atomic(path, json.dumps(current))


def run_unprivileged(fn: Callable[[], object]) -> Optional[str]:
    """Run fn as an unprivileged user and return 'ExceptionName:message' of what it raised (None if nothing).

    Root reads any file whatever its mode, so the permission case is only real for another user: as root we fork
    and drop to nobody (65534) before calling fn; as a normal user fn runs here.
    """
    if os.geteuid() != 0:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the caller asserts on the type
            return type(exc).__name__ + ":" + str(exc)
        return None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        name = "None"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            fn()
        except BaseException as exc:  # noqa: BLE001
            name = type(exc).__name__ + ":" + str(exc)
        os.write(write_end, name.encode()[:4000])
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        out = handle.read().decode()
    os.waitpid(pid, 0)
    return None if out == "None" else out
