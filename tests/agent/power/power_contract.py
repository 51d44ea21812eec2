"""PowerMeterContract: what every power meter family must do, run against each family's fake hardware.

A family's test class subclasses it and implements ``setup_fake(tmp_path, profile, monkeypatch)`` returning a Fake:
``build()`` makes the meter, ``running()`` is a context manager during which readings follow the profile, and
``vanish()``, ``garbage()``, ``deny()`` break the sensor the way real boards do.
"""
from __future__ import annotations

import contextlib
import time

import pytest

from fleetnas.agent.power.base import (
    COUNTER, INSTANT, PowerSampler, SensorGarbage, SensorPermissionDenied, SensorVanished, integrate_window)
from power_fakes import SineProfile, run_unprivileged, unstarved


class Fake:
    def build(self):
        raise NotImplementedError

    def running(self):
        return contextlib.nullcontext()

    def vanish(self) -> None:
        raise NotImplementedError

    def garbage(self) -> None:
        raise NotImplementedError

    def deny(self) -> None:
        raise NotImplementedError


class PowerMeterContract:
    window_s = 1.5        # forked commands are slower: their classes use a longer window
    period_s = 3.0        # of the sine profile: fast enough to matter, slow enough that a fake starved of CPU on a
                          # loaded CI machine still follows it (a real sensor is not starved by our load)
    tolerance = 0.02      # integrated energy within 2 % of the profile: the accuracy the energy figures promise
    deny_as_other_user = True  # files: root reads anything, so denial is checked as nobody; commands deny by themselves

    def setup_fake(self, tmp_path, profile, monkeypatch) -> Fake:
        raise NotImplementedError

    @pytest.fixture
    def fake(self, tmp_path, monkeypatch):
        return self._fresh_fake(tmp_path, monkeypatch)

    def _fresh_fake(self, root, monkeypatch) -> Fake:
        root.mkdir(parents=True, exist_ok=True)
        profile = SineProfile(start_s=time.monotonic(), period_s=self.period_s)
        fake = self.setup_fake(root, profile, monkeypatch)
        fake.profile = profile
        return fake

    def test_describes_itself(self, fake):
        with fake.running():
            meter = fake.build()
        assert meter.name and meter.source and meter.units
        assert meter.kind in (INSTANT, COUNTER)
        assert meter.rails and meter.total_rail
        for part in meter.total_rail.split("+"):
            assert part in meter.rails

    def test_integrated_energy_matches_profile(self, fake, tmp_path, monkeypatch):
        def measure(attempt, watch):
            f = fake if attempt == 0 else self._fresh_fake(tmp_path / f"attempt{attempt}", monkeypatch)
            if hasattr(f, "driver"):
                watch.follow(f.driver)
            with f.running():
                meter = f.build()
                sampler = PowerSampler(meter, period_s=0.01).start()
                time.sleep(0.1)
                t0 = time.monotonic_ns()
                time.sleep(self.window_s)
                t1 = time.monotonic_ns()
                time.sleep(0.02)
                sampler.read_now()
                sampler.stop()
            return f, meter, sampler, t0, t1

        fake, meter, sampler, t0, t1 = unstarved(measure)
        assert sampler.error is None, sampler.error
        window = integrate_window(sampler.snapshot(), meter.kind, t0, t1, meter.name)
        expected_j = fake.profile.energy_j(t0 / 1e9, t1 / 1e9)
        assert window.energy_j == pytest.approx(expected_j, rel=self.tolerance)
        assert window.samples >= 3  # a forked command on a loaded machine: a few per second
        lo, hi = fake.profile.base_w - fake.profile.amp_w, fake.profile.base_w + fake.profile.amp_w
        # A sanity range only (a stalled fake writer skews one slice); the energy above is the accuracy check.
        assert lo * 0.75 <= window.min_power_w <= window.max_power_w <= hi * 1.25

    def test_vanished_sensor_is_typed(self, fake):
        with fake.running():
            meter = fake.build()
            fake.vanish()
            with pytest.raises(SensorVanished):
                meter.read()

    def test_garbage_value_is_typed(self, fake):
        with fake.running():
            meter = fake.build()
            fake.garbage()
            with pytest.raises(SensorGarbage):
                meter.read()

    def test_permission_denied_is_typed(self, fake):
        with fake.running():
            meter = fake.build()
            fake.deny()
            if self.deny_as_other_user:
                outcome = run_unprivileged(meter.read)
            else:
                with pytest.raises(SensorPermissionDenied) as caught:
                    meter.read()
                outcome = f"{type(caught.value).__name__}:{caught.value}"
        assert outcome is not None and outcome.startswith(SensorPermissionDenied.__name__), outcome

    def test_sampler_stops_with_the_error(self, fake):
        with fake.running():
            meter = fake.build()
            sampler = PowerSampler(meter, period_s=0.005).start()
            time.sleep(0.05)
            fake.garbage()
            deadline = time.monotonic() + 10.0  # a forked fake command can take long on a loaded machine
            while sampler.error is None and time.monotonic() < deadline:
                time.sleep(0.02)
            sampler.stop()
        assert isinstance(sampler.error, SensorGarbage)
        assert sampler.read_now() is None
