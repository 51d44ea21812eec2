"""Checks before a search starts, from each device's own report (GetDeviceInfo), so a run that cannot give what was
asked for refuses in seconds instead of failing every candidate.

- the chosen runtime must be offered, with a model format this host can export;
- energy as an objective needs a readable power sensor on every (real) device;
- two devices with the same fingerprint are most likely one machine: their measurements contend for its CPUs.
Devices that do not answer here are left to the dispatcher (it marks them suspect and retries them).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, TextIO, Tuple

from fleetnas.host.errors import UsageError
from fleetnas.host.export.registry import exporter_for
from fleetnas.host.fleet.contract import DeviceInfo
from fleetnas.host.fleet.formats import ask_fleet, runtime_formats

INFO_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DeviceReport:
    name: str
    fingerprint_sha256: str
    emulated: bool
    readable_sensors: Tuple[str, ...]   # power meters the agent can read ("rapl", "jetson-ina", ...)
    sensor_problem: str                 # "" with a readable sensor, else "no power sensor" / "rapl not readable"


def _report(name: str, info: DeviceInfo) -> DeviceReport:
    readable = tuple(p.name for p in info.power_sensors if p.readable and p.name != "none")
    unreadable = [p.name for p in info.power_sensors if not p.readable and p.name != "none"]
    problem = "" if readable else (f"{', '.join(unreadable)} not readable" if unreadable else "no power sensor")
    return DeviceReport(name, info.fingerprint_sha256, bool(info.emulated), readable, problem)


def device_reports(infos: Mapping[str, DeviceInfo]) -> List[DeviceReport]:
    """One report per device that answered (``infos``: device name -> its GetDeviceInfo)."""
    return [_report(name, info) for name, info in infos.items()]


def check_energy(reports: Sequence[DeviceReport]) -> None:
    """UsageError naming every device that cannot measure energy (emulating agents answer from their table)."""
    blind = [r for r in reports if not r.emulated and not r.readable_sensors]
    if blind:
        names = ", ".join(f"{r.name} ({r.sensor_problem})" for r in blind)
        raise UsageError(f"--objectives with energy, but no readable power sensor on {names}; search "
                         f"accuracy,latency there, or give devices with a power meter (`fleetnas devices check` "
                         f"lists each device's sensors)")


def shared_fingerprints(reports: Sequence[DeviceReport]) -> List[List[str]]:
    """Groups of (non-emulated) device names that report the same fingerprint."""
    groups: Dict[str, List[str]] = {}
    for r in reports:
        if not r.emulated and r.fingerprint_sha256:
            groups.setdefault(r.fingerprint_sha256, []).append(r.name)
    return [names for names in groups.values() if len(names) > 1]


def preflight(registry, objectives: Sequence[str], runtime: str, stream: Optional[TextIO] = None,
              timeout_s: float = INFO_TIMEOUT_S, precision: str = "fp32") -> List[DeviceReport]:
    """Refuse a search that cannot work; warn (one line each, on ``stream``) about one that measures badly.

    One GetDeviceInfo per device: the runtime must be offered with a format this host can export at ``precision``
    (checked now, not after the first accuracy evaluation), energy needs a sensor, shared fingerprints are warned about."""
    stream = stream or sys.stderr
    infos = ask_fleet(registry, timeout_s)
    if infos:   # none answering: the run waits for them (and says so) as it would mid-run
        exporter_for(runtime_formats(infos, runtime), runtime, precision).check()
    reports = device_reports(infos)
    if "energy" in objectives:
        check_energy(reports)
    for names in shared_fingerprints(reports):
        print(f"warning: devices {', '.join(names)} report the same fingerprint, so they are probably one machine: "
              f"their measurements contend for its CPUs and disturb each other's latency; run one agent per "
              f"machine", file=stream)
    return reports
