"""Assembling an agent: the one place that joins store, hygiene (cool-down, stability gate, energy, drift canary)
and service, so that `fleetnas-agent serve`, `selftest` and the tests all measure through the same path.

The agent config file (``--config``, JSON or TOML) has two optional sections::

    {"power": {"device_class": "rpi5", "calibration": {"rpi5": {"scale": 1.03, "offset_w": 0.4}}},
     "hygiene": {"canary_every": 20}}

(``power`` keys: fleetnas.agent.power.detect.PowerConfig.)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

from fleetnas.agent.measure.service import AgentService, MeasureFn
from fleetnas.agent.store.model_store import ModelStore

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
            try:
                import tomllib
            except ImportError:  # Python < 3.11 on older boards
                try:
                    import tomli as tomllib  # type: ignore[no-redef]
                except ImportError:
                    raise ValueError(f"{path}: TOML needs Python >= 3.11 or 'pip install tomli'; "
                                     "or write the config as JSON") from None
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


def hygienic_measure_fn(cache_dir: Path, config: Optional[Dict[str, Any]] = None) -> MeasureFn:
    from fleetnas.agent.measure.hygiene import build_hygiene, make_measure_fn
    config = config or {}
    canary_every = int(config.get("hygiene", {}).get("canary_every", 20))
    meter, _, state = build_hygiene(Path(cache_dir) / "reference", config.get("power"), canary_every=canary_every)
    return make_measure_fn(meter, state)


def make_service(store: ModelStore, cache_dir: Path, config: Optional[Dict[str, Any]] = None, *,
                 measure_fn: Optional[MeasureFn] = None, emulated: bool = False) -> AgentService:
    """The agent's service; ``measure_fn`` replaces the hygienic real measurement (emulation)."""
    return AgentService(store, measure_fn=measure_fn or hygienic_measure_fn(cache_dir, config), emulated=emulated)
