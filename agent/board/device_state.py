"""Snapshots of what makes a number trustworthy: temperatures, CPU frequency policies, throttle counters.

``snapshot()`` reads every ``/sys/class/thermal/thermal_zone*/temp`` (m°C), each cpufreq policy (governor, cur/min/max,
cpuinfo_max), x86 ``thermal_throttle`` counters and, where ``vcgencmd`` exists (Raspberry Pi), ``get_throttled``.
All paths go through fleetnas.agent.board.sysfs, so a fake tree under ``$FLEETNAS_SYSFS_ROOT`` drives the same code in tests.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from typing import Callable, List, Optional, Tuple

from fleetnas.agent.board import sysfs
from fleetnas.agent.records import CpuPolicyState, DeviceState, ThermalReading

THERMAL_DIR = "/sys/class/thermal"
CPUFREQ_DIR = "/sys/devices/system/cpu/cpufreq"
CPU_DIR = "/sys/devices/system/cpu"


def thermal_readings(root: Optional[sysfs.PathLike] = None) -> Tuple[ThermalReading, ...]:
    out: List[ThermalReading] = []
    for zone in sysfs.glob(THERMAL_DIR, "thermal_zone*", root):
        rel = f"{THERMAL_DIR}/{zone.name}"
        milli_c = sysfs.read_int(f"{rel}/temp", root)
        if milli_c is None:  # some zones (e.g. disabled ones) refuse reads with EINVAL/ENODATA
            continue
        out.append(ThermalReading(zone=zone.name, type=sysfs.read_text(f"{rel}/type", root) or "",
                                  temp_c=milli_c / 1000.0))
    return tuple(out)


def cpu_policies(root: Optional[sysfs.PathLike] = None) -> Tuple[CpuPolicyState, ...]:
    out: List[CpuPolicyState] = []
    for policy in sysfs.glob(CPUFREQ_DIR, "policy*", root):
        rel = f"{CPUFREQ_DIR}/{policy.name}"
        cpus = sysfs.parse_cpu_list(sysfs.read_text(f"{rel}/related_cpus", root)
                                    or sysfs.read_text(f"{rel}/affected_cpus", root))
        out.append(CpuPolicyState(
            policy=policy.name,
            cpus=tuple(cpus),
            governor=sysfs.read_text(f"{rel}/scaling_governor", root) or "",
            cur_khz=_khz(rel, "scaling_cur_freq", root),
            min_khz=_khz(rel, "scaling_min_freq", root),
            max_khz=_khz(rel, "scaling_max_freq", root),
            cpuinfo_max_khz=_khz(rel, "cpuinfo_max_freq", root),
        ))
    return tuple(out)


def _khz(rel: str, name: str, root: Optional[sysfs.PathLike]) -> int:
    value = sysfs.read_int(f"{rel}/{name}", root)
    return value if value is not None else 0


def throttle_counters(root: Optional[sysfs.PathLike] = None) -> Tuple[Tuple[str, str], ...]:
    """Monotonic throttle evidence as (name, value) pairs; comparing two snapshots tells whether the run throttled."""
    out: List[Tuple[str, str]] = []
    for kind in ("core", "package"):
        total, seen = 0, False
        for cpu in sysfs.glob(CPU_DIR, "cpu[0-9]*", root):
            count = sysfs.read_int(f"{CPU_DIR}/{cpu.name}/thermal_throttle/{kind}_throttle_count", root)
            if count is not None:
                total, seen = total + count, True
        if seen:
            out.append((f"{kind}_throttle_count", str(total)))
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        text = _run_quiet([vcgencmd, "get_throttled"])
        if text and "=" in text:  # "throttled=0x50005"
            out.append(("vcgencmd_throttled", text.split("=", 1)[1].strip()))
    return tuple(out)


def _run_quiet(argv: List[str], timeout_s: float = 2.0) -> Optional[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def snapshot(root: Optional[sysfs.PathLike] = None) -> DeviceState:
    return DeviceState(captured_unix_ns=time.time_ns(), thermal=thermal_readings(root),
                       cpu_policies=cpu_policies(root), throttle=throttle_counters(root))


def throttle_events(before: Optional[DeviceState], after: Optional[DeviceState]) -> List[str]:
    """Human-readable reasons the board throttled between two snapshots (empty: no evidence of throttling)."""
    if before is None or after is None:
        return []
    reasons: List[str] = []
    earlier = dict(before.throttle)
    for name, value in after.throttle:
        old = earlier.get(name)
        if old is None:
            continue
        if name == "vcgencmd_throttled":
            # Bits 0-3: throttling *now* (under-voltage, freq capped, throttled, soft temp limit).
            if _hex(value) & 0xF:
                reasons.append(f"vcgencmd get_throttled={value}")
        elif _int(value) > _int(old):
            reasons.append(f"{name} rose from {old} to {value}")
    return reasons


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _hex(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        return 0


def wait_for_cooldown(idle_temp_c: float, margin_c: float = 5.0, timeout_s: float = 120.0, poll_s: float = 1.0,
                      root: Optional[sysfs.PathLike] = None,
                      sleep: Callable[[float], None] = time.sleep) -> Tuple[bool, float]:
    """Wait until the hottest zone is <= idle + margin (checked every ``poll_s``, at most ``timeout_s``).

    Returns (cooled, last max temperature). A board without thermal zones returns (True, nan) at once: there is
    nothing to wait for, and a blind sleep would only waste the fleet's time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        readings = thermal_readings(root)
        temp_c = max(r.temp_c for r in readings) if readings else float("nan")
        if temp_c != temp_c or temp_c <= idle_temp_c + margin_c:
            return True, temp_c
        if time.monotonic() >= deadline:
            return False, temp_c
        sleep(poll_s)
