"""When each dial-in device was last connected, kept across commands (a small JSON file), for `devices check`.

A hub records a device when its agent connects and again when the stream ends; ``describe`` words the age.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Dict, Optional


def default_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fleetnas" / "dial_in_last_seen.json"


class LastSeen:
    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path) if path else default_path()
        self._lock = threading.Lock()

    def read(self) -> Dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}   # none yet, or unreadable: nothing seen is the honest answer
        return data if isinstance(data, dict) else {}

    def record(self, name: str, *, fingerprint_sha256: str = "", peer: str = "",
               unix_s: Optional[float] = None) -> None:
        with self._lock:
            data = self.read()
            entry = {"unix_s": time.time() if unix_s is None else unix_s, "peer": peer}
            entry["fingerprint_sha256"] = fingerprint_sha256 or data.get(name, {}).get("fingerprint_sha256", "")
            data[name] = entry
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                tmp.replace(self.path)
            except OSError:
                pass   # a read-only cache folder costs the "last seen" column, never the run

    def get(self, name: str) -> Optional[dict]:
        entry = self.read().get(name)
        return entry if isinstance(entry, dict) and "unix_s" in entry else None


def describe(unix_s: Optional[float], now: Optional[float] = None) -> str:
    """"never", "12 s ago", "5 min ago", "3 h ago", "2 d ago"."""
    if unix_s is None:
        return "never"
    age_s = max(0.0, (time.time() if now is None else now) - unix_s)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if age_s >= size:
            return f"{age_s / size:.0f} {unit} ago"
    return f"{age_s:.0f} s ago"
