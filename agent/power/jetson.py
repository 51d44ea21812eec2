"""NVIDIA Jetson on-module power monitors, read from sysfs.

- JetPack 5/6: INA3221 through hwmon, one chip (Orin NX/Nano, ``1-0040``) or two (AGX Orin/Xavier, ``1-0040`` and
  ``1-0041``): ``in{N}_label``, ``in{N}_input`` (mV), ``curr{N}_input`` (mA).
- JetPack 4 (Nano, TX2): INA3221 through IIO (``ina3221x``): ``rail_name_{N}``, ``in_power{N}_input`` (mW).
- Thor: an INA238 (``power1_input``, µW) beside the INA3221s.

The total rail is the module input (``VDD_IN``, ``POM_5V_IN``...), known per module in KNOWN_TOTAL_RAILS and
configurable (``total_rail``, several rails joined with ``+`` are summed: only for disjoint rails, as on AGX Orin).
A total is never added to its own sub-rails.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from fleetnas.agent.power.base import (
    INSTANT, MeterSettings, PowerMeter, SensorUnavailable, read_sysfs_number, sysfs_root, under_root)

# Module input rails in order of preference. Thor: the carrier's INA238 "VIN" is the system input. AGX Orin and AGX
# Xavier have no input rail: their module rails are disjoint and their sum is the module's power (VIN_SYS_5V0 alone
# is only the I/O supply, a mistake jetson-stats once made).
KNOWN_TOTAL_RAILS: Tuple[str, ...] = (
    "VDD_IN", "POM_5V_IN", "VIN",
    "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO",   # AGX Orin, both chips
    "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0",                   # AGX Orin, second chip not bound
    "GPU+CPU+SOC+CV+VDDRQ+SYS5V",                           # AGX Xavier
)

HWMON_GLOBS = ("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*",)
INA238_GLOBS = ("sys/bus/i2c/drivers/ina238/*/hwmon/hwmon*",)
IIO_GLOBS = ("sys/bus/i2c/drivers/ina3221x/*/iio:device*",)


@dataclass(frozen=True)
class Rail:
    """One measured rail: either a power file (scale converts its unit to W) or a voltage/current pair."""
    name: str
    power_path: str = ""
    power_scale: float = 0.0     # 1e-3 for mW, 1e-6 for µW
    volt_path: str = ""          # mV
    curr_path: str = ""          # mA

    def read_w(self) -> float:
        if self.power_path:
            return read_sysfs_number(self.power_path) * self.power_scale
        return read_sysfs_number(self.volt_path) * read_sysfs_number(self.curr_path) * 1e-6

    @property
    def source(self) -> str:
        return self.power_path or self.curr_path


def _read_label(path: str) -> str:
    try:
        with open(path, "r") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _hwmon_ina3221_rails(hwmon_dir: str) -> List[Rail]:
    rails = []
    for label_path in sorted(glob.glob(os.path.join(hwmon_dir, "in*_label"))):
        index = re.match(r"in(\d+)_label$", os.path.basename(label_path))
        if not index:
            continue
        n = index.group(1)
        volt, curr = os.path.join(hwmon_dir, f"in{n}_input"), os.path.join(hwmon_dir, f"curr{n}_input")
        label = _read_label(label_path)
        # JetPack 6 also exposes "sum of shunt voltages" and unconnected "NC" channels: no current, skip them.
        if label and label != "NC" and os.path.exists(volt) and os.path.exists(curr):
            rails.append(Rail(name=label, volt_path=volt, curr_path=curr))
    return rails


def _hwmon_ina238_rails(hwmon_dir: str) -> List[Rail]:
    power = os.path.join(hwmon_dir, "power1_input")
    if not os.path.exists(power):
        return []
    label = _read_label(os.path.join(hwmon_dir, "power1_label")) or _read_label(os.path.join(hwmon_dir, "in1_label"))
    # Unlabelled, it is the Thor carrier's system input monitor (named VIN as jetson-stats and tegrastats do).
    return [Rail(name=label or "VIN", power_path=power, power_scale=1e-6)]


def _iio_rails(iio_dir: str) -> List[Rail]:
    rails = []
    for name_path in sorted(glob.glob(os.path.join(iio_dir, "rail_name_*"))):
        n = name_path.rsplit("_", 1)[-1]
        power = os.path.join(iio_dir, f"in_power{n}_input")
        label = _read_label(name_path)
        if label and label != "NC" and os.path.exists(power):
            rails.append(Rail(name=label, power_path=power, power_scale=1e-3))
    return rails


def discover_rails(root: Optional[str] = None) -> Tuple[List[Rail], str, str]:
    """All rails of every on-module monitor under root, the source directories and a units string."""
    root = sysfs_root(root)
    rails: List[Rail] = []
    sources, units = [], set()
    for pattern, reader, unit in ((HWMON_GLOBS, _hwmon_ina3221_rails, "mV,mA"),
                                  (INA238_GLOBS, _hwmon_ina238_rails, "uW"),
                                  (IIO_GLOBS, _iio_rails, "mW")):
        for glob_pattern in pattern:
            for directory in sorted(glob.glob(under_root(root, glob_pattern))):
                found = reader(directory)
                if found:
                    rails += found
                    sources.append(directory)
                    units.add(unit)
    return rails, ";".join(sources), ",".join(sorted(units))


def choose_total(rail_names: Sequence[str], configured: str = "") -> Tuple[str, ...]:
    """The rail names whose sum is the board's total power: the configured one, else the module's known one."""
    candidates = [configured] if configured else list(KNOWN_TOTAL_RAILS)
    for candidate in candidates:
        parts = tuple(p.strip() for p in candidate.split("+") if p.strip())
        missing = [p for p in parts if p not in rail_names]
        if parts and not missing:
            return parts
        if configured:
            raise SensorUnavailable(
                f"configured total rail {configured!r} not found (missing {', '.join(missing)}); "
                f"rails on this board: {', '.join(rail_names)}")
    raise SensorUnavailable(
        f"no known total rail among {', '.join(rail_names)}; set power.total_rail in the agent config "
        "to the module input rail (or disjoint rails joined with '+'), never a total plus its sub-rails")


class JetsonMeter(PowerMeter):
    """The module's total power from its INA3221/INA238 monitors: the total rail(s) only, read each poll."""
    name = "jetson-ina"
    kind = INSTANT
    update_period_s = 0.0  # INA3221 converts every few ms: the sampler rate is the limit
    max_power_w = 500.0

    @classmethod
    def for_board(cls, root: Optional[str], settings: MeterSettings) -> "JetsonMeter":
        return cls(root, total_rail=settings.total_rail)

    def __init__(self, root: Optional[str] = None, total_rail: str = "") -> None:
        rails, source, units = discover_rails(root)
        if not rails:
            raise SensorUnavailable("no Jetson INA3221/INA238 power monitor under sys/bus/i2c/drivers")
        by_name: Dict[str, Rail] = {}
        for rail in rails:
            by_name.setdefault(rail.name, rail)
        total = choose_total(list(by_name), total_rail)
        super().__init__(source=source, rails=list(by_name), total_rail="+".join(total))
        self.units = units
        self._total = [by_name[name] for name in total]
        self.name = "jetson-ina3221x" if all("iio:device" in r.source for r in self._total) else "jetson-ina"

    def _read(self) -> float:
        return sum(rail.read_w() for rail in self._total)
