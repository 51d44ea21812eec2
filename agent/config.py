"""The agent config file (``--config``, JSON or TOML): two optional sections::

    {"power": {"device_class": "rpi5", "calibration": {"rpi5": {"scale": 1.03, "offset_w": 0.4}}},
     "hygiene": {"canary_every": 20}}

(``power`` keys: fleetnas.agent.power.detect.PowerConfig.)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python < 3.11 on older boards: tomli when installed, else JSON only
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

_SECTIONS = {"power", "hygiene"}


def load_agent_config(path: Optional[Path]) -> Dict[str, Any]:
    if path is None:
        return {}
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read agent config {path}: {exc.strerror}") from None
    try:
        if str(path).endswith(".toml"):
            if tomllib is None:
                raise ValueError(f"{path}: TOML needs Python >= 3.11 or 'pip install tomli'; "
                                 "or write the config as JSON")
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"agent config {path} is not valid {'TOML' if str(path).endswith('.toml') else 'JSON'}: "
                         f"{exc}") from None
    unknown = set(data) - _SECTIONS
    if unknown:
        raise ValueError(f"agent config {path}: unknown sections {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(_SECTIONS))})")
    return data
