"""Root-aware readers for sysfs and /proc: the only place the agent touches those trees.

Every reader takes ``root``: ``None`` means ``$FLEETNAS_SYSFS_ROOT`` if set, else ``/``. Tests (and CI, which lacks
cpufreq, thermal zones and power sensors) point it at a fake tree under tmp_path; the same code reads a real board.
Readers never raise for a missing or unreadable file: a board without the file simply lacks the feature, so they
return ``None`` (or an empty collection) and callers decide what "absent" means.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Union

ENV_ROOT = "FLEETNAS_SYSFS_ROOT"
PathLike = Union[str, Path]


def resolve_root(root: Optional[PathLike] = None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ENV_ROOT) or "/")


def path(rel: str, root: Optional[PathLike] = None) -> Path:
    """``rel`` is an absolute-looking path such as "/sys/class/thermal"; it is re-rooted under ``root``."""
    return resolve_root(root) / rel.lstrip("/")


def read_text(rel: str, root: Optional[PathLike] = None) -> Optional[str]:
    try:
        return path(rel, root).read_text(errors="replace").strip()
    except (OSError, ValueError):
        return None


def read_int(rel: str, root: Optional[PathLike] = None) -> Optional[int]:
    text = read_text(rel, root)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def glob(rel_dir: str, pattern: str, root: Optional[PathLike] = None) -> List[Path]:
    """Sorted matches of ``pattern`` inside ``rel_dir``, in natural order (cpu2 before cpu10)."""
    base = path(rel_dir, root)
    try:
        found = list(base.glob(pattern))
    except OSError:
        return []
    return sorted(found, key=lambda p: _natural_key(p.name))


def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


def parse_cpu_list(text: Optional[str]) -> List[int]:
    """Kernel cpu lists, ranges ("0-3,6,8-9", cpu/online) or spaces ("4 5 6 7", related_cpus) -> sorted ints."""
    cpus: List[int] = []
    for part in re.split(r"[,\s]+", text or ""):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                cpus.extend(range(int(lo), int(hi) + 1))
            else:
                cpus.append(int(part))
        except ValueError:
            continue
    return sorted(set(cpus))


def meminfo(root: Optional[PathLike] = None) -> Dict[str, int]:
    """/proc/meminfo in bytes ("MemTotal" -> 8_000_000_000)."""
    out: Dict[str, int] = {}
    for line in (read_text("/proc/meminfo", root) or "").splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            scale = 1024 if len(fields) > 1 and fields[1].lower() == "kb" else 1
            out[key.strip()] = int(fields[0]) * scale
    return out


def cpuinfo(root: Optional[PathLike] = None) -> List[Dict[str, str]]:
    """/proc/cpuinfo as one dict per processor block (ARM boards add a trailing block with Hardware/Model)."""
    blocks: List[Dict[str, str]] = []
    current: Dict[str, str] = {}
    for line in (read_text("/proc/cpuinfo", root) or "").splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def proc_status_bytes(pid: Union[int, str], field: str) -> Optional[int]:
    """One kB field of /proc/<pid>/status (VmHWM, VmRSS) in bytes. Always the real /proc: it is about our processes."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
