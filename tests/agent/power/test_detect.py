"""detect_meters / select_meter / PowerConfig over fake sysfs trees and an empty PATH."""
from __future__ import annotations

import json

import pytest

from fleetnas.agent.power.base import Calibration, SensorUnavailable
from fleetnas.agent.power.detect import PowerConfig, detect_meters, load_power_config, select_meter
from fleetnas.agent.power.null import NullMeter
from fleetnas.agent.records import PowerSensorInfo

HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
RAPL = "sys/class/powercap/intel-rapl:0"


def _tree(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")


@pytest.fixture(autouse=True)
def no_commands(tmp_path, monkeypatch):
    """No vcgencmd/termux/pynvml leaking in from the machine running the tests."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)


def test_a_jetson_is_found_readable_with_a_measured_rate(tmp_path):
    _tree(tmp_path, {f"{HWMON}/in1_label": "VDD_IN", f"{HWMON}/in1_input": "5000", f"{HWMON}/curr1_input": "1000",
                     f"{HWMON}/in2_label": "VDD_SOC", f"{HWMON}/in2_input": "5000", f"{HWMON}/curr2_input": "300"})
    infos = detect_meters(root=str(tmp_path))
    assert [i.name for i in infos] == ["jetson-ina"]
    info = infos[0]
    assert isinstance(info, PowerSensorInfo) and info.readable and info.message == ""
    assert info.rails == ("VDD_IN", "VDD_SOC") and info.total_rail == "VDD_IN" and info.units == "mV,mA"
    assert 10.0 < info.sample_rate_hz <= 100.0  # sysfs reads are fast: capped at the 100 Hz sampler rate
    meter, chosen = select_meter(root=str(tmp_path))
    assert chosen.name == "jetson-ina" and meter.read() == pytest.approx(5.0)
    assert meter.sample_rate_hz == chosen.sample_rate_hz


def test_no_sensor_is_one_unreadable_entry_and_a_null_meter(tmp_path):
    infos = detect_meters(root=str(tmp_path))
    assert len(infos) == 1 and infos[0].name == "none" and not infos[0].readable
    assert "external USB meter" in infos[0].message
    meter, info = select_meter(root=str(tmp_path))
    assert isinstance(meter, NullMeter) and not info.readable
    with pytest.raises(SensorUnavailable):
        meter.read()


def test_unreadable_rapl_is_listed_with_the_fix_and_not_selected(tmp_path):
    _tree(tmp_path, {f"{RAPL}/name": "package-0", f"{RAPL}/max_energy_range_uj": "262143328850",
                     f"{RAPL}/energy_uj": "not-a-number"})
    infos = detect_meters(root=str(tmp_path))
    assert [(i.name, i.readable) for i in infos] == [("rapl", False)]
    assert "not a number" in infos[0].message
    meter, info = select_meter(root=str(tmp_path))
    assert isinstance(meter, NullMeter) and meter.reason.startswith("rapl:")


def test_forced_family_that_is_absent_says_why(tmp_path):
    infos = detect_meters(root=str(tmp_path), config={"meter": "rpi5"})
    assert [(i.name, i.readable) for i in infos] == [("rpi5-pmic", False)]
    assert "vcgencmd not found" in infos[0].message
    assert detect_meters(root=str(tmp_path), config={"meter": "none"})[0].message.startswith("power.meter is 'none'")


def test_config_mapping_calibration_and_errors(tmp_path):
    config = PowerConfig.from_mapping({"device_class": "rpi5", "sample_period_s": 0.02,
                                       "calibration": {"rpi5": {"scale": 1.05, "offset_w": 0.3}}})
    assert config.calibration_for() == Calibration(1.05, 0.3)
    assert config.calibration_for("orin-nano") == Calibration()
    for bad, message in (({"metre": "x"}, "unknown power config keys"), ({"meter": "ina"}, "not one of"),
                         ({"calibration": {"rpi5": {"scale": -1}}}, "positive"),
                         ({"sample_period_s": 0}, "> 0")):
        with pytest.raises(ValueError, match=message):
            PowerConfig.from_mapping(bad)
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"power": {"device_class": "x86", "calibration": {"x86": {"scale": 0.9}}}}))
    assert load_power_config(str(path)).calibration_for() == Calibration(0.9, 0.0)
    toml = tmp_path / "agent.toml"
    toml.write_text('[power]\ndevice_class = "orin"\n[power.calibration.orin]\nscale = 1.2\noffset_w = -0.5\n')
    try:
        assert load_power_config(str(toml)).calibration_for() == Calibration(1.2, -0.5)
    except ValueError as exc:  # Python < 3.11 without tomli
        assert "tomli" in str(exc)


def test_a_forked_command_meter_reports_its_real_read_rate(tmp_path, monkeypatch):
    from power_fakes import fake_command, set_command_state
    fake_command(tmp_path / "bin", "vcgencmd",
                 "print('  VDD_CORE_A current(7)=2.0A')\nprint('  VDD_CORE_V volt(15)=0.8V')\n")
    set_command_state(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (info,) = detect_meters(root=str(tmp_path / "sysfs"))
    assert (info.name, info.readable, info.rails, info.total_rail) == ("rpi5-pmic", True, ("VDD_CORE",), "VDD_CORE")
    assert 0 < info.sample_rate_hz < 100.0  # each read forks a Python process: far below the sampler's 100 Hz
