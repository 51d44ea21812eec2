"""A fake sysfs/proc tree for the agent's tests: the layout a big.LITTLE ARM board exposes (policy0 = 4 little cores at
1.8 GHz, policy4 = 4 big cores at 2.4 GHz), two thermal zones and x86-style throttle counters. Real reader code runs
against it via ``root=`` or ``$FLEETNAS_SYSFS_ROOT``."""
from __future__ import annotations

from pathlib import Path
from typing import Dict


def write(root: Path, rel: str, text: str) -> Path:
    target = root / rel.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def make_board_tree(root: Path, temps_mc: Dict[str, int] = None, machine_id: str = "0123456789abcdef") -> Path:
    temps_mc = temps_mc or {"cpu-thermal": 45000, "gpu-thermal": 41500}
    write(root, "/sys/devices/system/cpu/online", "0-7\n")
    for cpu in range(8):
        big = cpu >= 4
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        write(root, f"{base}/cpufreq/cpuinfo_max_freq", "2400000\n" if big else "1800000\n")
        write(root, f"{base}/thermal_throttle/core_throttle_count", "0\n")
    for policy, cpus, max_khz in (("policy0", "0 1 2 3", 1800000), ("policy4", "4 5 6 7", 2400000)):
        base = f"/sys/devices/system/cpu/cpufreq/{policy}"
        write(root, f"{base}/related_cpus", cpus + "\n")
        write(root, f"{base}/scaling_governor", "schedutil\n")
        write(root, f"{base}/scaling_cur_freq", f"{max_khz // 2}\n")
        write(root, f"{base}/scaling_min_freq", "408000\n")
        write(root, f"{base}/scaling_max_freq", f"{max_khz}\n")
        write(root, f"{base}/cpuinfo_max_freq", f"{max_khz}\n")
    for i, (kind, milli_c) in enumerate(temps_mc.items()):
        write(root, f"/sys/class/thermal/thermal_zone{i}/type", kind + "\n")
        write(root, f"/sys/class/thermal/thermal_zone{i}/temp", f"{milli_c}\n")
    write(root, "/proc/meminfo", "MemTotal:        8000000 kB\nMemAvailable:    6000000 kB\n")
    cores = "".join(f"processor\t: {cpu}\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\n"
                    f"CPU part\t: {'0xd0b' if cpu >= 4 else '0xd05'}\n\n" for cpu in range(8))
    write(root, "/proc/cpuinfo", cores + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n")
    write(root, "/proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\x00")
    write(root, "/etc/os-release", 'NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    if machine_id:
        write(root, "/etc/machine-id", machine_id + "\n")
    return root
