"""x86 Intel/AMD RAPL through powercap: ``/sys/class/powercap/intel-rapl:N/energy_uj`` counters (µJ).

The counters wrap at ``max_energy_range_uj``; the sampler unwraps them between its reads. The total is the sum of
the package domains (``intel-rapl:N``, one per socket, disjoint); sub-domains (``intel-rapl:N:M``: core, uncore,
dram) are parts of their package and never added. ``psys`` (platform) is used only when configured as the
total_rail, since it already includes the packages. Since Linux 5.10 ``energy_uj`` is readable by root only.
"""
from __future__ import annotations

import glob
import os
import re
from typing import List, Optional, Tuple

from fleetnas.agent.power.base import (
    COUNTER, MeterSettings, PowerMeter, SensorPermissionDenied, SensorUnavailable, read_sysfs_number, sysfs_root,
    under_root)

POWERCAP = "sys/class/powercap"
PERMISSION_FIX = (
    "RAPL energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694): run the agent as root, or let it "
    "read the counters: 'sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj' (until reboot) or the udev "
    "rule SUBSYSTEM==\"powercap\", ACTION==\"add\", RUN+=\"/bin/chmod a+r /sys%p/energy_uj\" in "
    "/etc/udev/rules.d/99-fleetnas-rapl.rules")


def _domains(root: str) -> List[Tuple[str, str]]:
    """(name, directory) of each top-level RAPL domain."""
    found = []
    for directory in sorted(glob.glob(under_root(root, POWERCAP + "/intel-rapl:*"))):
        if not re.search(r"intel-rapl:\d+$", directory):
            continue  # intel-rapl:N:M is a sub-domain of package N
        try:
            with open(os.path.join(directory, "name"), "r") as handle:
                name = handle.read().strip()
        except OSError:
            name = os.path.basename(directory)
        found.append((name, directory))
    return found


class RaplMeter(PowerMeter):
    name = "rapl"
    kind = COUNTER
    units = "uJ counter"
    update_period_s = 0.001
    max_power_w = 2000.0

    @classmethod
    def for_board(cls, root: Optional[str], settings: MeterSettings) -> "RaplMeter":
        return cls(root, total_rail=settings.total_rail)

    def __init__(self, root: Optional[str] = None, total_rail: str = "") -> None:
        domains = _domains(sysfs_root(root))
        if not domains:
            raise SensorUnavailable(f"no RAPL domain under {POWERCAP} (not x86, or the intel_rapl driver is "
                                    "not loaded: modprobe intel_rapl_common)")
        names = [name for name, _ in domains]
        if total_rail:
            wanted = [p.strip() for p in total_rail.split("+") if p.strip()]
            missing = [w for w in wanted if w not in names]
            if missing:
                raise SensorUnavailable(f"configured total rail {total_rail!r} not found; RAPL domains here: "
                                        f"{', '.join(names)}")
        else:
            wanted = [n for n in names if n.startswith("package")]
            if not wanted:
                raise SensorUnavailable(f"no RAPL package domain (found {', '.join(names)}); set power.total_rail")
        self._domains = [(name, d) for name, d in domains if name in wanted]
        super().__init__(source=under_root(sysfs_root(root), POWERCAP), rails=names, total_rail="+".join(wanted))
        self._ranges = [self._range_j(d) for _, d in self._domains]

    @staticmethod
    def _range_j(directory: str) -> float:
        path = os.path.join(directory, "max_energy_range_uj")
        return read_sysfs_number(path) * 1e-6 if os.path.exists(path) else 0.0

    def _read(self):
        values = []
        for (name, directory), range_j in zip(self._domains, self._ranges):
            try:
                values.append((read_sysfs_number(os.path.join(directory, "energy_uj")) * 1e-6, range_j))
            except SensorPermissionDenied as exc:
                raise SensorPermissionDenied(f"{exc}. {PERMISSION_FIX}") from None
        return tuple(values)
