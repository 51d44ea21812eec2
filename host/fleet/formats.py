"""Which model format a fleet loads with a runtime, as its devices report it (RuntimeInfo.formats).

The host keeps no runtime -> format table: a run exports its candidates in a format every answering device loads
with the chosen runtime, and a device that does not offer the runtime is named with what it offers instead.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Mapping, Optional, Tuple

from fleetnas.host.errors import AgentCallError, UsageError
from fleetnas.host.fleet.contract import DeviceInfo
from fleetnas.host.fleet.devices import Device, DeviceRegistry


def runtime_formats(infos: Mapping[str, DeviceInfo], runtime: str) -> Tuple[str, ...]:
    """The formats every device in ``infos`` (device name -> its info) loads with ``runtime``, in the first
    device's order of preference."""
    common: Optional[Tuple[str, ...]] = None
    for name, info in infos.items():
        offered = info.runtime(runtime)
        if offered is None or not offered.available or not offered.formats:
            offers = ", ".join(r.describe() for r in info.available_runtimes) or "no runtime"
            why = f" ({offered.message})" if offered is not None and offered.message else ""
            raise UsageError(f"device {name} does not offer runtime {runtime!r}{why}; it offers {offers}")
        common = offered.formats if common is None else tuple(f for f in common if f in offered.formats)
    if not common:
        raise UsageError(f"the devices load no model format in common with runtime {runtime!r}: "
                         + "; ".join(f"{n}: {i.runtime(runtime).describe()}" for n, i in infos.items()))
    return common


def ask_fleet(registry: DeviceRegistry, timeout_s: float = 10.0) -> Dict[str, DeviceInfo]:
    """Every device's info, asked in parallel; devices that do not answer are left out (the dispatcher deals with
    unreachable devices during the run)."""
    def ask(device: Device) -> Optional[DeviceInfo]:
        try:
            with device.client(timeout_s=timeout_s) as client:
                return client.device_info(timeout_s=timeout_s)
        except AgentCallError:
            return None
    with ThreadPoolExecutor(max_workers=min(16, len(registry))) as pool:
        infos = dict(zip((d.name for d in registry), pool.map(ask, registry.devices)))
    return {name: info for name, info in infos.items() if info is not None}
