"""Pick a sub-network from a finished run's front: `fleetnas export DIR --device NAME --pick K`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from fleetnas.host.errors import UsageError
from fleetnas.host.report.fronts import run_fronts
from fleetnas.host.store.run_store import RunStore


@dataclass(frozen=True)
class Picked:
    supernet: str
    weights_path: Optional[str]
    device_class: str
    index: int
    config: Dict[str, Any]
    accuracy: float
    latency_ms: float


def pick_from_run(run_dir: Path, device: str, pick: int) -> Picked:
    """``device``: a device class or a device name of the run; ``pick``: the row on that front (by latency, from 0),
    as `fleetnas report` and `fleetnas search` number it."""
    settings = RunStore.read_settings(run_dir)
    classes, devices = settings.get("classes", []), settings.get("devices", {})
    device_class = device if device in classes else devices.get(device)
    if device_class is None:
        raise UsageError(f"--device {device!r} is not in the run {run_dir}; device classes: {', '.join(classes)}"
                         f"{'; devices: ' + ', '.join(devices) if devices else ''}")
    front = run_fronts(run_dir)[device_class].front
    if not front:
        raise UsageError(f"the {device_class} front of {run_dir} is empty: no candidate was measured successfully")
    if not 0 <= pick < len(front):
        raise UsageError(f"--pick {pick}: the {device_class} front has {len(front)} entries, pick 0..{len(front) - 1} "
                         f"(`fleetnas report {run_dir}` lists them)")
    p = front[pick]
    return Picked(settings["supernet"], settings.get("weights_path"), device_class, pick, p.config, p.accuracy,
                  p.latency_ms)
