"""Jetson (hwmon, IIO, Thor), Android battery and RAPL meters against fake sysfs trees following a power profile."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetnas.agent.power.android import AndroidBatteryMeter, voltage_scale
from fleetnas.agent.power.base import (
    SensorGarbage, SensorNotValid, SensorUnavailable, integrate_window, required_window_s,
    unwrap_delta_j)
from fleetnas.agent.power.jetson import JetsonMeter
from fleetnas.agent.power.rapl import RaplMeter
from power_contract import Fake, PowerMeterContract
from power_fakes import ProfileDriver, write_atomic


class SysfsFake(Fake):
    """One file carries the profile (``key``); the rest of the tree is static."""

    def __init__(self, root: Path, profile, files: dict, key: str, write, build):
        self.root, self.key, self._build = root, root / key, build
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        self.driver = ProfileDriver(profile, write)

    def build(self):
        return self._build(str(self.root))

    def running(self):
        return self.driver

    def vanish(self):
        self.driver.pause()
        os.remove(self.key)

    def garbage(self):
        self.driver.pause()
        write_atomic(self.key, "N/A\n")

    def deny(self):
        self.driver.pause()
        os.chmod(self.key, 0)


HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"


class TestJetsonHwmon(PowerMeterContract):
    """JetPack 5/6 Orin NX: VDD_IN is the total; its sub-rails carry large values that must never be added."""

    def setup_fake(self, tmp_path, profile, monkeypatch):
        def write(power_w, _):
            write_atomic(tmp_path / HWMON / "curr1_input", f"{round(power_w / 5.0 * 1000)}\n")
            write_atomic(tmp_path / HWMON / "curr2_input", f"{round(power_w * 0.5 / 5.0 * 1000)}\n")
        files = {f"{HWMON}/name": "ina3221\n",
                 f"{HWMON}/in1_label": "VDD_IN\n", f"{HWMON}/in1_input": "5000\n",
                 f"{HWMON}/in2_label": "VDD_CPU_GPU_CV\n", f"{HWMON}/in2_input": "5000\n",
                 f"{HWMON}/in3_label": "VDD_SOC\n", f"{HWMON}/in3_input": "5000\n", f"{HWMON}/curr3_input": "900\n",
                 f"{HWMON}/in7_label": "sum of shunt voltages\n", f"{HWMON}/in7_input": "80\n"}
        return SysfsFake(tmp_path, profile, files, f"{HWMON}/curr1_input", write, JetsonMeter)

    def test_total_rail_only_and_units(self, fake):
        with fake.running():
            meter = fake.build()
        assert meter.total_rail == "VDD_IN"
        assert meter.rails == ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC")  # "sum of shunt voltages" has no current
        assert meter.units == "mV,mA"


IIO = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"


class TestJetsonIio(PowerMeterContract):
    """JetPack 4 Nano: in_power{N}_input in mW, POM_5V_IN the total."""

    def setup_fake(self, tmp_path, profile, monkeypatch):
        def write(power_w, _):
            write_atomic(tmp_path / IIO / "in_power0_input", f"{round(power_w * 1000)}\n")
        files = {f"{IIO}/rail_name_0": "POM_5V_IN\n", f"{IIO}/rail_name_1": "POM_5V_GPU\n",
                 f"{IIO}/in_power1_input": "2500\n", f"{IIO}/rail_name_2": "POM_5V_CPU\n",
                 f"{IIO}/in_power2_input": "1500\n"}
        return SysfsFake(tmp_path, profile, files, f"{IIO}/in_power0_input", write, JetsonMeter)

    def test_family_name_and_total(self, fake):
        with fake.running():
            meter = fake.build()
        assert (meter.name, meter.total_rail, meter.units) == ("jetson-ina3221x", "POM_5V_IN", "mW")


THOR_238 = "sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon5"
THOR_3221 = "sys/bus/i2c/drivers/ina3221/2-0040/hwmon/hwmon4"


class TestJetsonThor(PowerMeterContract):
    """Thor: INA238 power1_input in µW (the carrier's VIN, the total) beside an INA3221 in mV/mA."""

    def setup_fake(self, tmp_path, profile, monkeypatch):
        def write(power_w, _):
            write_atomic(tmp_path / THOR_238 / "power1_input", f"{round(power_w * 1e6)}\n")
        files = {f"{THOR_238}/name": "ina238\n", f"{THOR_3221}/in1_label": "VDD_GPU\n",
                 f"{THOR_3221}/in1_input": "19000\n", f"{THOR_3221}/curr1_input": "400\n"}
        return SysfsFake(tmp_path, profile, files, f"{THOR_238}/power1_input", write, JetsonMeter)

    def test_mixed_units_listed_and_vin_is_the_total(self, fake):
        with fake.running():
            meter = fake.build()
        assert meter.units == "mV,mA,uW" and set(meter.rails) == {"VDD_GPU", "VIN"} and meter.total_rail == "VIN"


def _agx_tree(root: Path) -> None:
    for chip, labels in (("1-0040", ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")), ("1-0041", ("NC", "VDDQ_VDD2_1V8AO", "NC"))):
        hw = root / f"sys/bus/i2c/drivers/ina3221/{chip}/hwmon/hwmon{chip[-1]}"
        hw.mkdir(parents=True)
        for n, label in enumerate(labels, start=1):
            (hw / f"in{n}_label").write_text(label + "\n")
            (hw / f"in{n}_input").write_text("5000\n")
            (hw / f"curr{n}_input").write_text(f"{n * 100}\n")


def test_jetson_two_chips_known_total_is_the_sum_of_disjoint_module_rails(tmp_path):
    _agx_tree(tmp_path)
    meter = JetsonMeter(str(tmp_path))
    assert set(meter.rails) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}  # NC skipped
    assert meter.total_rail == "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO"
    assert meter.read() == pytest.approx(5.0 * (0.1 + 0.2 + 0.3 + 0.2))


def test_jetson_configured_total_and_its_errors(tmp_path):
    _agx_tree(tmp_path)
    assert JetsonMeter(str(tmp_path), total_rail="VDD_GPU_SOC").read() == pytest.approx(0.5)
    with pytest.raises(SensorUnavailable, match="VDD_NOPE.*rails on this board"):
        JetsonMeter(str(tmp_path), total_rail="VDD_NOPE")


def test_jetson_without_known_total_asks_for_config(tmp_path):
    hw = tmp_path / HWMON
    hw.mkdir(parents=True)
    for name, text in (("in1_label", "VDD_GPU"), ("in1_input", "5000"), ("curr1_input", "100")):
        (hw / name).write_text(text)
    with pytest.raises(SensorUnavailable, match="power.total_rail"):
        JetsonMeter(str(tmp_path))
    with pytest.raises(SensorUnavailable, match="no Jetson"):
        JetsonMeter(str(tmp_path / "empty"))


BATTERY = "sys/class/power_supply/battery"


class TestAndroidBattery(PowerMeterContract):
    """Most vendors: µV and µA, discharge negative."""

    def setup_fake(self, tmp_path, profile, monkeypatch):
        def write(power_w, _):
            write_atomic(tmp_path / BATTERY / "current_now", f"{round(-power_w / 3.85 * 1e6)}\n")
        files = {f"{BATTERY}/voltage_now": "3850000\n", f"{BATTERY}/status": "Discharging\n",
                 "sys/class/power_supply/usb/online": "0\n"}
        return SysfsFake(tmp_path, profile, files, f"{BATTERY}/current_now", write, AndroidBatteryMeter)

    def test_fuel_gauge_needs_30_s_windows(self, fake):
        with fake.running():
            meter = fake.build()
        assert required_window_s(meter, sample_rate_hz=100.0) == 30.0

    def test_plugged_in_is_not_valid(self, fake, tmp_path):
        with fake.running():
            meter = fake.build()
            (tmp_path / "sys/class/power_supply/usb/online").write_text("1\n")
            with pytest.raises(SensorNotValid, match="unplug"):
                meter.read()
            (tmp_path / "sys/class/power_supply/usb/online").write_text("0\n")
            (tmp_path / BATTERY / "status").write_text("Charging\n")
            with pytest.raises(SensorNotValid, match="Charging"):
                meter.read()


def test_android_millivolt_milliamp_vendor_with_positive_discharge(tmp_path):
    (tmp_path / BATTERY).mkdir(parents=True)
    (tmp_path / BATTERY / "voltage_now").write_text("4000\n")   # mV
    (tmp_path / BATTERY / "current_now").write_text("500\n")    # mA, positive while discharging
    assert AndroidBatteryMeter(str(tmp_path)).read() == pytest.approx(2.0)
    (tmp_path / BATTERY / "voltage_now").write_text("4000000\n")  # µV with mA current: configured
    assert AndroidBatteryMeter(str(tmp_path), current_unit="mA").read() == pytest.approx(2.0)
    assert voltage_scale(3_700_000) == 1e-6 and voltage_scale(3700) == 1e-3
    with pytest.raises(SensorGarbage, match="neither"):
        voltage_scale(12)


RAPL = "sys/class/powercap/intel-rapl:0"
RANGE_UJ = 2_000_000  # a 2 J range: the counter wraps every ~0.3 s, many times per window


class TestRapl(PowerMeterContract):
    window_s = 2.0  # a counter's error is P x (staleness at t1 - at t0): a longer window dilutes a starved fake writer
    def setup_fake(self, tmp_path, profile, monkeypatch):
        def write(_, energy_j):
            write_atomic(tmp_path / RAPL / "energy_uj", f"{int(energy_j * 1e6) % RANGE_UJ}\n")
            write_atomic(tmp_path / RAPL / "intel-rapl:0:0/energy_uj", f"{int(energy_j * 0.6e6) % RANGE_UJ}\n")
        files = {f"{RAPL}/name": "package-0\n", f"{RAPL}/max_energy_range_uj": f"{RANGE_UJ}\n",
                 f"{RAPL}/intel-rapl:0:0/name": "core\n",
                 f"{RAPL}/intel-rapl:0:0/max_energy_range_uj": f"{RANGE_UJ}\n"}
        return SysfsFake(tmp_path, profile, files, f"{RAPL}/energy_uj", write, RaplMeter)

    def test_packages_only_never_their_subdomains(self, fake):
        with fake.running():
            meter = fake.build()
        assert meter.rails == ("package-0",) and meter.total_rail == "package-0"

    def test_permission_message_says_how_to_fix(self, fake):
        from power_fakes import run_unprivileged
        with fake.running():
            meter = fake.build()
            fake.deny()
            outcome = run_unprivileged(meter.read)
        assert "Linux 5.10" in outcome and "udev" in outcome and "root" in outcome


def test_counter_unwrap_rules():
    assert unwrap_delta_j(1.5, 0.5, 2.0, "x") == pytest.approx(1.0)
    assert unwrap_delta_j(0.5, 1.5, 2.0, "x") == pytest.approx(1.0)
    with pytest.raises(SensorGarbage, match="backwards"):
        unwrap_delta_j(1.5, 0.5, 0.0, "x")


def test_rapl_absent_and_sampler_rejects_too_short_coverage(tmp_path):
    with pytest.raises(SensorUnavailable, match="intel_rapl"):
        RaplMeter(str(tmp_path))
    with pytest.raises(Exception, match="do not cover"):
        integrate_window([(0, 1.0), (10, 1.0)], "instant", 5, 20)


def test_rapl_two_sockets_are_summed_and_psys_only_when_configured(tmp_path):
    for n, name, uj in ((0, "package-0", 1_000_000), (1, "package-1", 2_000_000), (2, "psys", 9_000_000)):
        d = tmp_path / f"sys/class/powercap/intel-rapl:{n}"
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{uj}\n")
        (d / "max_energy_range_uj").write_text("262143328850\n")
    meter = RaplMeter(str(tmp_path))
    assert meter.total_rail == "package-0+package-1"
    assert [v for v, _ in meter.read()] == pytest.approx([1.0, 2.0])
    psys = RaplMeter(str(tmp_path), total_rail="psys")
    assert [v for v, _ in psys.read()] == pytest.approx([9.0])
    with pytest.raises(SensorUnavailable, match="package-0, package-1, psys"):
        RaplMeter(str(tmp_path), total_rail="dram")


def test_an_empty_window_is_a_typed_sensor_result():
    from fleetnas.agent.power.base import SensorTooFewSamples
    with pytest.raises(SensorTooFewSamples, match="empty window"):
        integrate_window([(0, 1.0), (10, 1.0)], "instant", 5, 5)
