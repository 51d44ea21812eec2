"""Who is this board: CPU model and clusters, RAM, OS/kernel, Python, board model, thermal zones, governors,
runtimes, and a stable device id.

- ``cpu_clusters()``: online CPUs grouped by ``cpuinfo_max_freq`` (fastest first); one cluster with max_khz 0 when
  cpufreq is absent (VMs, CI). The worker pins to ``fastest_cluster()`` by default.
- ``device_id(state_dir)``: read from ``<state_dir>/device_id``; first time, derived from ``/etc/machine-id`` (hashed,
  so the raw machine id never leaves the board) or random, then persisted. Re-imaging a board keeps its id only if
  the state dir survives: that is deliberate, the id names the install the measurements came from.
- ``fingerprint_sha256`` covers the stable fields (hardware, OS, kernel, Python, runtimes and their versions), never
  temperatures, current frequencies or the device id: two identical boards share it, an upgrade changes it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from fleetnas.agent.board import sysfs
from fleetnas.agent.board.device_state import cpu_policies, thermal_readings
from fleetnas.agent.private_files import private_dir, write_private
from fleetnas.agent.records import CpuCluster, Fingerprint, RuntimeInfo

CPU_DIR = "/sys/devices/system/cpu"


def online_cpus(root: Optional[sysfs.PathLike] = None) -> List[int]:
    cpus = sysfs.parse_cpu_list(sysfs.read_text(f"{CPU_DIR}/online", root))
    if cpus:
        return cpus
    found = [int(p.name[3:]) for p in sysfs.glob(CPU_DIR, "cpu[0-9]*", root) if p.name[3:].isdigit()]
    return sorted(found) or list(range(os.cpu_count() or 1))


def cpu_clusters(root: Optional[sysfs.PathLike] = None) -> Tuple[CpuCluster, ...]:
    by_khz: Dict[int, List[int]] = {}
    for cpu in online_cpus(root):
        khz = sysfs.read_int(f"{CPU_DIR}/cpu{cpu}/cpufreq/cpuinfo_max_freq", root) or 0
        by_khz.setdefault(khz, []).append(cpu)
    return tuple(CpuCluster(cpus=tuple(cpus), max_khz=khz)
                 for khz, cpus in sorted(by_khz.items(), key=lambda kv: -kv[0]))


def fastest_cluster(allowed: Optional[Sequence[int]] = None,
                    root: Optional[sysfs.PathLike] = None) -> Tuple[int, ...]:
    """CPUs of the fastest cluster we may run on (``allowed`` defaults to this process' affinity mask)."""
    allowed_set = set(allowed if allowed is not None else _own_affinity())
    for cluster in cpu_clusters(root):
        usable = tuple(c for c in cluster.cpus if c in allowed_set)
        if usable:
            return usable
    return tuple(sorted(allowed_set))


def _own_affinity() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


# ARM "CPU part" ids (implementer 0x41) for the cores fleet boards carry; unknown parts are shown raw.
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE", "0xd44": "Cortex-X1",
             "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2", "0xd4d": "Cortex-A715",
             "0xd4e": "Cortex-X3"}


def cpu_model(root: Optional[sysfs.PathLike] = None) -> str:
    """x86 "model name"; on ARM (no model name) the distinct core types ("Cortex-A55 + Cortex-A76")."""
    blocks = sysfs.cpuinfo(root)
    for block in blocks:
        if block.get("model name"):
            return block["model name"]
    parts = []
    for block in blocks:
        part = block.get("CPU part", "").lower()
        if part:
            name = ARM_PARTS.get(part, f"CPU part {part}") if block.get("CPU implementer") == "0x41" else \
                f"implementer {block.get('CPU implementer', '?')} part {part}"
            if name not in parts:
                parts.append(name)
    if parts:
        return " + ".join(parts)
    for block in blocks:
        if block.get("Hardware"):
            return block["Hardware"]
    return platform.processor() or platform.machine()


def board_model(root: Optional[sysfs.PathLike] = None) -> str:
    """Device-tree model on ARM boards ("Raspberry Pi 5 Model B Rev 1.0"), DMI product name on x86, else ""."""
    text = sysfs.read_text("/proc/device-tree/model", root) or sysfs.read_text("/sys/firmware/devicetree/base/model",
                                                                              root)
    if text:
        return text.replace("\x00", "").strip()
    vendor = sysfs.read_text("/sys/class/dmi/id/sys_vendor", root) or ""
    product = sysfs.read_text("/sys/class/dmi/id/product_name", root) or ""
    return f"{vendor} {product}".strip()


def os_name(root: Optional[sysfs.PathLike] = None) -> str:
    for line in (sysfs.read_text("/etc/os-release", root) or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def device_id(state_dir: Path, root: Optional[sysfs.PathLike] = None) -> str:
    state_dir = Path(state_dir)
    stored = state_dir / "device_id"
    try:
        existing = stored.read_text().strip()
        if existing:
            return existing
    except OSError:
        pass
    machine_id = sysfs.read_text("/etc/machine-id", root)
    if machine_id:
        new_id = hashlib.sha256(b"fleetnas-device-id:" + machine_id.encode()).hexdigest()[:16]
    else:
        new_id = uuid.uuid4().hex[:16]
    private_dir(state_dir)
    write_private(stored, (new_id + "\n").encode())  # atomic: two agents starting at once cannot half-write it
    return new_id


def fingerprint(state_dir: Path, runtimes: Sequence[RuntimeInfo] = (), agent_version: str = "",
                root: Optional[sysfs.PathLike] = None) -> Fingerprint:
    policies = cpu_policies(root)
    draft = Fingerprint(
        device_id=device_id(state_dir, root), fingerprint_sha256="", cpu_model=cpu_model(root),
        cpu_count=len(online_cpus(root)), clusters=cpu_clusters(root), machine=platform.machine(),
        ram_bytes=sysfs.meminfo(root).get("MemTotal", 0), os_name=os_name(root), kernel=platform.release(),
        python_version=platform.python_version(), board_model=board_model(root),
        thermal_zones=tuple(f"{t.zone}:{t.type}" for t in thermal_readings(root)),
        governors=tuple(f"{p.policy}:{p.governor}" for p in policies), runtimes=tuple(runtimes),
        agent_version=agent_version)
    return replace(draft, fingerprint_sha256=fingerprint_sha256(draft))


def fingerprint_sha256(fp: Fingerprint) -> str:
    stable = asdict(fp)
    for volatile in ("device_id", "fingerprint_sha256", "governors", "agent_version"):
        stable.pop(volatile)  # governors are settings, not hardware; DeviceState records them per measurement
    stable["ram_bytes"] = round(fp.ram_bytes / 2**26)  # MemTotal wobbles by a few kB across kernels/boots
    # only what is installed: a runtime newly known to the agent but absent from the board changes nothing measured
    stable["runtimes"] = [(r.name, r.version, list(r.providers)) for r in fp.runtimes if r.available]
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=list).encode()).hexdigest()
