"""Checks before a search starts, from each device's own report (GetDeviceInfo), so a run that cannot give what was
asked for refuses in seconds instead of failing every candidate.

- energy as an objective needs a readable power sensor on every (real) device;
- two devices with the same fingerprint are most likely one machine: their measurements contend for its CPUs.
Devices that do not answer here are left to the dispatcher (it marks them suspect and retries them).
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

from fleetnas.host.errors import FleetnasError, UsageError

INFO_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DeviceReport:
    name: str
    fingerprint_sha256: str
    emulated: bool
    readable_sensors: Tuple[str, ...]   # power meters the agent can read ("rapl", "jetson-ina", ...)
    sensor_problem: str                 # "" with a readable sensor, else "no power sensor" / "rapl not readable"


def _report(device, timeout_s: float) -> Optional[DeviceReport]:
    try:
        with device.client(timeout_s=timeout_s) as client:
            info = client.device_info(timeout_s=timeout_s)
    except FleetnasError:
        return None
    readable = tuple(s.name for s in info.power_sensors if s.readable and s.name != "none")
    unreadable = [s.name for s in info.power_sensors if not s.readable and s.name != "none"]
    problem = "" if readable else (f"{', '.join(unreadable)} not readable" if unreadable else "no power sensor")
    return DeviceReport(device.name, info.fingerprint_sha256, bool(info.emulated), readable, problem)


def device_reports(registry, timeout_s: float = INFO_TIMEOUT_S) -> List[DeviceReport]:
    """One report per device that answered (in parallel; unreachable devices are skipped)."""
    devices = list(registry)
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(devices)))) as pool:
        reports = list(pool.map(lambda d: _report(d, timeout_s), devices))
    return [r for r in reports if r is not None]


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


def preflight(registry, objectives: Sequence[str], stream: Optional[TextIO] = None,
              timeout_s: float = INFO_TIMEOUT_S) -> List[DeviceReport]:
    """Refuse a search that cannot work; warn (one line each, on ``stream``) about one that measures badly."""
    stream = stream or sys.stderr
    reports = device_reports(registry, timeout_s)
    if "energy" in objectives:
        check_energy(reports)
    for names in shared_fingerprints(reports):
        print(f"warning: devices {', '.join(names)} report the same fingerprint, so they are probably one machine: "
              f"their measurements contend for its CPUs and disturb each other's latency; run one agent per "
              f"machine", file=stream)
    return reports
