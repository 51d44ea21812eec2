"""Android phones: the battery fuel gauge, from sysfs or from Termux:API's ``termux-battery-status``.

A fuel gauge measures the current leaving the battery, so it means "power drawn by the phone" only while
unplugged: plugged in (or charging) every read raises SensorNotValid saying so. It updates about once a second,
hence the 30 s minimum window. Vendor differences handled here:
- units: ``voltage_now`` is µV on most kernels, mV on some; ``current_now`` µA on most, mA on some. A battery
  sits between 2.5 and 5 V, which tells the voltage unit; the current follows the same scale unless configured
  (``current_unit``: "uA" | "mA").
- sign: discharge is negative on some vendors, positive on others: the magnitude is the power drawn.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from fleetnas.agent.power.base import (
    INSTANT, MeterSettings, PowerMeter, SensorGarbage, SensorNotValid, SensorUnavailable, read_sysfs_number, sysfs_root,
    under_root)
from fleetnas.agent.power.command import find_command, run_command

BATTERY_DIR = "sys/class/power_supply/battery"
CHARGERS = ("usb", "ac", "wireless", "dc")
UNPLUG_HINT = "unplug the charger: a battery gauge gives the phone's power only while discharging"


def voltage_scale(raw: float) -> float:
    """Factor turning a raw voltage_now into volts, told by the battery range 2.5-5 V."""
    for scale in (1e-6, 1e-3):
        if 2.5 <= abs(raw) * scale <= 5.0:
            return scale
    raise SensorGarbage(f"voltage_now={raw:g} is neither µV nor mV of a 2.5-5 V battery")


class AndroidBatteryMeter(PowerMeter):
    name = "android-battery"
    kind = INSTANT
    update_period_s = 1.0
    min_window_s = 30.0
    max_power_w = 50.0

    @classmethod
    def for_board(cls, root: Optional[str], settings: MeterSettings) -> "AndroidBatteryMeter":
        return cls(root, current_unit=settings.current_unit)

    def __init__(self, root: Optional[str] = None, current_unit: str = "") -> None:
        root = sysfs_root(root)
        self._dir = under_root(root, BATTERY_DIR)
        self._root = root
        current, voltage = os.path.join(self._dir, "current_now"), os.path.join(self._dir, "voltage_now")
        if not (os.path.exists(current) and os.path.exists(voltage)):
            raise SensorUnavailable(f"no battery gauge: {current} and voltage_now not both present")
        if current_unit not in ("", "uA", "mA"):
            raise ValueError(f"power.current_unit must be 'uA' or 'mA', got {current_unit!r}")
        self._current_unit = current_unit
        super().__init__(source=self._dir, rails=["battery"], total_rail="battery")
        self.units = "uV,uA (vendor-dependent)"

    def _plugged(self) -> str:
        status_path = os.path.join(self._dir, "status")
        try:
            with open(status_path, "r") as handle:
                status = handle.read().strip()
        except OSError:  # no status file on this kernel: the charger files below decide
            status = ""
        if status in ("Charging", "Full"):
            return f"battery status is {status}"
        for charger in CHARGERS:
            online = under_root(self._root, f"sys/class/power_supply/{charger}/online")
            if os.path.exists(online) and read_sysfs_number(online) == 1:
                return f"the {charger} charger is online"
        return ""

    def _read(self) -> float:
        plugged = self._plugged()
        if plugged:
            raise SensorNotValid(f"{plugged}; {UNPLUG_HINT}")
        raw_v = read_sysfs_number(os.path.join(self._dir, "voltage_now"))
        raw_i = read_sysfs_number(os.path.join(self._dir, "current_now"))
        v_scale = voltage_scale(raw_v)
        i_scale = {"uA": 1e-6, "mA": 1e-3}.get(self._current_unit, v_scale)
        return abs(raw_v * v_scale) * abs(raw_i * i_scale)


class TermuxBatteryMeter(PowerMeter):
    """``termux-battery-status`` JSON: current in µA (signed), voltage in mV where Termux:API reports it, else the
    sysfs ``voltage_now`` where readable."""
    name = "termux-battery"
    kind = INSTANT
    units = "uA,mV"
    update_period_s = 1.0
    min_window_s = 30.0
    max_power_w = 50.0

    def __init__(self, root: Optional[str] = None) -> None:
        path = find_command("termux-battery-status")
        if not path:
            raise SensorUnavailable("termux-battery-status not found on PATH (pkg install termux-api, and the "
                                    "Termux:API app)")
        self._voltage_now = under_root(sysfs_root(root), BATTERY_DIR + "/voltage_now")
        super().__init__(source=path, rails=["battery"], total_rail="battery")

    def _read(self) -> float:
        text = run_command(["termux-battery-status"], timeout_s=10.0)
        try:
            status = json.loads(text)
            current_ua = float(status["current"])
        except (ValueError, KeyError, TypeError):
            raise SensorGarbage(f"termux-battery-status printed {text.strip()[:80]!r}, no numeric 'current'") \
                from None
        plugged = str(status.get("plugged", "UNPLUGGED")).upper()
        if plugged != "UNPLUGGED" or str(status.get("status", "")).upper() in ("CHARGING", "FULL"):
            raise SensorNotValid(f"the phone is {plugged.lower()}; {UNPLUG_HINT}")
        if "voltage" in status:
            try:
                volts = float(status["voltage"]) * 1e-3
            except (TypeError, ValueError):
                raise SensorGarbage(f"termux-battery-status voltage={status['voltage']!r}") from None
        elif os.path.exists(self._voltage_now):
            raw = read_sysfs_number(self._voltage_now)
            volts = abs(raw) * voltage_scale(raw)
        else:
            raise SensorUnavailable("termux-battery-status has no voltage and voltage_now is not readable")
        return abs(current_ua) * 1e-6 * volts
