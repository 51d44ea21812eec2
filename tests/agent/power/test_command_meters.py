"""Raspberry Pi 5 (vcgencmd), Termux (termux-battery-status) and NVML meters against fakes following a profile.

The fake commands are executables first on PATH that compute the reading from CLOCK_MONOTONIC; the fake pynvml is a
module first on sys.path. The meter code that parses and integrates them is the real one.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import textwrap

import pytest

from fleetnas.agent.power.android import TermuxBatteryMeter
from fleetnas.agent.power.base import SensorNotValid, SensorUnavailable
from fleetnas.agent.power.nvml import NvmlMeter
from fleetnas.agent.power.rpi5 import RaspberryPi5Meter, parse_pmic_read_adc
from power_contract import Fake, PowerMeterContract
from power_fakes import fake_command, set_command_state

VCGENCMD = """
if args[:1] == ['get_throttled']:
    print('throttled=' + state.get('throttled', '0x0')); sys.exit(0)
mode = state.get('mode', 'ok')
if mode == 'denied':
    sys.stderr.write('Can\\'t open device file: /dev/vcio: Permission denied\\n'); sys.exit(255)
if mode == 'garbage':
    print('VCHI initialization failed'); sys.exit(0)
core_a = (profile(time.monotonic()) - 0.535) / 0.8
for line in ('3V7_WL_SW_A current(0)=0.10000000A', '3V3_SYS_A current(1)=0.05000000A',
             'VDD_CORE_A current(7)=%.8fA' % core_a, '3V7_WL_SW_V volt(8)=3.70000000V',
             '3V3_SYS_V volt(9)=3.30000000V', 'VDD_CORE_V volt(15)=0.80000000V', 'EXT5V_V volt(24)=5.10000000V'):
    print('     ' + line)
"""

TERMUX = """
mode = state.get('mode', 'ok')
if mode == 'denied':
    sys.stderr.write('termux-api: Permission denied\\n'); sys.exit(1)
if mode == 'garbage':
    print('{"current": "n/a"}'); sys.exit(0)
status = {"health": "GOOD", "percentage": 80, "plugged": state.get('plugged', 'UNPLUGGED'),
          "status": "DISCHARGING", "temperature": 30.1, "voltage": 3850,
          "current": -int(profile(time.monotonic()) / 3.85 * 1e6)}
print(json.dumps(status, indent=2))
"""


class CommandFake(Fake):
    def __init__(self, bin_dir, name, body, profile, build):
        self.script = fake_command(bin_dir, name, body)
        self.bin_dir, self._build = bin_dir, build
        set_command_state(bin_dir, profile={"start_s": profile.start_s, "base_w": profile.base_w,
                                            "amp_w": profile.amp_w, "period_s": profile.period_s})

    def build(self):
        return self._build()

    def vanish(self):
        os.remove(self.script)

    def garbage(self):
        set_command_state(self.bin_dir, mode="garbage")

    def deny(self):
        set_command_state(self.bin_dir, mode="denied")


def _path_first(monkeypatch, bin_dir):
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


class TestRaspberryPi5(PowerMeterContract):
    window_s = 2.0   # each read forks a process: ~10-30 Hz, timestamped at the fork's midpoint
    period_s = 6.0
    deny_as_other_user = False

    def setup_fake(self, tmp_path, profile, monkeypatch):
        _path_first(monkeypatch, tmp_path / "bin")
        return CommandFake(tmp_path / "bin", "vcgencmd", VCGENCMD, profile, RaspberryPi5Meter)

    def test_denied_says_video_group(self, fake):
        meter = fake.build()
        fake.deny()
        with pytest.raises(Exception, match="video"):
            meter.read()


def test_pmic_parser_pairs_volts_and_amps_only():
    text = textwrap.dedent("""\
        VDD_CORE_A current(7)=2.00000000A
        VDD_CORE_V volt(15)=0.50000000V
        EXT5V_V volt(24)=5.1V
        HDMI_A current(3)=garbageA
    """)
    assert parse_pmic_read_adc(text) == {"VDD_CORE": (0.5, 2.0)}


def test_rpi_without_vcgencmd_or_without_pmic(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SensorUnavailable, match="vcgencmd not found"):
        RaspberryPi5Meter()
    fake_command(tmp_path / "bin", "vcgencmd", "print('error=1 error_msg=\"Command not registered\"')\n")
    set_command_state(tmp_path / "bin")
    with pytest.raises(SensorUnavailable, match="Pi 4"):
        RaspberryPi5Meter()


class TestTermux(PowerMeterContract):
    window_s = 2.0
    period_s = 6.0
    deny_as_other_user = False

    def setup_fake(self, tmp_path, profile, monkeypatch):
        _path_first(monkeypatch, tmp_path / "bin")
        return CommandFake(tmp_path / "bin", "termux-battery-status", TERMUX, profile,
                           lambda: TermuxBatteryMeter(str(tmp_path)))

    def test_plugged_is_not_valid(self, fake):
        meter = fake.build()
        set_command_state(fake.bin_dir, plugged="PLUGGED_USB")
        with pytest.raises(SensorNotValid, match="unplug"):
            meter.read()


FAKE_PYNVML = """
import math, time
STATE = {"mode": "ok", "profile": None}

class NVMLError(Exception):
    pass

def nvmlInit():
    if STATE["mode"] == "nodriver":
        raise NVMLError("Driver Not Loaded")

def nvmlDeviceGetCount():
    return 1

def nvmlDeviceGetHandleByIndex(i):
    return ("handle", i)

def nvmlDeviceGetName(handle):
    return b"Fake A2"

def nvmlDeviceGetTotalEnergyConsumption(handle):
    mode, p = STATE["mode"], STATE["profile"]
    if mode == "vanish":
        raise NVMLError("GPU is lost")
    if mode == "denied":
        raise NVMLError("Insufficient Permissions")
    if mode == "garbage":
        return -3
    return int(p.energy_j(p.start_s, time.monotonic()) * 1000) if p else 0
"""


class NvmlFake(Fake):
    def __init__(self, module, profile):
        self.module = module
        module.STATE["profile"] = profile

    def build(self):
        return NvmlMeter()

    def vanish(self):
        self.module.STATE["mode"] = "vanish"

    def garbage(self):
        self.module.STATE["mode"] = "garbage"

    def deny(self):
        self.module.STATE["mode"] = "denied"


def _fake_pynvml(tmp_path, monkeypatch):
    (tmp_path / "pylib").mkdir(exist_ok=True)
    (tmp_path / "pylib" / "pynvml.py").write_text(FAKE_PYNVML)
    spec = importlib.util.spec_from_file_location("pynvml", tmp_path / "pylib" / "pynvml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "pynvml", module)  # removed again after the test
    return module


class TestNvml(PowerMeterContract):
    def setup_fake(self, tmp_path, profile, monkeypatch):
        return NvmlFake(_fake_pynvml(tmp_path, monkeypatch), profile)


def test_nvml_not_installed_or_no_driver(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # an import of it raises ImportError
    with pytest.raises(SensorUnavailable, match="nvidia-ml-py"):
        NvmlMeter()
    module = _fake_pynvml(tmp_path, monkeypatch)
    module.STATE["mode"] = "nodriver"
    with pytest.raises(SensorUnavailable, match="Driver Not Loaded"):
        NvmlMeter()
